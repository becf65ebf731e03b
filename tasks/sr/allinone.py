"""All-in-One WDSR-B: one set of weights, nested sub-networks, switched at run time.

After All-in-One (Gong et al., ICCAD 2022): a network keeps one weight set plus one mask per
*operating point* (a DVFS frequency level, a thread count...) and switches to the mask that fits
the current speed of the device, so its latency stays steady. Here the masks are structured and
nested: the sub-network of a slower point uses a prefix of the trunk channels (``channels``), the
first ``depth`` residual blocks, and prefixes of each kept block's ``M1`` / ``M2`` channels of the
sub-network of the next faster point. Every sub-network is described by an ordinary
:class:`spaces.sr.WDSRBArch`, so latency models, reports and ``build_model`` read it as any other.

At run time the mask is applied by *slicing* the weights (``weight[:m1, :c]``) and skipping
dropped blocks, never by multiplying with zeros, so a sparser point really computes less.
:meth:`AllInOneWDSRB.set_operating_point` only swaps a tuple of precomputed widths: no weights
are copied or reloaded. During training the same slicing is the (hard, nested) mask; a channel's
weights receive gradients from every point that keeps it.

The masks live in the module as one int32 buffer ``point_widths`` ``(P, 2 + 2 * D)``, rows
``[channels, depth, m1_0, m2_0, ..., m1_{D-1}, m2_{D-1}]`` (0 for dropped blocks), so the state
dict is the largest network's weights plus ``P * (2 + 2D)`` integers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from spaces.atomic import atomic_path
from spaces.sr import WDSRBArch, WDSRBlock
from tasks.sr.models import WDSRB, image_precision

ALLINONE_FORMAT = "hwnas.sr.allinone"
ALLINONE_VERSION = 1


def is_subnet(small: WDSRBArch, large: WDSRBArch) -> bool:
    """True when ``small`` is a nested sub-network of ``large``: same scale, no wider trunk, no
    deeper, and each kept block no wider (``m1``, ``m2``) than the block at the same position."""
    return (
        small.scale == large.scale
        and small.channels <= large.channels
        and small.depth <= large.depth
        and all(s.m1 <= b.m1 and s.m2 <= b.m2 for s, b in zip(small.blocks, large.blocks))
    )


def check_nested(points: Mapping[str, WDSRBArch]) -> None:
    """Raise ValueError unless ``points`` (largest first) form a chain of nested sub-networks."""
    names = list(points)
    if not names:
        raise ValueError("need at least one operating point")
    for bigger, smaller in zip(names, names[1:]):
        if not is_subnet(points[smaller], points[bigger]):
            raise ValueError(f"operating point {smaller!r} {points[smaller].to_dict()} is not a sub-network "
                             f"of {bigger!r} {points[bigger].to_dict()}; list points largest first")


def slice_subnet(arch: WDSRBArch, channels: int | None = None, depth: int | None = None,
                 width: float = 1.0) -> WDSRBArch:
    """A nested sub-network of ``arch``: the first ``depth`` blocks, trunk ``channels``, and each
    block's ``m1`` / ``m2`` scaled by ``width`` (rounded, at least 1)."""
    depth = arch.depth if depth is None else depth
    channels = arch.channels if channels is None else channels
    if not (1 <= depth <= arch.depth and 1 <= channels <= arch.channels and 0 < width <= 1):
        raise ValueError(f"cannot cut depth={depth}, channels={channels}, width={width} out of {arch.to_dict()}")
    blocks = tuple(WDSRBlock(max(1, round(b.m1 * width)), max(1, round(b.m2 * width)))
                   for b in arch.blocks[:depth])
    return WDSRBArch(arch.scale, channels, blocks)


def _widths_row(sub: WDSRBArch, max_depth: int) -> list[int]:
    row = [sub.channels, sub.depth]
    for i in range(max_depth):
        row += [sub.blocks[i].m1, sub.blocks[i].m2] if i < sub.depth else [0, 0]
    return row


