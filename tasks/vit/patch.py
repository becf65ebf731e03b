"""Adapters that put token pruning into a timm ``VisionTransformer`` without forking timm.

The adapted model wraps the timm model and runs its own modules unchanged —
``patch_embed``, ``_pos_embed``, ``norm_pre``, every ``Block`` (called as ``block(x)`` on the
reduced token set), ``norm`` and ``forward_head`` — so LayerScale, q/k norm and fused attention
behave exactly as in timm. Only the loop over blocks is ours: before the block indices in
``stages`` it scores the candidate tokens and keeps the best ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from spaces.vit import TokenPruneArch, default_selector_dim, default_stages, kept_tokens, token_prune_problems
from tasks.vit.core import attention_bias, cls_attention_scores, prune_tokens, soft_prune
from tasks.vit.errors import TokenPruneError
from tasks.vit.selector import TokenSelector

SUPPORTED = ("timm VisionTransformer and its subclasses (deit_*, deit3_*, vit_*, distilled DeiT; "
             "class/register tokens, LayerScale, q/k norm, token/avg/map pooling)")


@dataclass
class PruneAux:
    """Side outputs of a training forward: per-stage keep ratios (B,) each, final normed tokens
    (B, T, C) and the final patch mask (B, N) (None on the inference path)."""

    keep_ratios: list[torch.Tensor]
    tokens: torch.Tensor
    mask: torch.Tensor | None


class TokenPrunedViT(nn.Module):
    """A timm ViT with token pruning before the blocks in ``stages``.

    ``method`` is ``"selector"`` (learned :class:`TokenSelector` s; Gumbel + straight-through in
    training mode, top-k at inference) or ``"evit"`` (training-free top-k by the class token's
    attention in the preceding block). Input (B, C_in, H, W) images, output (B, classes) logits.
    """

    def __init__(self, vit: VisionTransformer, keep_rates: Sequence[float], stages: Sequence[int],
                 method: str = "selector", selector_dim: int | None = None, tau: float = 1.0) -> None:
        super().__init__()
        self.vit = vit
        self.keep_rates = tuple(float(r) for r in keep_rates)
        self.stages = tuple(int(s) for s in stages)
        self.method = method
        self.tau = tau
        self.sort_free = False  # True: select tokens without top-k (for runtimes without a sort)
        self.selectors: nn.ModuleList | None = None
        if method == "selector":
            dim, heads = vit.embed_dim, vit.blocks[0].attn.num_heads
            hidden = selector_dim or default_selector_dim(dim, heads)
            prev = (1.0,) + self.keep_rates[:-1]
            p = next(vit.parameters())
            self.selectors = nn.ModuleList(
                TokenSelector(dim, heads, hidden, init_keep=r / q).to(device=p.device, dtype=p.dtype)
                for r, q in zip(self.keep_rates, prev)
            )
        self._stage_of = {s: i for i, s in enumerate(self.stages)}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(images)[0]

    def forward_with_aux(self, images: torch.Tensor, generator: torch.Generator | None = None,
                         hard: bool = False) -> tuple[torch.Tensor, PruneAux]:
        """Logits (B, classes) and :class:`PruneAux`; ``generator`` seeds the Gumbel noise.
        ``hard``: the inference path (top-k, tokens removed) even in training mode, with gradients
        (to the backbone, and to the selectors through the package token's weights)."""
        vit = self.vit
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        if self.training and self.method == "selector" and not hard:
            x, aux = self._soft_blocks(x, generator)
        else:
            x, aux = self._hard_blocks(x)
        x = vit.norm(x)
        aux.tokens = x
        return vit.forward_head(x), aux

    def _hard_blocks(self, x: torch.Tensor) -> tuple[torch.Tensor, PruneAux]:
        p = self.vit.num_prefix_tokens
        n0 = x.shape[1] - p
        has_package, prev_in = False, x
        ratios = []
        for i, block in enumerate(self.vit.blocks):
            j = self._stage_of.get(i)
            if j is not None:
                keep = kept_tokens(self.keep_rates[j], n0)
                if keep < x.shape[1] - p - int(has_package) or has_package:
                    x = prune_tokens(x, p, has_package, self._scores(j, x, prev_in), keep, self.sort_free)
                    has_package = True
                ratios.append(x.new_full((x.shape[0],), keep / n0))
            prev_in = x
            x = block(x)
        return x, PruneAux(ratios, x, None)

    def _scores(self, j: int, x: torch.Tensor, prev_in: torch.Tensor) -> torch.Tensor:
        p = self.vit.num_prefix_tokens
        if self.selectors is not None:
            return self.selectors[j](x[:, p:])
        return cls_attention_scores(self.vit.blocks[self.stages[j] - 1], prev_in, p)

    def _soft_blocks(self, x: torch.Tensor,
                     generator: torch.Generator | None) -> tuple[torch.Tensor, PruneAux]:
        p = self.vit.num_prefix_tokens
        alive = x.new_ones(x.shape[0], x.shape[1] - p)
        has_package, bias = False, None
        ratios = []
        for i, block in enumerate(self.vit.blocks):
            j = self._stage_of.get(i)
            if j is not None and self.keep_rates[j] < 1.0:
                weights = torch.cat([alive, alive.new_ones(alive.shape[0], 1)], 1) if has_package else alive
                scores = self.selectors[j](x[:, p:], weights)
                x, alive = soft_prune(x, p, has_package, alive, scores, self.tau, generator)
                has_package = True
                bias = attention_bias(alive, p, has_package)
            if j is not None:
                ratios.append(alive.mean(dim=1))
            x = block(x) if bias is None else block(x, attn_mask=bias)
        return x, PruneAux(ratios, x, alive)

    def selector_parameters(self) -> list[nn.Parameter]:
        return [] if self.selectors is None else list(self.selectors.parameters())


def _check_model(model: nn.Module) -> VisionTransformer:
    if isinstance(model, TokenPrunedViT):
        raise TokenPruneError("model is already token-pruned; patch the original timm model")
    if not isinstance(model, VisionTransformer):
        name = type(model).__name__
        hint = ""
        if "pit" in type(model).__module__.lower() or "swin" in name.lower() or "levit" in name.lower():
            hint = (f" {name} pools or windows the token grid between stages, which needs every "
                    "patch token in place; pruning it would break the pooling, so it is refused.")
        raise TokenPruneError(f"unsupported model family {name}: token pruning supports {SUPPORTED}.{hint}")
    return model


def _check_rates(model: VisionTransformer, keep_rates: Sequence[float],
                 stages: Sequence[int] | None) -> tuple[tuple[float, ...], tuple[int, ...]]:
    depth = len(model.blocks)
    if stages is None:
        if depth < 4:
            raise TokenPruneError(f"model has only {depth} blocks; give stages explicitly")
        stages = default_stages(depth)
    try:
        rates, stage_t = tuple(keep_rates), tuple(stages)
    except TypeError as err:
        raise TokenPruneError(f"keep_rates and stages must be sequences: {err}") from err
    problems = token_prune_problems(rates, stage_t, depth)
    if problems:
        raise TokenPruneError("bad token-pruning settings: " + "; ".join(problems))
    return rates, stage_t


def patch_token_selectors(model: nn.Module, keep_rates: Sequence[float], stages: Sequence[int] | None = None,
                          *, selector_dim: int | None = None, tau: float = 1.0) -> TokenPrunedViT:
    """Put learned token selectors before block indices ``stages`` (0-based; default SPViT's
    (3, 6, 9) scaled to the depth). ``keep_rates[i]``: fraction of the ORIGINAL patch tokens kept
    from stage i on, non-increasing, in (0, 1]. The returned module shares ``model``'s parameters
    (copy the model first to keep an untouched teacher). Raises :class:`TokenPruneError`."""
    vit = _check_model(model)
    rates, stage_t = _check_rates(vit, keep_rates, stages)
    return TokenPrunedViT(vit, rates, stage_t, method="selector", selector_dim=selector_dim, tau=tau)


def evit_baseline(model: nn.Module, keep_rates: Sequence[float],
                  stages: Sequence[int] | None = None) -> TokenPrunedViT:
    """Training-free EViT-style pruning (Liang et al., ICLR 2022) at the same keep rates: keep
    the patch tokens the class token attends to most in the preceding block, fuse the rest."""
    vit = _check_model(model)
    rates, stage_t = _check_rates(vit, keep_rates, stages)
    if vit.cls_token is None:
        raise TokenPruneError("the EViT baseline needs a class token; this model has none")
    if stage_t[0] < 1:
        raise TokenPruneError("the EViT baseline scores tokens with the preceding block's attention; "
                              f"stage 0 has none (stages {stage_t})")
    for s in stage_t:
        attn = getattr(vit.blocks[s - 1], "attn", None)
        if not all(hasattr(attn, a) for a in ("qkv", "q_norm", "k_norm", "num_heads", "head_dim", "scale")) \
                or not hasattr(vit.blocks[s - 1], "norm1"):
            raise TokenPruneError(f"block {s - 1} has no timm Attention (qkv, q/k norm) to read "
                                  "class-token attention from")
    return TokenPrunedViT(vit, rates, stage_t, method="evit")


def patch_from_arch(model: nn.Module, arch: TokenPruneArch) -> TokenPrunedViT:
    """Selectors as described by ``arch``; ``model`` must have the dims ``arch`` records."""
    vit = _check_model(model)
    found = (vit.patch_embed.img_size[0], vit.patch_embed.patch_size[0], vit.embed_dim, len(vit.blocks),
             vit.blocks[0].attn.num_heads, vit.num_prefix_tokens)
    wanted = (arch.img_size, arch.patch_size, arch.embed_dim, arch.depth, arch.num_heads, arch.num_prefix_tokens)
    if found != wanted:
        raise TokenPruneError(f"model dims (img, patch, dim, depth, heads, prefix) {found} do not match "
                              f"the architecture's {wanted}")
    return patch_token_selectors(vit, arch.keep_rates, arch.stages, selector_dim=arch.selector_dim)
