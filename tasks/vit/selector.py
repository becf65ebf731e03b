"""The light multi-head token selector (SPViT, Kong et al., ECCV 2022, simplified for CPU speed)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TokenSelector(nn.Module):
    """Keep logits for tokens from a small per-head MLP over each token and a pooled summary.

    ``LayerNorm -> Linear(dim, hidden) -> GELU`` per token, split into ``num_heads`` groups of
    ``hidden / num_heads``; each head mixes its token features with the (alive-weighted) mean of
    all candidates through one more GELU layer and scores them; heads are combined by learned
    softmax weights. Input (B, n, dim), output (B, n) logits. For deit_small (dim 384, hidden 96)
    this is about 2% of one transformer block.
    """

    def __init__(self, dim: int, num_heads: int, hidden: int, init_keep: float = 0.5) -> None:
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"selector hidden width {hidden} must divide by num_heads {num_heads}")
        e = hidden // num_heads
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.w_local = nn.Parameter(torch.randn(num_heads, e, e) / math.sqrt(e))
        self.w_global = nn.Parameter(torch.randn(num_heads, e, e) / math.sqrt(e))
        self.b2 = nn.Parameter(torch.zeros(num_heads, e))
        self.w_score = nn.Parameter(torch.randn(num_heads, e) * 0.02)
        # Start calibrated: keep probability ~ init_keep before any training.
        p = min(max(init_keep, 0.02), 0.98)
        self.b_score = nn.Parameter(torch.full((num_heads,), math.log(p / (1 - p))))
        self.head_logits = nn.Parameter(torch.zeros(num_heads))

    def forward(self, tokens: torch.Tensor, alive: torch.Tensor | None = None) -> torch.Tensor:
        """``tokens`` (B, n, dim); ``alive`` (B, n) weights for the pooled summary (None: all)."""
        b, n, _ = tokens.shape
        h = F.gelu(self.fc1(self.norm(tokens)))  # (B, n, hidden)
        if alive is None:
            g = h.mean(dim=1)
        else:
            g = (h * alive.unsqueeze(-1)).sum(dim=1) / alive.sum(dim=1, keepdim=True).clamp_min(1.0)
        hl = h.view(b, n, self.num_heads, -1).transpose(0, 2).reshape(self.num_heads, n * b, -1)
        gl = g.view(b, self.num_heads, -1).transpose(0, 1)  # (H, B, e)
        local = hl @ self.w_local  # (H, n*B, e), rows ordered (n, B)
        glob = (gl @ self.w_global).repeat(1, n, 1)  # (H, n*B, e), rows ordered (n, B)
        z = F.gelu(local + glob + self.b2.unsqueeze(1))
        s = (z @ self.w_score.unsqueeze(-1)).squeeze(-1) + self.b_score.unsqueeze(1)  # (H, n*B)
        s = (self.head_logits.softmax(dim=0) @ s).view(n, b)
        return s.transpose(0, 1)