class AllInOneWDSRB(WDSRB):
    """WDSR-B whose operating points are nested sub-networks sharing its weights.

    ``points`` maps names to sub-architectures, largest first; the largest is the network whose
    weights are kept (``supernet``). The parameter names are those of :class:`WDSRB`, so the
    state dict minus ``point_widths`` loads into a plain WDSR-B of the largest architecture.
    Input ``(B, 3, H, W)`` RGB in [0, 1]; output ``(B, 3, sH, sW)`` of the active point.
    """

    def __init__(self, points: Mapping[str, WDSRBArch]) -> None:
        check_nested(points)
        self.point_names: tuple[str, ...] = tuple(points)
        supernet = points[self.point_names[0]]
        super().__init__(supernet)
        self.arch = supernet
        self.points = dict(points)
        rows = [_widths_row(a, supernet.depth) for a in points.values()]
        self.register_buffer("point_widths", torch.tensor(rows, dtype=torch.int32))
        self._refresh_widths()
        self.set_operating_point(self.point_names[0])

    def _refresh_widths(self) -> None:
        """Precompute each point's ``(channels, depth, ((m1, m2), ...))`` from the buffer."""
        self._widths: dict[str, tuple[int, int, tuple[tuple[int, int], ...]]] = {}
        for name, row in zip(self.point_names, self.point_widths.tolist()):
            c, d = row[0], row[1]
            self._widths[name] = (c, d, tuple((row[2 + 2 * i], row[3 + 2 * i]) for i in range(d)))

    @property
    def operating_point(self) -> str:
        return self._active_name

    def set_operating_point(self, name: str) -> None:
        """Switch to point ``name`` in place: O(1), no weights copied, nothing reloaded."""
        try:
            self._active = self._widths[name]
        except KeyError:
            raise KeyError(f"unknown operating point {name!r}; known: {list(self.point_names)}") from None
        self._active_name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_point(x, self._active)

    def forward_point(self, x: torch.Tensor, widths: tuple[int, int, tuple[tuple[int, int], ...]]) -> torch.Tensor:
        """The sub-network given by ``widths`` (as in ``self._widths``) on ``x`` ``(B, 3, H, W)``."""
        c, _, blocks = widths
        h = F.conv2d(x, self.head.weight[:c], self.head.bias[:c], padding=1)
        for block, (m1, m2) in zip(self.body, blocks):
            y = F.relu(F.conv2d(h, block.expand.weight[:m1, :c], block.expand.bias[:m1]), inplace=True)
            y = F.conv2d(y, block.reduce.weight[:m2, :m1], block.reduce.bias[:m2])
            h = h + F.conv2d(y, block.conv.weight[:c, :m2], block.conv.bias[:c], padding=1)
        tail = F.conv2d(h, self.tail.weight[:, :c], self.tail.bias, padding=1)
        return self.shuffle(tail + image_precision(self.skip, x))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        out = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._refresh_widths()
        self.set_operating_point(self._active_name if self._active_name in self._widths else self.point_names[0])
        return out

    def subnet(self, name: str) -> WDSRB:
        """A standalone :class:`WDSRB` of point ``name`` holding copies of the sliced weights
        (for ONNX export or a check: it computes exactly what this module computes at ``name``)."""
        return self.sliced(self.points[name])

    def sliced(self, arch: WDSRBArch) -> WDSRB:
        """A standalone :class:`WDSRB` of any nested sub-network ``arch`` of this network, with
        copies of the sliced weights."""
        if not is_subnet(arch, self.arch):
            raise ValueError(f"{arch.to_dict()} is not a sub-network of {self.arch.to_dict()}")
        c = arch.channels
        net = WDSRB(arch)
        net.arch = arch
        with torch.no_grad():
            net.head.weight.copy_(self.head.weight[:c])
            net.head.bias.copy_(self.head.bias[:c])
            for src, dst, b in zip(self.body, net.body, arch.blocks):
                dst.expand.weight.copy_(src.expand.weight[:b.m1, :c])
                dst.expand.bias.copy_(src.expand.bias[:b.m1])
                dst.reduce.weight.copy_(src.reduce.weight[:b.m2, :b.m1])
                dst.reduce.bias.copy_(src.reduce.bias[:b.m2])
                dst.conv.weight.copy_(src.conv.weight[:c, :b.m2])
                dst.conv.bias.copy_(src.conv.bias[:c])
            net.tail.weight.copy_(self.tail.weight[:, :c])
            net.tail.bias.copy_(self.tail.bias)
            net.skip.load_state_dict(self.skip.state_dict())
        return net

    def manifest(self) -> dict[str, Any]:
        """Point names (largest first) and the largest architecture; each point's widths are the
        rows of the ``point_widths`` buffer (see :func:`points_from_widths`)."""
        return {"points": list(self.point_names), "supernet": self.arch.to_dict()}


