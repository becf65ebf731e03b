"""Training-set model generators: plain torch/timm modules spanning the op types and shapes
of the SR space (WDSR-B), token-pruned ViTs (deit-like) and common CNNs.

Every generator takes a seeded ``random.Random`` (no global state) and yields ``ZooModel``
records. Builders here are deliberately simple re-implementations (``latency_models`` does not
import ``tasks``); their traced ops match the analytic ``arch.ops()`` of ``spaces``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spaces import ESPCNArch, FSRCNNArch, SRSpace, WDSRBArch
from spaces.sampling import RandomSuggester
from spaces.vit import KNOWN_VITS, TokenPruneArch, TokenPruneSpace


@dataclass
class ZooModel:
    """One network to measure: ``build()`` makes the module, fed an input of ``input_shape``."""

    name: str
    family: str
    input_shape: tuple[int, ...]
    build: Callable[[], nn.Module]
    arch: Any = None


# ---- super-resolution ------------------------------------------------------------------
class WDSRB(nn.Module):
    """WDSR-B as described by :class:`spaces.WDSRBArch` (head, residual blocks, tail, 5x5 skip)."""

    def __init__(self, arch: WDSRBArch) -> None:
        super().__init__()
        c, s = arch.channels, arch.scale
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, b.m1, 1), nn.ReLU(), nn.Conv2d(b.m1, b.m2, 1), nn.Conv2d(b.m2, c, 3, padding=1))
            for b in arch.blocks
        )
        self.tail = nn.Conv2d(c, 3 * s * s, 3, padding=1)
        self.skip = nn.Conv2d(3, 3 * s * s, 5, padding=2)
        self.shuffle = nn.PixelShuffle(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        for block in self.body:
            h = h + block(h)
        return self.shuffle(self.tail(h) + self.skip(x))


def fsrcnn(arch: FSRCNNArch) -> nn.Module:
    d, s, k = arch.d, arch.s, arch.scale
    layers: list[nn.Module] = [nn.Conv2d(3, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
    for _ in range(arch.m):
        layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
    layers += [nn.Conv2d(s, d, 1), nn.PReLU(d),
               nn.ConvTranspose2d(d, 3, 9, stride=k, padding=4, output_padding=k - 1)]
    return nn.Sequential(*layers)


def espcn(arch: ESPCNArch) -> nn.Module:
    out_c = 3 * arch.scale**2
    return nn.Sequential(nn.Conv2d(3, arch.c1, 5, padding=2), nn.Tanh(), nn.Conv2d(arch.c1, arch.c2, 3, padding=1),
                         nn.Tanh(), nn.Conv2d(arch.c2, out_c, 3, padding=1), nn.PixelShuffle(arch.scale))


def sr_models(n: int, rng: random.Random, lr_hw: tuple[int, int] = (90, 160), space: SRSpace | None = None) -> list[ZooModel]:
    """``n`` random WDSR-B networks from ``space`` (default :class:`spaces.SRSpace`)."""
    space = space or SRSpace()
    out = []
    for _ in range(n):
        arch = space.sample(RandomSuggester(rng.randrange(2**31)))
        out.append(ZooModel(f"wdsr_b-{arch.key}", "sr", (1, 3, *lr_hw), lambda a=arch: WDSRB(a), arch))
    return out


# ---- token-pruned ViTs -----------------------------------------------------------------
class PrunedViT(nn.Module):
    """A timm ``VisionTransformer`` (random init) that keeps ``k`` patch tokens at each stage
    of a :class:`spaces.vit.TokenPruneArch`: a linear score per token, ``topk``, a gather, and
    one package token (mean of the candidates) appended. Keep rate 1.0 everywhere gives the
    plain ViT's logits (selectors skipped, as in ``arch.ops()``)."""

    def __init__(self, arch: TokenPruneArch) -> None:
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        self.vit = VisionTransformer(img_size=arch.img_size, patch_size=arch.patch_size, embed_dim=arch.embed_dim,
                                     depth=arch.depth, num_heads=arch.num_heads, mlp_ratio=arch.mlp_ratio,
                                     in_chans=arch.in_chans, num_classes=arch.num_classes)
        self.kept = dict(zip(arch.stages, arch.kept_per_stage(), strict=True))
        self.scores = nn.ModuleDict({str(i): nn.Linear(arch.embed_dim, 1) for i in self.kept})
        self.prefix = arch.num_prefix_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v, p = self.vit, self.prefix
        x = v._pos_embed(v.patch_embed(x))
        n, pkg = x.shape[1] - p, 0
        for i, block in enumerate(v.blocks):
            k = self.kept.get(i)
            if k is not None and (k < n or pkg):
                cand = x[:, p:]
                score = self.scores[str(i)](cand).squeeze(-1)
                idx = torch.topk(score, k, dim=-1).indices
                keep = torch.gather(cand, 1, idx.unsqueeze(-1).expand(-1, -1, cand.shape[-1]))
                x = torch.cat([x[:, :p], keep, cand.mean(1, keepdim=True)], dim=1)
                n, pkg = k, 1
            x = block(x)
        return v.forward_head(v.norm(x))


def vit_models(n: int, rng: random.Random, models: tuple[str, ...] = ("deit_tiny_patch16_224", "deit_small_patch16_224"),
               ratio_range: tuple[float, float, float] = (0.5, 1.0, 0.05)) -> list[ZooModel]:
    """``n`` token-pruned ViTs (keep rates at blocks 4/7/10) alternating over ``models``."""
    out = []
    for i in range(n):
        name = models[i % len(models)]
        space = TokenPruneSpace.for_model(name, ratio_range=ratio_range)
        arch = space.sample(RandomSuggester(rng.randrange(2**31)))
        img, chans = KNOWN_VITS[name][0], arch.in_chans
        out.append(ZooModel(f"{name}-{arch.key}", "vit", (1, chans, img, img), lambda a=arch: PrunedViT(a), arch))
    return out


