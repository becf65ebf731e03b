"""The learnable relaxations of :class:`tasks.sr.supernet.SRSupernet`: straight-through samplers
and the two kinds of architecture logits.

- :class:`WidthMask`: a categorical choice over an ordered width grid; the channel mask is the
  prefix mask ``mask[j] = P(width > j)`` (FBNetV2-style), so the expected kept width is
  ``mask.sum()`` and the smallest grid width is a floor that is always kept. Training samples a
  hard choice with straight-through Gumbel-softmax.
- :class:`BlockGates`: a keep probability per residual block, sampled hard with a
  straight-through relaxed Bernoulli (logistic noise).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def _uniform(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    u = torch.rand(*shape, generator=generator) if generator is not None else torch.rand(*shape)
    return u.to(device).clamp_(1e-6, 1 - 1e-6)


def gumbel_softmax_st(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A hard one-hot sample ``(K,)`` of ``softmax(logits)`` whose gradient is that of the
    Gumbel-softmax relaxation at temperature ``tau`` (straight-through)."""
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    g = -torch.log(-torch.log(_uniform(logits.shape, generator, logits.device)))
    soft = F.softmax((logits + g) / tau, dim=-1)
    hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def bernoulli_st(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard 0/1 samples of ``sigmoid(logits)`` with the relaxed-Bernoulli (binary Concrete)
    gradient at temperature ``tau`` (straight-through); same shape as ``logits``."""
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    u = _uniform(logits.shape, generator, logits.device)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)
    return (soft > 0.5).to(soft.dtype) - soft.detach() + soft


class WidthMask(nn.Module):
    """A learned choice among ordered widths ``choices`` (ascending, e.g. 8, 16, ..., 144).

    ``logits``: ``(K,)``, initialised so the widest choice holds ``init_max_prob`` of the mass and
    the rest share the remainder. Masks are ``(max_width,)`` float vectors; channels below the
    smallest choice (the floor) are always 1.
    """

    def __init__(self, choices: Sequence[int], init_max_prob: float = 0.6) -> None:
        super().__init__()
        widths = sorted(int(c) for c in choices)
        if not widths or widths[0] < 1 or len(set(widths)) != len(widths):
            raise ValueError(f"width choices must be distinct positive integers, got {list(choices)}")
        if not 0 < init_max_prob < 1:
            raise ValueError(f"init_max_prob must lie in (0, 1), got {init_max_prob}")
        self.widths = widths
        k = len(widths)
        cover = torch.zeros(k, widths[-1])
        for i, w in enumerate(widths):
            cover[i, :w] = 1.0
        self.register_buffer("cover", cover, persistent=False)  # (K, max_width)
        self.register_buffer("width_values", torch.tensor(widths, dtype=torch.float32), persistent=False)
        init = torch.zeros(k)
        if k > 1:
            init[-1] = torch.log(torch.tensor(init_max_prob / (1 - init_max_prob) * (k - 1)))
        self.logits = nn.Parameter(init)

    @property
    def max_width(self) -> int:
        return self.widths[-1]

    def probs(self) -> torch.Tensor:
        """``(K,)`` choice probabilities."""
        return F.softmax(self.logits, dim=-1)

    def soft_mask(self) -> torch.Tensor:
        """``(max_width,)``: ``P(width > j)`` for channel ``j``; its sum is the expected width."""
        return self.probs() @ self.cover

    def expected_width(self) -> torch.Tensor:
        """Scalar expected width (channels), differentiable in ``logits``."""
        return self.probs() @ self.width_values

    def sample_mask(self, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """A hard prefix mask ``(max_width,)`` (one sampled width) with the straight-through
        Gumbel-softmax gradient."""
        return gumbel_softmax_st(self.logits, tau, generator) @ self.cover

    def derived_width(self, threshold: float = 0.5) -> int:
        """The widest choice ``w`` with ``P(width >= w) >= threshold`` (the thresholded mask)."""
        with torch.no_grad():
            at_least = torch.flip(torch.cumsum(torch.flip(self.probs(), [0]), 0), [0])  # P(width >= w_k)
        kept = [w for w, p in zip(self.widths, at_least.tolist()) if p >= threshold]
        return kept[-1] if kept else self.widths[0]

    def rounded_width(self) -> int:
        """The grid choice nearest to the expected width (ties go to the wider one)."""
        e = float(self.expected_width().detach())
        return min(self.widths, key=lambda w: (abs(w - e), -w))

    def hard_mask(self, width: int) -> torch.Tensor:
        """``(max_width,)`` 0/1 mask keeping the first ``width`` channels."""
        return (torch.arange(self.max_width, device=self.cover.device) < width).to(self.cover.dtype)

    def set_width(self, width: int, confidence: float = 0.9) -> None:
        """Point the distribution at ``width`` (one of the choices) with ``confidence`` mass."""
        if width not in self.widths:
            raise ValueError(f"width {width} is not one of {self.widths}")
        k = len(self.widths)
        with torch.no_grad():
            self.logits.zero_()
            if k > 1:
                self.logits[self.widths.index(width)] = float(torch.log(torch.tensor(confidence / (1 - confidence)
                                                                                    * (k - 1))))


class BlockGates(nn.Module):
    """Keep probabilities ``sigmoid(logits)`` of ``n`` residual blocks, ``logits`` ``(n,)``."""

    def __init__(self, n: int, init_logit: float = 3.0) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"need at least one block, got {n}")
        self.logits = nn.Parameter(torch.full((n,), float(init_logit)))

    def probs(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def sample(self, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Hard 0/1 gates ``(n,)`` with the straight-through relaxed-Bernoulli gradient."""
        return bernoulli_st(self.logits, tau, generator)