def repoint(model: AllInOneWDSRB, points: Mapping[str, WDSRBArch]) -> AllInOneWDSRB:
    """A new All-in-One network whose operating points are ``points`` (nested, largest first,
    each a sub-network of ``model``'s), holding ``model``'s weights cut to the largest of them:
    what is exported keeps no weights that no point uses."""
    new = AllInOneWDSRB(points)
    state = model.sliced(new.arch).state_dict()
    state["point_widths"] = new.point_widths
    new.load_state_dict(state)
    return new


def build_allinone(points: Mapping[str, WDSRBArch]) -> AllInOneWDSRB:
    """A freshly initialised All-in-One network (torch's global generator; seed it)."""
    return AllInOneWDSRB(points)


def save_allinone(model: AllInOneWDSRB, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """One weight file: the largest network's tensors, the int32 masks ``point_widths`` and a JSON
    manifest string (point names and architectures). No pickled objects: it loads with
    ``torch.load(path, weights_only=True)``."""
    manifest = {**model.manifest(), **dict(extra or {})}
    doc = {
        "format": ALLINONE_FORMAT, "version": ALLINONE_VERSION,
        "manifest": json.dumps(manifest, sort_keys=True),
        "state_dict": {k: v.detach().contiguous() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(doc, tmp)
    return path


def load_allinone(path: str | Path) -> tuple[AllInOneWDSRB, dict[str, Any]]:
    """Rebuild the network written by :func:`save_allinone`; returns ``(model, manifest)``."""
    path = Path(path)
    doc = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(doc, dict) or doc.get("format") != ALLINONE_FORMAT:
        raise ValueError(f"{path} is not an All-in-One weights file written by tasks.sr.allinone.save_allinone")
    if int(doc.get("version", 0)) > ALLINONE_VERSION:
        raise ValueError(f"{path}: All-in-One format version {doc['version']} is newer than this package reads")
    manifest = json.loads(doc["manifest"])
    supernet = WDSRBArch.from_dict(manifest["supernet"])
    points = points_from_widths(manifest["points"], supernet, doc["state_dict"]["point_widths"].tolist())
    model = AllInOneWDSRB(points)
    model.load_state_dict(doc["state_dict"])
    return model, manifest



def points_from_widths(names: Sequence[str], supernet: WDSRBArch, rows: Sequence[Sequence[int]]) -> dict[str, WDSRBArch]:
    """Inverse of the ``point_widths`` buffer: the sub-architectures of ``supernet``, by name."""
    if len(names) != len(rows):
        raise ValueError(f"{len(names)} point names but {len(rows)} rows of widths")
    out = {}
    for name, row in zip(names, rows):
        c, d = int(row[0]), int(row[1])
        blocks = tuple(WDSRBlock(int(row[2 + 2 * i]), int(row[3 + 2 * i])) for i in range(d))
        out[name] = WDSRBArch(supernet.scale, c, blocks)
    return out
