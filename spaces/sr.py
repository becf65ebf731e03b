"""Super-resolution architectures: the WDSR-B search space and the fixed baselines.

WDSR-B as searched in "Compiler-Aware Neural Architecture Search for On-Mobile Real-time
Super-Resolution" (Wu, Gong et al., ECCV 2022): head conv3x3 (3 -> C); up to 16 residual blocks
of conv1x1 (C -> M1), ReLU, conv1x1 (M1 -> M2), conv3x3 (M2 -> C) with an identity skip; tail
conv3x3 (C -> 3 s^2); a 5x5 global skip conv (3 -> 3 s^2) on the input; their sum goes
through PixelShuffle(s). All convolutions run at the low resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spaces.base import ArchError, Suggester, register_arch, stable_key
from spaces.ops import Op, conv2d, elementwise, make_op

SCALES = (2, 3, 4)


def _check_scale(scale: int) -> None:
    if scale not in SCALES:
        raise ArchError(f"scale x{scale} is not supported; choose one of {SCALES}")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ArchError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class WDSRBlock:
    """Widths of one residual block: conv1x1 C->m1, ReLU, conv1x1 m1->m2, conv3x3 m2->C."""

    m1: int
    m2: int

    def __post_init__(self) -> None:
        _check_positive(m1=self.m1, m2=self.m2)


@register_arch
@dataclass(frozen=True)
class WDSRBArch:
    scale: int
    channels: int
    blocks: tuple[WDSRBlock, ...]
    family: str = field(default="wdsr_b", init=False)

    def __post_init__(self) -> None:
        _check_scale(self.scale)
        _check_positive(channels=self.channels)
        if not isinstance(self.blocks, tuple) or not all(isinstance(b, WDSRBlock) for b in self.blocks):
            raise ArchError("blocks must be a tuple of WDSRBlock")

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "scale": self.scale,
            "channels": self.channels,
            "blocks": [[b.m1, b.m2] for b in self.blocks],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> WDSRBArch:
        try:
            blocks = tuple(WDSRBlock(int(m1), int(m2)) for m1, m2 in data["blocks"])
            return WDSRBArch(scale=int(data["scale"]), channels=int(data["channels"]), blocks=blocks)
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, ArchError):
                raise
            raise ArchError(f"malformed wdsr_b description {data!r}: {err}") from err

    @property
    def key(self) -> str:
        return stable_key(self.to_dict())

    def block_vectors(self) -> list[tuple[int, int, int, int]]:
        """Per block ``(C_in, M1, M2, C_out)``: the input of the published block speed models."""
        return [(self.channels, b.m1, b.m2, self.channels) for b in self.blocks]

    def ops(self, lr_hw: tuple[int, int], batch: int = 1) -> list[Op]:
        """Every op of the network for an LR input of ``lr_hw`` (H, W)."""
        h, w = lr_hw
        c, s = self.channels, self.scale
        out_c = 3 * s * s
        ops = [conv2d(batch, 3, c, h, w, 3)]
        for b in self.blocks:
            ops += [
                conv2d(batch, c, b.m1, h, w, 1),
                elementwise("relu", (batch, b.m1, h, w)),
                conv2d(batch, b.m1, b.m2, h, w, 1),
                conv2d(batch, b.m2, c, h, w, 3),
                elementwise("add", (batch, c, h, w), 2),
            ]
        ops += [
            conv2d(batch, c, out_c, h, w, 3),
            conv2d(batch, 3, out_c, h, w, 5),
            elementwise("add", (batch, out_c, h, w), 2),
            make_op("pixel_shuffle", [(batch, out_c, h, w)], (batch, 3, h * s, w * s), factor=s),
        ]
        return ops


@register_arch
@dataclass(frozen=True)
class FSRCNNArch:
    """FSRCNN (Dong et al., ECCV 2016) on RGB: conv5x5 3->d, shrink 1x1 d->s, m x conv3x3 s->s,
    expand 1x1 s->d, PReLU after each, deconv9x9 with stride ``scale`` d->3."""

    scale: int
    d: int = 56
    s: int = 12
    m: int = 4
    family: str = field(default="fsrcnn", init=False)

    def __post_init__(self) -> None:
        _check_scale(self.scale)
        _check_positive(d=self.d, s=self.s, m=self.m)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "scale": self.scale, "d": self.d, "s": self.s, "m": self.m}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> FSRCNNArch:
        return FSRCNNArch(int(data["scale"]), int(data["d"]), int(data["s"]), int(data["m"]))

    @property
    def key(self) -> str:
        return stable_key(self.to_dict())

    def ops(self, lr_hw: tuple[int, int], batch: int = 1) -> list[Op]:
        h, w = lr_hw
        d, s, k = self.d, self.s, self.scale
        ops = [conv2d(batch, 3, d, h, w, 5), elementwise("prelu", (batch, d, h, w))]
        ops += [conv2d(batch, d, s, h, w, 1), elementwise("prelu", (batch, s, h, w))]
        for _ in range(self.m):
            ops += [conv2d(batch, s, s, h, w, 3), elementwise("prelu", (batch, s, h, w))]
        ops += [conv2d(batch, s, d, h, w, 1), elementwise("prelu", (batch, d, h, w))]
        # ConvTranspose2d(d, 3, 9, stride=k, padding=4, output_padding=k-1) gives exactly k*H.
        ops.append(make_op(
            "conv_transpose2d", [(batch, d, h, w)], (batch, 3, h * k, w * k),
            kernel_h=9, kernel_w=9, stride_h=k, stride_w=k, padding_h=4, padding_w=4,
            dilation_h=1, dilation_w=1, groups=1,
        ))
        return ops


@register_arch
@dataclass(frozen=True)
class ESPCNArch:
    """ESPCN (Shi et al., CVPR 2016) on RGB: conv5x5 3->c1, tanh, conv3x3 c1->c2, tanh,
    conv3x3 c2->3 s^2, PixelShuffle(s)."""

    scale: int
    c1: int = 64
    c2: int = 32
    family: str = field(default="espcn", init=False)

    def __post_init__(self) -> None:
        _check_scale(self.scale)
        _check_positive(c1=self.c1, c2=self.c2)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "scale": self.scale, "c1": self.c1, "c2": self.c2}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ESPCNArch:
        return ESPCNArch(int(data["scale"]), int(data["c1"]), int(data["c2"]))

    @property
    def key(self) -> str:
        return stable_key(self.to_dict())

    def ops(self, lr_hw: tuple[int, int], batch: int = 1) -> list[Op]:
        h, w = lr_hw
        out_c = 3 * self.scale**2
        return [
            conv2d(batch, 3, self.c1, h, w, 5), elementwise("tanh", (batch, self.c1, h, w)),
            conv2d(batch, self.c1, self.c2, h, w, 3), elementwise("tanh", (batch, self.c2, h, w)),
            conv2d(batch, self.c2, out_c, h, w, 3),
            make_op("pixel_shuffle", [(batch, out_c, h, w)],
                    (batch, 3, h * self.scale, w * self.scale), factor=self.scale),
        ]


@register_arch
@dataclass(frozen=True)
class BicubicArch:
    """Plain bicubic upscaling: no parameters, the reference every SR table starts from."""

    scale: int
    family: str = field(default="bicubic", init=False)

    def __post_init__(self) -> None:
        _check_scale(self.scale)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "scale": self.scale}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> BicubicArch:
        return BicubicArch(int(data["scale"]))

    @property
    def key(self) -> str:
        return stable_key(self.to_dict())

    def ops(self, lr_hw: tuple[int, int], batch: int = 1) -> list[Op]:
        h, w = lr_hw
        s = self.scale
        return [make_op("interpolate", [(batch, 3, h, w)], (batch, 3, h * s, w * s), mode=2)]


@dataclass(frozen=True)
class SRSpace:
    """The WDSR-B search space: depth, trunk width C, and per-block M1, M2.

    Widths are ``(low, high, step)`` integer ranges. The defaults stay inside the box the
    published S21/S10 block speed models were fitted on (C <= 24, M1 <= 144, M2 <= 20).
    """

    scale: int = 2
    min_blocks: int = 1
    max_blocks: int = 16
    channels: tuple[int, ...] = (8, 12, 16, 20, 24)
    m1: tuple[int, int, int] = (8, 144, 8)
    m2: tuple[int, int, int] = (8, 20, 1)

    def __post_init__(self) -> None:
        _check_scale(self.scale)
        if not 1 <= self.min_blocks <= self.max_blocks:
            raise ArchError(f"need 1 <= min_blocks <= max_blocks, got {self.min_blocks}, {self.max_blocks}")
        for name in ("m1", "m2"):
            low, high, step = getattr(self, name)
            if not (0 < low <= high and step > 0 and (high - low) % step == 0):
                raise ArchError(f"{name} range {(low, high, step)} is not (low, high, step) with high-low divisible by step")
        if not self.channels or min(self.channels) < 1:
            raise ArchError(f"channels must be a non-empty list of positive widths, got {self.channels}")

    def sample(self, suggest: Suggester) -> WDSRBArch:
        """Define-by-run sampling; parameter names: depth, channels, m1_<i>, m2_<i>."""
        depth = suggest.suggest_int("depth", self.min_blocks, self.max_blocks)
        channels = suggest.suggest_categorical("channels", list(self.channels))
        blocks = tuple(
            WDSRBlock(
                suggest.suggest_int(f"m1_{i}", *self.m1[:2], step=self.m1[2]),
                suggest.suggest_int(f"m2_{i}", *self.m2[:2], step=self.m2[2]),
            )
            for i in range(depth)
        )
        return WDSRBArch(self.scale, channels, blocks)

    def params_of(self, arch: WDSRBArch) -> dict[str, Any]:
        """The sampling parameters that reproduce ``arch`` (for ``optuna.trial.FixedTrial``)."""
        self.validate(arch)
        params: dict[str, Any] = {"depth": arch.depth, "channels": arch.channels}
        for i, b in enumerate(arch.blocks):
            params[f"m1_{i}"], params[f"m2_{i}"] = b.m1, b.m2
        return params

    def validate(self, arch: Any) -> WDSRBArch:
        """Return ``arch`` if it lies in this space, else raise ArchError naming what is off."""
        if not isinstance(arch, WDSRBArch):
            raise ArchError(f"expected a wdsr_b architecture, got {getattr(arch, 'family', type(arch).__name__)}")
        problems = []
        if arch.scale != self.scale:
            problems.append(f"scale x{arch.scale} (space is x{self.scale})")
        if not self.min_blocks <= arch.depth <= self.max_blocks:
            problems.append(f"depth {arch.depth} outside [{self.min_blocks}, {self.max_blocks}]")
        if arch.channels not in self.channels:
            problems.append(f"channels {arch.channels} not in {list(self.channels)}")
        for i, b in enumerate(arch.blocks):
            for name, value in (("m1", b.m1), ("m2", b.m2)):
                low, high, step = getattr(self, name)
                if not (low <= value <= high and (value - low) % step == 0):
                    problems.append(f"block {i} {name}={value} not in range({low}, {high + 1}, {step})")
        if problems:
            raise ArchError("architecture outside the WDSR-B space: " + "; ".join(problems))
        return arch

    def smallest(self) -> WDSRBArch:
        """The cheapest member: min depth, narrowest widths."""
        block = WDSRBlock(self.m1[0], self.m2[0])
        return WDSRBArch(self.scale, min(self.channels), (block,) * self.min_blocks)

    def largest(self) -> WDSRBArch:
        """The supernet: max depth and widths."""
        block = WDSRBlock(self.m1[1], self.m2[1])
        return WDSRBArch(self.scale, max(self.channels), (block,) * self.max_blocks)
