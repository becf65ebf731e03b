"""``torch.nn.Module`` builders for the SR architecture descriptions in :mod:`spaces.sr`.

Every model maps an LR batch ``(B, 3, H, W)``, RGB float32 in [0, 1], to ``(B, 3, s*H, s*W)`` in
the same convention (not clamped), for any ``H, W`` (>= 2 for the bicubic model's mirror border).
Builders are registered by ``arch.family``; :func:`build_model` looks them up, and the built
module keeps its description as ``module.arch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spaces.sr import BicubicArch, ESPCNArch, FSRCNNArch, WDSRBArch
from tasks.sr.resize import upscale_phase_filters

_BUILDERS: dict[str, Callable[[Any], nn.Module]] = {}


def register_builder(family: str) -> Callable[[Callable[[Any], nn.Module]], Callable[[Any], nn.Module]]:
    """Decorator: ``fn(arch) -> nn.Module`` builds architectures of ``family``."""

    def wrap(fn: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        if family in _BUILDERS:
            raise ValueError(f"a builder for family {family!r} is already registered")
        _BUILDERS[family] = fn
        return fn

    return wrap


def registered_families() -> list[str]:
    return sorted(_BUILDERS)


def build_model(arch: Any) -> nn.Module:
    """A freshly initialised module for ``arch`` (WDSR-B, FSRCNN, ESPCN or bicubic), in train mode.

    Initialisation draws from torch's global generator; seed it (``torch.manual_seed``) or load
    weights for reproducible models.
    """
    family = getattr(arch, "family", None)
    if family not in _BUILDERS:
        raise ValueError(f"no SR model builder for family {family!r}; known: {registered_families()}")
    model = _BUILDERS[family](arch)
    model.arch = arch
    return model


def _symmetric_pad2(x: torch.Tensor) -> torch.Tensor:
    """Mirror 2 pixels on each side including the edge pixel (MATLAB 'symmetric'), export-safe."""
    x = torch.cat([x[..., 1:2], x[..., 0:1], x, x[..., -1:], x[..., -2:-1]], dim=-1)
    return torch.cat([x[..., 1:2, :], x[..., 0:1, :], x, x[..., -1:, :], x[..., -2:-1, :]], dim=-2)


class BicubicUpsampler(nn.Module):
    """MATLAB ``imresize(lr, s, 'bicubic')`` as a fixed depthwise 5x5 filter bank + PixelShuffle.

    Reproduces the published Bicubic rows (Set5 x2 33.68 dB); torch's own bicubic (a = -0.75)
    would score differently. No parameters: the filters are a non-persistent buffer.
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        bank = upscale_phase_filters(scale).to(torch.float32)  # (s*s, 5, 5)
        self.register_buffer("filters", bank.repeat(3, 1, 1).unsqueeze(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(_symmetric_pad2(x), self.filters, groups=3), self.scale)


def image_precision(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` in float32 even under mixed precision: for the layers that write the image.
    In bfloat16 (8-bit mantissa) an output near 1 moves in steps of 1/256, a sixth of a trained
    network's L1 error: a small WDSR-B trained 150 steps on the rounded output scored 0.5 dB lower
    on Set5 than in float32 (tests/tasks/sr/test_train_placement.py holds the gap under 0.1 dB).
    Outside autocast (inference, export) this is ``layer(x)``."""
    if not torch.is_autocast_enabled(x.device.type):
        return layer(x)
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


class WDSRBlockModule(nn.Module):
    """conv1x1 C->M1, ReLU, conv1x1 M1->M2, conv3x3 M2->C, plus the identity."""

    def __init__(self, channels: int, m1: int, m2: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(channels, m1, 1)
        self.act = nn.ReLU(inplace=True)
        self.reduce = nn.Conv2d(m1, m2, 1)
        self.conv = nn.Conv2d(m2, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.reduce(self.act(self.expand(x))))


class WDSRB(nn.Module):
    """WDSR-B without weight norm (nothing to fuse before export or timing).

    The 5x5 global skip starts as MATLAB bicubic upscaling (its phase filters fit 5x5 exactly) and
    the tail starts at zero, so an untrained net already scores about bicubic and training only
    has to learn the residual: on a CPU budget this matters more than the init of the trunk.
    """

    def __init__(self, arch: WDSRBArch) -> None:
        super().__init__()
        c, s = arch.channels, arch.scale
        out_c = 3 * s * s
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*(WDSRBlockModule(c, b.m1, b.m2) for b in arch.blocks))
        self.tail = nn.Conv2d(c, out_c, 3, padding=1)
        self.skip = nn.Conv2d(3, out_c, 5, padding=2)
        self.shuffle = nn.PixelShuffle(s)
        with torch.no_grad():
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
            bank = upscale_phase_filters(s).to(torch.float32)
            self.skip.weight.zero_()
            self.skip.bias.zero_()
            for ch in range(3):  # output channel ch*s*s + phase reads input channel ch
                self.skip.weight[ch * s * s:(ch + 1) * s * s, ch] = bank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.tail(self.body(self.head(x))) + image_precision(self.skip, x))


class FSRCNN(nn.Module):
    """FSRCNN on RGB; the 9x9 deconvolution gives exactly ``scale * H`` rows."""

    def __init__(self, arch: FSRCNNArch) -> None:
        super().__init__()
        d, s, k = arch.d, arch.s, arch.scale
        layers: list[nn.Module] = [nn.Conv2d(3, d, 5, padding=2), nn.PReLU(d)]
        layers += [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(arch.m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(d, 3, 9, stride=k, padding=4, output_padding=k - 1)
        # As in the paper: He init for PReLU (slope 0.25) on the convs, N(0, 1e-3) on the deconv.
        # On T91 x2, 400 steps: 29.6 dB Set5 with it, 24.0 dB with torch's default init.
        for conv in self.body:
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(conv.bias)
        nn.init.normal_(self.deconv.weight, std=1e-3)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return image_precision(self.deconv, self.body(x))


class ESPCN(nn.Module):
    def __init__(self, arch: ESPCNArch) -> None:
        super().__init__()
        out_c = 3 * arch.scale**2
        self.conv1 = nn.Conv2d(3, arch.c1, 5, padding=2)
        self.conv2 = nn.Conv2d(arch.c1, arch.c2, 3, padding=1)
        self.conv3 = nn.Conv2d(arch.c2, out_c, 3, padding=1)
        self.shuffle = nn.PixelShuffle(arch.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        return self.shuffle(image_precision(self.conv3, x))


@register_builder("wdsr_b")
def _build_wdsr_b(arch: WDSRBArch) -> nn.Module:
    return WDSRB(arch)


@register_builder("fsrcnn")
def _build_fsrcnn(arch: FSRCNNArch) -> nn.Module:
    return FSRCNN(arch)


@register_builder("espcn")
def _build_espcn(arch: ESPCNArch) -> nn.Module:
    return ESPCN(arch)


@register_builder("bicubic")
def _build_bicubic(arch: BicubicArch) -> nn.Module:
    return BicubicUpsampler(arch.scale)


def num_params(model: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