# ---- common CNNs -----------------------------------------------------------------------
def vgg_stack(widths: list[int], pool_after: tuple[int, ...] = (), bn: bool = False) -> nn.Module:
    layers: list[nn.Module] = []
    c = 3
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1)] + ([nn.BatchNorm2d(w)] if bn else []) + [nn.ReLU()]
        if i in pool_after:
            layers.append(nn.MaxPool2d(2))
        c = w
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, max(8, c // 4), 1), nn.ReLU(),
                                  nn.Conv2d(max(8, c // 4), c, 1), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, expand: int, stride: int, act: type[nn.Module], k: int = 3,
                 se: bool = False) -> None:
        super().__init__()
        h = c_in * expand
        self.body = nn.Sequential(nn.Conv2d(c_in, h, 1), nn.BatchNorm2d(h), act(),
                                  nn.Conv2d(h, h, k, stride, k // 2, groups=h), nn.BatchNorm2d(h), act(),
                                  *([SqueezeExcite(h)] if se else []), nn.Conv2d(h, c_out, 1), nn.BatchNorm2d(c_out))
        self.res = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.res else y


def mobilenet_like(rng: random.Random) -> nn.Module:
    act = rng.choice([nn.ReLU, nn.Hardswish, nn.SiLU])
    c = rng.choice([8, 16, 24])
    layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 2, 1), nn.BatchNorm2d(c), act()]
    for _ in range(rng.randint(2, 6)):
        c_out = rng.choice([c, c, c * 2])
        layers.append(InvertedResidual(c, c_out, rng.choice([2, 4, 6]), 2 if c_out != c else 1, act))
        c = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 100)]
    return nn.Sequential(*layers)


def mobilenet224(rng: random.Random) -> nn.Module:
    """An ImageNet-style mobile net at 224: four stride-2 stages to 7x7, hidden widths up to
    ~1000 channels at small spatial sizes, squeeze-excite and 5x5 depthwise in some blocks."""
    act = rng.choice([nn.ReLU, nn.Hardswish])
    c = 16
    layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 2, 1), nn.BatchNorm2d(c), act()]
    for _ in range(4):
        c_out = 8 * round(c * rng.choice([1.5, 2.0]) / 8)
        for b in range(rng.randint(1, 3)):
            layers.append(InvertedResidual(c if b == 0 else c_out, c_out, rng.choice([3, 4, 6]), 2 if b == 0 else 1,
                                           act, k=rng.choice([3, 5]), se=rng.random() < 0.5))
        c = c_out
    head = rng.choice([576, 960])
    layers += [nn.Conv2d(c, head, 1), nn.BatchNorm2d(head), act(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(head, 1000)]
    return nn.Sequential(*layers)


def cnn_models(n: int, rng: random.Random, hw: tuple[int, int] = (90, 160)) -> list[ZooModel]:
    """``n`` CNNs cycling over VGG-style stacks, mobilenet-like blocks, FSRCNN- and ESPCN-like nets."""
    out = []
    for i in range(n):
        kind, seed = i % 4, rng.randrange(2**31)
        r = random.Random(seed)
        if kind == 0:
            widths = [r.choice([8, 16, 24, 32, 48, 64]) for _ in range(r.randint(2, 6))]
            pools = tuple(j for j in range(len(widths)) if r.random() < 0.3)
            bn = r.random() < 0.5
            out.append(ZooModel(f"vgg-{seed}", "cnn", (1, 3, *hw), lambda w=widths, p=pools, b=bn: vgg_stack(w, p, b)))
        elif kind == 1:
            out.append(ZooModel(f"mobilenet-{seed}", "cnn", (1, 3, 2 * hw[0], 2 * hw[1]), lambda r=r: mobilenet_like(r)))
        elif kind == 2:
            arch = FSRCNNArch(r.choice([2, 3, 4]), d=r.choice([24, 32, 48, 64]), s=r.choice([8, 12, 16]), m=r.randint(1, 4))
            out.append(ZooModel(f"fsrcnn-{arch.key}", "cnn", (1, 3, *hw), lambda a=arch: fsrcnn(a), arch))
        else:
            arch = ESPCNArch(r.choice([2, 3, 4]), c1=r.choice([16, 32, 48, 64]), c2=r.choice([8, 16, 32]))
            out.append(ZooModel(f"espcn-{arch.key}", "cnn", (1, 3, *hw), lambda a=arch: espcn(a), arch))
    return out


def reference_models(hw: tuple[int, int] = (90, 160)) -> list[ZooModel]:
    """Networks never in a training set: FSRCNN, ESPCN, a VGG-style stack, timm deit_tiny."""
    import timm

    f, e = FSRCNNArch(2), ESPCNArch(2)
    return [
        ZooModel("fsrcnn", "reference", (1, 3, *hw), lambda: fsrcnn(f), f),
        ZooModel("espcn", "reference", (1, 3, *hw), lambda: espcn(e), e),
        ZooModel("vgg8x32", "reference", (1, 3, *hw), lambda: vgg_stack([32] * 8)),
        ZooModel("deit_tiny", "reference", (1, 3, 224, 224), lambda: timm.create_model("deit_tiny_patch16_224")),
    ]
