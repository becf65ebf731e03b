"""Pure token-pruning functions shared by the learned selector and the EViT baseline.

Token layout everywhere: ``(B, T, C)`` with ``P`` prefix tokens first (class, register,
distillation), then the patch tokens, then (after the first stage) one package token.
Scores are keep logits over the *candidates* ``x[:, P:]`` (patches and the old package token):
higher means more worth keeping. Dropped tokens, and the old package token, are fused into a new
package token weighted by ``softmax(score)`` over the dropped set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Attention bias for dropped tokens is log(mask + _MASK_EPS): about -13.8, i.e. weight 1e-6, while
# the straight-through gradient through log() stays finite (see soft_prune).
_MASK_EPS = 1e-6


def prune_tokens(
    x: torch.Tensor, num_prefix: int, has_package: bool, scores: torch.Tensor, keep: int,
    sort_free: bool = False,
) -> torch.Tensor:
    """Inference path: keep the top-``keep`` patch tokens of every image, fuse the rest.

    ``x`` (B, T, C); ``scores`` (B, T - num_prefix) keep logits over the candidates. Returns
    (B, num_prefix + keep + 1, C): prefix, kept patches in their original order, package token.
    Every image keeps the same number of tokens, so the batch stays one dense tensor.
    ``sort_free``: select by :func:`kept_mask` and a one-hot matmul instead of top-k and gather
    (the same tokens; for runtimes without a sort, such as LiteRT).
    """
    b, _, c = x.shape
    cand = x[:, num_prefix:]
    n = cand.shape[1] - int(has_package)
    if sort_free:
        kept, mask = _select_sort_free(cand[:, :n], scores[:, :n], keep)
        mask = F.pad(mask, (0, scores.shape[1] - n))
        weights = scores.masked_fill(mask, float("-inf")).softmax(dim=1)
    else:
        idx = scores[:, :n].topk(keep, dim=1).indices.sort(dim=1).values  # (B, keep)
        kept = cand.gather(1, idx.unsqueeze(-1).expand(b, keep, c))
        weights = scores.scatter(1, idx, float("-inf")).softmax(dim=1)  # 0 on kept tokens
    package = weights.unsqueeze(1) @ cand  # (B, 1, C)
    return torch.cat([x[:, :num_prefix], kept, package], dim=1)


def kept_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """(B, N) bool: the ``keep`` highest scores of every row, ties to the lower index, found by
    counting for each token the tokens ranked above it (comparisons and sums only, no sort)."""
    n = scores.shape[1]
    order = torch.arange(n, device=scores.device)
    above = scores.unsqueeze(1) > scores.unsqueeze(2)  # [b, i, j]: token j scores above token i
    tie_before = (scores.unsqueeze(1) == scores.unsqueeze(2)) & (order[None, None, :] < order[None, :, None])
    rank = (above | tie_before).to(scores.dtype).sum(dim=2)  # float: exact for any token count here
    return rank < keep


def _select_sort_free(cand: torch.Tensor, scores: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept tokens (B, keep, C) in their original order, by a one-hot matmul, and the mask."""
    mask = kept_mask(scores, keep)
    n = scores.shape[1]
    upto = torch.ones(n, n, device=scores.device, dtype=scores.dtype).triu()  # [j, i]: j <= i
    slot = mask.to(scores.dtype) @ upto - 1  # (B, N): a kept token's place among the kept
    places = torch.arange(keep, device=scores.device, dtype=scores.dtype)
    onehot = (slot.unsqueeze(1) == places[None, :, None]) & mask.unsqueeze(1)  # (B, keep, N)
    return onehot.to(cand.dtype) @ cand, mask


def soft_prune(
    x: torch.Tensor,
    num_prefix: int,
    has_package: bool,
    alive: torch.Tensor,
    scores: torch.Tensor,
    tau: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training path: hard Gumbel-softmax keep/drop decisions with straight-through gradients.

    Tokens are not removed (images would keep different counts); a dropped token is masked out of
    attention by :func:`attention_bias` instead. ``alive`` (B, N) is the mask so far (1 kept,
    0 dropped, straight-through values); ``scores`` (B, N [+1]) keep logits over the candidates.
    Returns the tokens with the package slot appended or replaced, (B, P + N + 1, C), and the
    new mask (B, N) = alive * keep.
    """
    n = alive.shape[1]
    logits = scores[:, :n]
    # drawn where the generator lives (a CPU generator drives a GPU run: same noise on any device)
    where = generator.device if generator is not None else logits.device
    u = torch.rand(logits.shape, generator=generator, device=where, dtype=logits.dtype)
    u = u.to(logits.device).clamp(1e-6, 1 - 1e-6)
    # Two-class Gumbel-softmax == sigmoid of the logit difference plus logistic noise.
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)
    keep = (soft > 0.5).to(soft.dtype) + (soft - soft.detach())  # exactly 0/1, soft gradient
    mask = alive * keep
    dropped = alive - mask  # 1 for tokens dropped at this stage (straight-through)
    cand = x[:, num_prefix:num_prefix + n]
    top = scores.detach().amax(dim=1, keepdim=True)
    w = dropped * torch.exp(logits - top)
    total = w.sum(dim=1, keepdim=True)
    package = (w.unsqueeze(1) @ cand).squeeze(1)
    if has_package:
        w_old = torch.exp(scores[:, n:] - top)  # (B, 1)
        package = package + w_old * x[:, -1]
        total = total + w_old
    package = package / total.clamp_min(1e-6)
    x = torch.cat([x[:, :num_prefix + n], package.unsqueeze(1)], dim=1)
    return x, mask


def attention_bias(mask: torch.Tensor, num_prefix: int, has_package: bool) -> torch.Tensor:
    """Additive attention mask (B, 1, 1, T) from a patch mask (B, N): dropped keys get -13.8."""
    b = mask.shape[0]
    ones = mask.new_ones(b, num_prefix)
    parts = [ones, mask] + ([mask.new_ones(b, 1)] if has_package else [])
    full = torch.cat(parts, dim=1)
    return torch.log(full + _MASK_EPS)[:, None, None, :]


def cls_attention_scores(block: torch.nn.Module, x_in: torch.Tensor, num_prefix: int) -> torch.Tensor:
    """EViT scores: log of the class token's attention (mean over heads) in timm ``block``.

    Recomputed from the block's own weights on its input ``x_in`` (B, T, C) — only the class
    query and the keys, with timm's q/k norm — so timm's forward is untouched. Returns (B, T - P).
    """
    attn = block.attn
    h = block.norm1(x_in)
    b, t, _ = h.shape
    d = attn.num_heads * attn.head_dim
    weight, bias = attn.qkv.weight, attn.qkv.bias
    q = F.linear(h[:, :1], weight[:d], None if bias is None else bias[:d])
    k = F.linear(h, weight[d:2 * d], None if bias is None else bias[d:2 * d])
    q = attn.q_norm(q.view(b, 1, attn.num_heads, attn.head_dim).transpose(1, 2))
    k = attn.k_norm(k.view(b, t, attn.num_heads, attn.head_dim).transpose(1, 2))
    a = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1).mean(dim=1)  # (B, 1, T)
    return torch.log(a[:, 0, num_prefix:] + 1e-12)
