"""Torch builders for the two public benchmark spaces whose measured latencies we ship, and a reader
for those tables (``benchmarks/data/public_latency/*.csv.gz``, see its PROVENANCE.md).

``nb201_network``: NAS-Bench-201 CIFAR network (Dong & Yang, ICLR 2020), module for module as the
reference ``TinyNetwork``/``InferCell``/``cell_operations`` build it. ``fbnet_network``: the
HW-NAS-Bench FBNet space at its CIFAR setting, as ``hw_nas_bench_api.fbnet_models.FBNet_Infer``
builds it. Both take input (B, 3, 32, 32) float and return logits (B, num_classes). Parameters and
buffers come in the reference's order and shapes (under other names), so its state_dict values load
in order. Weights keep torch's default init (the reference's kaiming init changes no latency).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Order of HW-NAS-Bench's PRIMITIVES: a table's ``op_idx_list`` value indexes this tuple.
FBNET_OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")

# Device columns in file order; values are latencies in ms, the suffix being the batch size for GPUs.
_GPUS = ("titan_rtx", "titanx", "titanxp", "1080ti", "2080ti")
_CPUS_PHONES = ("gold_6226", "gold_6240", "silver_4114", "silver_4210r",
                "pixel2", "samsung_a50", "samsung_s7", "essential_ph_1")
NB201_DEVICE_COLUMNS = (*(f"{g}_{b}" for g in _GPUS for b in (1, 32, 256)), *_CPUS_PHONES, "raspi4")
# The FBNet table has its device columns in alphabetical order.
FBNET_DEVICE_COLUMNS = tuple(sorted([f"{g}_{b}" for g in _GPUS for b in (1, 32, 64)] + [*_CPUS_PHONES]))
_COLUMNS = {
    "nb201": ("nb201_index", "arch_str", *NB201_DEVICE_COLUMNS, "cell_connected"),
    "fbnet": ("help_index", "op_idx_list", "arch_str", *FBNET_DEVICE_COLUMNS),
}
# Valid in a source checkout (benchmarks/ is not an installed package).
PUBLIC_DATA_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "public_latency"


# ---- NAS-Bench-201 ---------------------------------------------------------------------
def parse_nb201_arch(arch_str: str) -> list[list[str]]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> ops per node: ``result[j-1][i]`` is edge i->j."""
    nodes = arch_str.split("+")
    if len(nodes) != 3:
        raise ValueError(f"NB201 arch string needs 3 '+'-separated nodes, got {len(nodes)}: {arch_str!r}")
    cell: list[list[str]] = []
    for j, node in enumerate(nodes, start=1):
        if len(node) < 2 or node[0] != "|" or node[-1] != "|":
            raise ValueError(f"NB201 node {j} {node!r} must be written |op~i|...|")
        tokens = node[1:-1].split("|")
        if len(tokens) != j:
            raise ValueError(f"NB201 node {j} {node!r} needs {j} edges, got {len(tokens)}")
        ops = []
        for i, token in enumerate(tokens):
            op, _, source = token.partition("~")
            if op not in NB201_OPS:
                raise ValueError(f"unknown NB201 op in token {token!r} (node {j}); known: {NB201_OPS}")
            if source != str(i):  # the reference lists a node's inputs in order 0..j-1
                raise ValueError(f"NB201 token {token!r} of node {j} must read '{op}~{i}'")
            ops.append(op)
        cell.append(ops)
    return cell


