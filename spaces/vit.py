"""Token-pruned vision transformers: SPViT-style soft token pruning as an architecture.

A plain (flat) ViT of ``depth`` blocks gets a light token selector in front of each block index
in ``stages`` (0-based: ``stages=(3, 6, 9)`` puts selectors before the 4th, 7th and 10th block of a
12-block model, as SPViT, Kong et al., ECCV 2022). From stage ``i`` on, ``keep_rates[i]`` of the
ORIGINAL patch tokens are kept (rounded by :func:`kept_tokens`); prefix tokens (class, register,
distillation) always stay, and the dropped tokens are fused into one package token appended at
each stage. ``tasks.vit`` builds the network from this description; ``ops()`` lists its kernels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spaces.base import ArchError, Suggester, register_arch, stable_key
from spaces.ops import Op, conv2d, elementwise, make_op

# Dims of the flat timm ViTs the task library is tested on (name -> img, patch, dim, depth, heads).
KNOWN_VITS: dict[str, tuple[int, int, int, int, int]] = {
    "deit_tiny_patch16_224": (224, 16, 192, 12, 3),
    "deit_small_patch16_224": (224, 16, 384, 12, 6),
    "deit_base_patch16_224": (224, 16, 768, 12, 12),
    "demo_vit": (28, 4, 96, 6, 3),  # tasks.vit.demo: 1-channel digits, 3x3 conv stem of 24
}


def default_stages(depth: int) -> tuple[int, ...]:
    """SPViT's selector positions (before blocks 3, 6, 9 of 12, 0-based) scaled to ``depth``."""
    if depth < 4:
        raise ArchError(f"a ViT of depth {depth} is too shallow for the default 3 stages; give stages")
    return tuple(int(depth * s / 12 + 0.5) for s in (3, 6, 9))


def kept_tokens(keep_rate: float, n_patches: int) -> int:
    """Patch tokens kept at ``keep_rate`` of ``n_patches`` original ones: round half up, >= 1."""
    return max(1, min(n_patches, int(keep_rate * n_patches + 0.5)))


def default_selector_dim(embed_dim: int, num_heads: int) -> int:
    """Hidden width of a selector: about embed_dim / 4, an even per-head width of at least 4."""
    per_head = max(4, (embed_dim // num_heads) // 8 * 2)
    return num_heads * per_head


def token_prune_problems(keep_rates: Any, stages: Any, depth: int) -> list[str]:
    """Everything wrong with a (keep_rates, stages) pair for a ViT of ``depth`` blocks."""
    problems: list[str] = []
    rates, stage_list = list(keep_rates), list(stages)
    if not rates:
        problems.append("keep_rates is empty; give one keep rate per stage")
    for i, r in enumerate(rates):
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 < r <= 1.0:
            problems.append(f"keep_rates[{i}]={r!r} is outside (0, 1]")
    if all(isinstance(r, (int, float)) for r in rates) and any(b > a for a, b in zip(rates, rates[1:])):
        problems.append(f"keep_rates {tuple(rates)} increase; they must be non-increasing (fractions "
                        "of the ORIGINAL patch tokens kept from each stage on)")
    if len(rates) != len(stage_list):
        problems.append(f"len(keep_rates)={len(rates)} != len(stages)={len(stage_list)}")
    for s in stage_list:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < depth:
            problems.append(f"stage index {s!r} is not a block index of this {depth}-block model "
                            f"(0-based, 0..{depth - 1})")
    if any(b <= a for a, b in zip(stage_list, stage_list[1:])):
        problems.append(f"stages {tuple(stage_list)} must be strictly increasing block indices")
    return problems


@register_arch
@dataclass(frozen=True)
class TokenPruneArch:
    """A flat ViT (timm ``VisionTransformer`` dims) with token selectors; see the module doc.

    ``model`` is the timm model name (or ``"demo_vit"``), used by builders; every dim needed by
    :meth:`ops` is stored here so the description is self-contained.
    """

    model: str
    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    keep_rates: tuple[float, ...]
    stages: tuple[int, ...]
    mlp_ratio: float = 4.0
    in_chans: int = 3
    num_classes: int = 1000
    num_prefix_tokens: int = 1
    selector_dim: int = 0  # 0: default_selector_dim(embed_dim, num_heads)
    stem_chans: int = 0  # > 0: a 3x3 conv (in_chans -> stem_chans) + GELU before the patch conv
    family: str = field(default="token_prune_vit", init=False)

    def __post_init__(self) -> None:
        for name in ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "in_chans", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArchError(f"{name} must be a positive integer, got {value!r}")
        if self.embed_dim % self.num_heads or self.img_size % self.patch_size:
            raise ArchError("embed_dim must divide by num_heads and img_size by patch_size")
        object.__setattr__(self, "keep_rates", tuple(float(r) for r in self.keep_rates))
        object.__setattr__(self, "stages", tuple(self.stages))
        problems = token_prune_problems(self.keep_rates, self.stages, self.depth)
        if problems:
            raise ArchError("bad token-pruning architecture: " + "; ".join(problems))
        if self.selector_dim == 0:
            object.__setattr__(self, "selector_dim", default_selector_dim(self.embed_dim, self.num_heads))
        if self.selector_dim % (2 * self.num_heads):
            raise ArchError(f"selector_dim {self.selector_dim} must divide by 2 * num_heads")

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    def kept_per_stage(self) -> tuple[int, ...]:
        """Patch tokens kept from each stage on (package token not counted)."""
        return tuple(kept_tokens(r, self.num_patches) for r in self.keep_rates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family, "model": self.model, "img_size": self.img_size,
            "patch_size": self.patch_size, "embed_dim": self.embed_dim, "depth": self.depth,
            "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio, "in_chans": self.in_chans,
            "num_classes": self.num_classes, "num_prefix_tokens": self.num_prefix_tokens,
            "keep_rates": list(self.keep_rates), "stages": list(self.stages),
            "selector_dim": self.selector_dim, "stem_chans": self.stem_chans,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TokenPruneArch:
        try:
            ints = {k: int(data[k]) for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads",
                                                "in_chans", "num_classes", "num_prefix_tokens", "selector_dim")}
            ints["stem_chans"] = int(data.get("stem_chans", 0))
            return TokenPruneArch(
                model=str(data["model"]), mlp_ratio=float(data["mlp_ratio"]),
                keep_rates=tuple(float(r) for r in data["keep_rates"]),
                stages=tuple(int(s) for s in data["stages"]), **ints,
            )
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, ArchError):
                raise
            raise ArchError(f"malformed token_prune_vit description {data!r}: {err}") from err

    @property
    def key(self) -> str:
        return stable_key(self.to_dict())

    def ops(self, batch: int = 1) -> list[Op]:
        """Every op of the pruned network at inference (top-k path) for ``batch`` images."""
        b, c, g, p = batch, self.embed_dim, self.img_size // self.patch_size, self.num_prefix_tokens
        n0, size, c_in = self.num_patches, self.img_size, self.in_chans
        ops = []
        if self.stem_chans:
            ops += [conv2d(b, c_in, self.stem_chans, size, size, 3),
                    elementwise("gelu", (b, self.stem_chans, size, size))]
            c_in = self.stem_chans
        ops += [
            conv2d(b, c_in, c, size, size, self.patch_size, stride=self.patch_size, padding=0),
            make_op("copy", [(b, c, g, g)], (b, n0, c)),
            make_op("concat", [(b, p, c), (b, n0, c)], (b, p + n0, c)),
            elementwise("add", (b, p + n0, c), 2),
        ]
        n, pkg = n0, 0
        kept = dict(zip(self.stages, self.kept_per_stage()))
        for i in range(self.depth):
            if i in kept and (kept[i] < n or pkg):
                ops += self._selector_ops(b, n + pkg, kept[i])
                n, pkg = kept[i], 1
            ops += self._block_ops(b, p + n + pkg)
        ops += [
            make_op("layer_norm", [(b, p + n + pkg, c)], (b, p + n + pkg, c)),
            make_op("slice", [(b, p + n + pkg, c)], (b, c)),
            make_op("linear", [(b, c)], (b, self.num_classes)),
        ]
        return ops

    def _block_ops(self, b: int, t: int) -> list[Op]:
        c, h = self.embed_dim, self.num_heads
        hidden = int(c * self.mlp_ratio)
        x = (b, t, c)
        return [
            make_op("layer_norm", [x], x),
            make_op("linear", [x], (b, t, 3 * c)),
            make_op("copy", [(b, t, 3 * c)], (3, b, h, t, c // h)),
            make_op("sdpa", [(b, h, t, c // h)] * 3, (b, h, t, c // h)),
            make_op("copy", [(b, h, t, c // h)], x),
            make_op("linear", [x], x),
            elementwise("add", x, 2),
            make_op("layer_norm", [x], x),
            make_op("linear", [x], (b, t, hidden)),
            elementwise("gelu", (b, t, hidden)),
            make_op("linear", [(b, t, hidden)], x),
            elementwise("add", x, 2),
        ]

    def _selector_ops(self, b: int, n: int, k: int) -> list[Op]:
        """Selector over ``n`` candidates (patches + old package) keeping ``k``; see tasks.vit."""
        c, h, d = self.embed_dim, self.num_heads, self.selector_dim
        e = d // h
        return [
            make_op("layer_norm", [(b, n, c)], (b, n, c)),
            make_op("linear", [(b, n, c)], (b, n, d)),
            elementwise("gelu", (b, n, d)),
            make_op("reduce", [(b, n, d)], (b, 1, d)),
            make_op("matmul", [(h, b * n, e), (h, e, e)], (h, b * n, e)),
            make_op("matmul", [(h, b, e), (h, e, e)], (h, b, e)),
            elementwise("add", (h, b * n, e), 2),
            elementwise("gelu", (h, b * n, e)),
            make_op("matmul", [(h, b * n, e), (h, e, 1)], (h, b * n, 1)),
            make_op("matmul", [(b, n, h), (h, 1)], (b, n, 1)),
            make_op("topk", [(b, n)], (b, k), k=k),
            make_op("slice", [(b, n, c)], (b, k, c)),
            elementwise("softmax", (b, n)),
            make_op("matmul", [(b, 1, n), (b, n, c)], (b, 1, c)),
            make_op("concat", [(b, k, c), (b, 1, c)], (b, k + 1, c)),
        ]


@dataclass(frozen=True)
class TokenPruneSpace:
    """Keep rates (and optionally selector positions) of one fixed ViT.

    Sampling is define-by-run with fixed ranges (friendly to TPE): ``stages`` (only when more than
    one choice, as a string like ``"3,6,9"``), then per stage ``keep_ratio_<i>`` in
    ``ratio_range`` = (low, high, step), the fraction of the previous stage's keep rate kept;
    ``keep_rates[i]`` is their running product (rounded to 4 decimals), floored at ``min_keep``.
    """

    model: str
    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    in_chans: int = 3
    num_classes: int = 1000
    num_prefix_tokens: int = 1
    stem_chans: int = 0
    stage_choices: tuple[tuple[int, ...], ...] = ()
    ratio_range: tuple[float, float, float] = (0.5, 1.0, 0.05)
    min_keep: float = 0.05

    def __post_init__(self) -> None:
        if not self.stage_choices:
            object.__setattr__(self, "stage_choices", (default_stages(self.depth),))
        for stages in self.stage_choices:
            problems = [p for p in token_prune_problems([1.0] * len(stages), stages, self.depth)]
            if problems:
                raise ArchError(f"stage choice {stages}: " + "; ".join(problems))
        low, high, step = self.ratio_range
        if not 0.0 < low <= high <= 1.0 or step <= 0:
            raise ArchError(f"ratio_range {self.ratio_range} must be (low, high, step) with 0 < low <= high <= 1")

    @staticmethod
    def for_model(name: str, **overrides: Any) -> TokenPruneSpace:
        """The space over one of :data:`KNOWN_VITS` (``num_classes`` etc. as keyword overrides)."""
        if name not in KNOWN_VITS:
            raise ArchError(f"no stored dims for {name!r}; known: {sorted(KNOWN_VITS)} (or give the dims)")
        img, patch, dim, depth, heads = KNOWN_VITS[name]
        kwargs: dict[str, Any] = dict(model=name, img_size=img, patch_size=patch, embed_dim=dim,
                                      depth=depth, num_heads=heads)
        if name == "demo_vit":
            kwargs.update(in_chans=1, num_classes=10, stem_chans=24)
        kwargs.update(overrides)
        return TokenPruneSpace(**kwargs)

    def sample(self, suggest: Suggester) -> TokenPruneArch:
        stages = self.stage_choices[0]
        if len(self.stage_choices) > 1:
            labels = [",".join(map(str, s)) for s in self.stage_choices]
            stages = self.stage_choices[labels.index(suggest.suggest_categorical("stages", labels))]
        low, high, step = self.ratio_range
        rates, rate = [], 1.0
        for i in range(len(stages)):
            rate *= suggest.suggest_float(f"keep_ratio_{i}", low, high, step=step)
            rates.append(round(max(rate, self.min_keep), 4))
        return self.arch(tuple(rates), stages)

    def arch(self, keep_rates: tuple[float, ...], stages: tuple[int, ...] | None = None) -> TokenPruneArch:
        """The member of this space with these keep rates (default stages when not given)."""
        return TokenPruneArch(
            model=self.model, img_size=self.img_size, patch_size=self.patch_size,
            embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio, in_chans=self.in_chans, num_classes=self.num_classes,
            num_prefix_tokens=self.num_prefix_tokens, stem_chans=self.stem_chans, keep_rates=tuple(keep_rates),
            stages=self.stage_choices[0] if stages is None else tuple(stages),
        )

    def unpruned(self) -> TokenPruneArch:
        """The reference member: every keep rate 1.0 (same logits as the plain ViT)."""
        return self.arch((1.0,) * len(self.stage_choices[0]))

    def most_pruned(self) -> TokenPruneArch:
        """The floor: ``min_keep`` at every stage (the fastest member)."""
        return self.arch((self.min_keep,) * len(self.stage_choices[0]))