class _Zero(nn.Module):
    """Reference ``Zero`` at stride 1: ``x.mul(0.)``, a real op in the graph as in the reference."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _relu_conv_bn(c_in: int, c_out: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(c_out))


def _nb201_op(name: str, c: int) -> nn.Module:
    # Inside a cell every edge is stride 1 and C -> C, so skip is a plain identity and the pool
    # needs no 1x1 preprocessing (the reference adds those only when shapes change).
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return _relu_conv_bn(c, c, 1 if name == "nor_conv_1x1" else 3, 1)


class NB201Cell(nn.Module):
    """4-node cell, (B, C, H, W) -> (B, C, H, W); node j = sum over i < j of op_ij(node i)."""

    def __init__(self, cell: list[list[str]], c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleList(_nb201_op(op, c) for op in node) for node in cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for ops in self.edges:
            # Python sum (0 + ...) as the reference InferCell does, so the graph matches its trace.
            nodes.append(sum(op(nodes[i]) for i, op in enumerate(ops)))
        return nodes[-1]


class NB201Reduction(nn.Module):
    """Reference ``ResNetBasicblock`` at stride 2: (B, C, H, W) -> (B, 2C, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """Reference ``TinyNetwork(C=16, N=5)``: (B, 3, 32, 32) -> logits (B, num_classes)."""

    def __init__(self, arch_str: str, num_classes: int = 10, c: int = 16, n: int = 5) -> None:
        super().__init__()
        cell = parse_nb201_arch(arch_str)
        self.arch_str = arch_str
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                layers.append(NB201Reduction(width // 2, width))
            layers.extend(NB201Cell(cell, width) for _ in range(n))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        return self.classifier(out.view(out.size(0), -1))  # the reference returns (features, logits)


def nb201_network(arch_str: str, num_classes: int = 10) -> nn.Module:
    """NAS-Bench-201 CIFAR network for ``arch_str``; ValueError naming the bad token if unparsable."""
    return NB201Network(arch_str, num_classes)


# ---- HW-NAS-Bench FBNet space ------------------------------------------------------------
FBNET_STAGES = ((1, 16, 1), (4, 24, 1), (4, 32, 2), (4, 64, 2), (4, 112, 1), (4, 184, 2), (1, 352, 1))
"""(layers, out channels, stride of the first layer) per stage, HW-NAS-Bench's CIFAR setting."""


class ChannelShuffle(nn.Module):
    """(B, C, H, W) -> same shape, channels regrouped [g, C/g] -> [C/g, g] (ShuffleNet)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class FBNetBlock(nn.Module):
    """Reference ``ConvBlock``: 1x1 (C_in -> e*C_in) + BN + ReLU [+ shuffle], kxk depthwise stride s
    + BN + ReLU, 1x1 (-> C_out) + BN, + input when s == 1 and C_in == C_out. (B, C_in, H, W) ->
    (B, C_out, H/s, W/s). The first 1x1 is there at e == 1 too, as in the reference; ``groups`` applies
    to both 1x1 convs (2 for the ``_g2`` ops), the shuffle only when groups > 1."""

    def __init__(self, c_in: int, c_out: int, k: int, e: int, stride: int, groups: int = 1) -> None:
        super().__init__()
        mid = c_in * e
        self.conv1 = nn.Conv2d(c_in, mid, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        # Reference padding ceil((k - s) / 2) equals k // 2 for k in {3, 5}, s in {1, 2}.
        self.conv2 = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, c_out, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shuffle(self.relu(self.bn1(self.conv1(x))))
        out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))
        return out + x if self.residual else out


def _conv_bn_relu(c_in: int, c_out: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def _fbnet_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if name == "skip":
        # Reference ``Skip``: identity when the shape is kept, else 1x1 conv (the layer's stride) +
        # BN + ReLU. It is the first layer of 6 of the 7 stages that changes the shape.
        return nn.Identity() if stride == 1 and c_in == c_out else _conv_bn_relu(c_in, c_out, 1, stride)
    k, e = int(name[1]), int(name[4])  # "k{3,5}_e{1,3,6}[_g2]"
    return FBNetBlock(c_in, c_out, k, e, stride, groups=2 if name.endswith("_g2") else 1)


class FBNetNetwork(nn.Module):
    """Reference ``FBNet_Infer`` (CIFAR): (B, 3, 32, 32) -> logits (B, num_classes)."""

    def __init__(self, ops: Sequence[str], num_classes: int = 100) -> None:
        super().__init__()
        ops = ops.split() if isinstance(ops, str) else list(ops)  # the tables' arch_str is space-separated
        n_layers = sum(n for n, _, _ in FBNET_STAGES)
        if len(ops) != n_layers:
            raise ValueError(f"FBNet needs {n_layers} ops, got {len(ops)}: {ops!r}")
        for i, op in enumerate(ops):
            if op not in FBNET_OPS:
                raise ValueError(f"unknown FBNet op {op!r} at layer {i}; known: {FBNET_OPS}")
        self.ops = tuple(ops)
        self.stem = _conv_bn_relu(3, 16, 3, 1)  # stride 1 at CIFAR size (2 for ImageNet)
        layers, c_in, it = [], 16, iter(ops)
        for n, c_out, stride in FBNET_STAGES:
            for i in range(n):
                layers.append(_fbnet_op(next(it), c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.header = _conv_bn_relu(c_in, 1504, 1, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1504, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.avgpool(self.header(self.layers(self.stem(x))))
        return self.fc(out.view(out.size(0), -1))


def fbnet_network(ops: Sequence[str], num_classes: int = 100) -> nn.Module:
    """FBNet-space network for 22 op names (a list, or one space-separated string)."""
    return FBNetNetwork(ops, num_classes)


# ---- the public tables -------------------------------------------------------------------
@dataclass(frozen=True)
class PublicLatencyRow:
    """One network of a public table: ``latency_ms`` maps each device column to milliseconds."""

    space: str  # "nb201" or "fbnet"
    index: int  # nb201_index (the NAS-Bench-201 index) or help_index
    arch_str: str  # nb201_network(arch_str) / fbnet_network(arch_str) builds it
    latency_ms: dict[str, float]
    op_idx: tuple[int, ...] | None = None  # FBNet: indices into FBNET_OPS
    cell_connected: bool | None = None  # NB201: False when no path joins the cell's input to its output


def read_public_table(path: str | Path) -> list[PublicLatencyRow]:
    """Read an NB201 or FBNet table (``.csv`` or ``.csv.gz``), the kind told by its header."""
    path = Path(path)
    with (gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")) as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader, ()))
        space = next((s for s, cols in _COLUMNS.items() if cols == header), None)
        if space is None:
            raise ValueError(f"{path}: header matches neither public table: {header[:4]}...")
        devices = NB201_DEVICE_COLUMNS if space == "nb201" else FBNET_DEVICE_COLUMNS
        rows = []
        for line_no, values in enumerate(reader, start=2):
            rec = dict(zip(header, values))
            try:
                if len(values) != len(header):
                    raise ValueError(f"{len(values)} fields, expected {len(header)}")
                latency = {d: float(rec[d]) for d in devices}
                if space == "nb201":
                    rows.append(PublicLatencyRow(space, int(rec["nb201_index"]), rec["arch_str"], latency,
                                                 cell_connected=bool(int(rec["cell_connected"]))))
                else:
                    op_idx = tuple(int(v) for v in rec["op_idx_list"].split())
                    if [FBNET_OPS[i] for i in op_idx] != rec["arch_str"].split():
                        raise ValueError("op_idx_list and arch_str disagree")
                    rows.append(PublicLatencyRow(space, int(rec["help_index"]), rec["arch_str"], latency,
                                                 op_idx=op_idx))
            except (ValueError, IndexError) as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from exc
    return rows
