"""A masked WDSR-B supernet for differentiable search of depth and widths.

The supernet is a :class:`tasks.sr.models.WDSRB` at the space's maximum depth and widths (same
parameter names, same init), run through learnable relaxations:

- :class:`WidthMask`: one per searched layer width (trunk C, and each block's M1 and M2). A
  categorical choice over the space's ordered width grid; the channel mask is the prefix mask
  ``mask[j] = P(width > j)`` (FBNetV2-style), so the expected kept width is ``mask.sum()`` and the
  smallest grid width is a floor that is always kept. Training samples a hard choice with
  straight-through Gumbel-softmax.
- :class:`BlockGates`: a keep probability per residual block, sampled hard with a straight-through
  relaxed Bernoulli (logistic noise); a dropped block is the identity.

With hard masks the supernet computes exactly the sliced sub-network (masked channels stay zero
through the trunk), so :meth:`SRSupernet.subnet_state_dict` gives weights for
``build_model(arch)`` that reproduce the supernet's output in derived mode.

The relaxations (:class:`~tasks.sr.relaxations.WidthMask`, :class:`~tasks.sr.relaxations.BlockGates`)
live in :mod:`tasks.sr.relaxations`; they are importable from here too.

Latency stays outside this package: :meth:`SRSupernet.expected_latency_ms` takes a callable
mapping ``(n, 4)`` rows ``[C, M1, M2, C]`` (expected widths, float) to ``(n,)`` per-block ms and
returns ``sum_i keep_prob_i * block_ms_i`` (+ an optional ``fixed_ms(C)`` term), differentiable
in every gate and mask logit.

Call order: build with :meth:`SRSupernet.from_space`; :meth:`set_search` selects which
relaxations are active (warm-up: none; width search; joint depth and width search);
``weight_parameters()`` / ``arch_parameters()`` go to separate optimizers; :meth:`derive` reads
off a :class:`spaces.sr.WDSRBArch`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from spaces.sr import SRSpace, WDSRBArch, WDSRBlock
from tasks.sr.models import WDSRB, image_precision
from tasks.sr.relaxations import BlockGates, WidthMask, bernoulli_st, gumbel_softmax_st

BlockLatencyFn = Callable[[torch.Tensor], torch.Tensor]   # (n, 4) [C, M1, M2, C] -> (n,) ms
FixedLatencyFn = Callable[[torch.Tensor], torch.Tensor]   # scalar expected C -> scalar ms
__all__ = ["BlockGates", "BlockLatencyFn", "FixedLatencyFn", "SRSupernet", "WidthMask", "bernoulli_st",
           "gumbel_softmax_st"]


def _grid(low: int, high: int, step: int) -> list[int]:
    return list(range(low, high + 1, step))


class SRSupernet(nn.Module):
    """WDSR-B at the space's maximum depth and widths with gates and width masks.

    Input ``(B, 3, H, W)`` RGB in [0, 1]; output ``(B, 3, sH, sW)``, as every SR model here.
    ``search_channels=False`` fixes the trunk width C at the space's maximum (no C mask).
    Modes: ``set_search(width, depth)`` picks the sampled relaxations used in training; in eval
    mode (``.eval()``) the forward runs the derived architecture (``derive_mode``), deterministically.
    """

    def __init__(self, space: SRSpace, search_channels: bool = True, seed: int = 0,
                 init_keep_logit: float = 3.0) -> None:
        super().__init__()
        self.space = space
        self.search_channels = search_channels
        self.net = WDSRB(space.largest())
        n = space.max_blocks
        self.c_mask = WidthMask(space.channels if search_channels else (max(space.channels),))
        self.m1_masks = nn.ModuleList(WidthMask(_grid(*space.m1)) for _ in range(n))
        self.m2_masks = nn.ModuleList(WidthMask(_grid(*space.m2)) for _ in range(n))
        self.gates = BlockGates(n, init_keep_logit)
        self.search_width = False
        self.search_depth = False
        self.tau = 1.0
        self.derive_mode = "expected"  # what the eval-mode forward runs (see derive())
        self.generator = torch.Generator().manual_seed(seed)

    @staticmethod
    def from_space(space: SRSpace, search_channels: bool = True, seed: int = 0) -> SRSupernet:
        return SRSupernet(space, search_channels=search_channels, seed=seed)

    # ---- parameters and modes ---------------------------------------------------------
    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def arch_parameters(self) -> list[nn.Parameter]:
        masks = [self.c_mask, *self.m1_masks, *self.m2_masks, self.gates]
        return [m.logits for m in masks]

    def set_search(self, width: bool, depth: bool) -> None:
        """Which relaxations the training forward samples (the others are fully on)."""
        self.search_width, self.search_depth = bool(width), bool(depth)

    def width_masks(self) -> list[WidthMask]:
        return [self.c_mask, *self.m1_masks, *self.m2_masks]

    # ---- forward ----------------------------------------------------------------------
    def _masks(self) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        n = self.space.max_blocks
        if not self.training:
            arch, kept = self._derive(0.5, self.derive_mode)
            c = self.c_mask.hard_mask(arch.channels)
            m1 = [self.m1_masks[i].hard_mask(arch.blocks[kept.index(i)].m1) if i in kept
                  else self.m1_masks[i].hard_mask(self.m1_masks[i].max_width) for i in range(n)]
            m2 = [self.m2_masks[i].hard_mask(arch.blocks[kept.index(i)].m2) if i in kept
                  else self.m2_masks[i].hard_mask(self.m2_masks[i].max_width) for i in range(n)]
            gates = torch.tensor([1.0 if i in kept else 0.0 for i in range(n)], device=c.device)
            return c, m1, m2, gates
        ones = [m.cover[-1] for m in self.width_masks()]  # the widest choice: all channels
        if self.search_width:
            g, tau = self.generator, self.tau
            c = self.c_mask.sample_mask(tau, g) if self.search_channels else ones[0]
            m1 = [m.sample_mask(tau, g) for m in self.m1_masks]
            m2 = [m.sample_mask(tau, g) for m in self.m2_masks]
        else:
            c, m1, m2 = ones[0], ones[1:1 + n], ones[1 + n:]
        gates = self.gates.sample(self.tau, self.generator) if self.search_depth else torch.ones(n)
        return c, m1, m2, gates.to(c.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an LR batch (B, 3, H, W), got {tuple(x.shape)}")
        c, m1, m2, gates = self._masks()

        def chan(v: torch.Tensor) -> torch.Tensor:
            return v.view(1, -1, 1, 1)

        net = self.net
        h = net.head(x) * chan(c)
        for i, block in enumerate(net.body):
            if not self.training and gates[i] == 0:
                continue  # derived mode: a dropped block is the identity, skip its compute
            y = F.relu(block.expand(h)) * chan(m1[i])
            y = block.reduce(y) * chan(m2[i])
            y = block.conv(y) * chan(c)
            h = h + gates[i] * y
        return net.shuffle(net.tail(h) + image_precision(net.skip, x))

    # ---- expected latency -------------------------------------------------------------
    def keep_probs(self) -> torch.Tensor:
        """``(max_blocks,)`` keep probability per block (1 while depth is not searched)."""
        return self.gates.probs() if self.search_depth else torch.ones(self.space.max_blocks)

    def expected_block_vectors(self) -> torch.Tensor:
        """``(max_blocks, 4)`` rows ``[E[C], E[M1_i], E[M2_i], E[C]]`` of expected kept widths
        (the widest ones while widths are not searched)."""
        n = self.space.max_blocks
        if self.search_width:
            c = self.c_mask.expected_width()
            m1 = torch.stack([m.expected_width() for m in self.m1_masks])
            m2 = torch.stack([m.expected_width() for m in self.m2_masks])
        else:
            c = torch.tensor(float(self.c_mask.max_width))
            m1 = torch.full((n,), float(self.m1_masks[0].max_width))
            m2 = torch.full((n,), float(self.m2_masks[0].max_width))
        cc = c.reshape(1).expand(n)
        return torch.stack([cc, m1, m2, cc], dim=1)

    def expected_latency_ms(self, block_ms: BlockLatencyFn, fixed_ms: FixedLatencyFn | None = None) -> torch.Tensor:
        """Scalar ``sum_i keep_prob_i * block_ms([E C, E M1_i, E M2_i, E C])_i (+ fixed_ms(E C))``,
        differentiable in gate and mask logits (through whichever relaxations are active)."""
        rows = self.expected_block_vectors()
        per_block = block_ms(rows)
        if per_block.shape != (rows.shape[0],):
            raise ValueError(f"block latency function returned {tuple(per_block.shape)}, expected ({rows.shape[0]},)")
        total = (self.keep_probs() * per_block).sum()
        if fixed_ms is not None:
            total = total + fixed_ms(rows[0, 0]).reshape(())
        return total

    # ---- derivation -------------------------------------------------------------------
    def _derive(self, threshold: float, mode: str = "expected") -> tuple[WDSRBArch, list[int]]:
        if mode not in ("expected", "threshold"):
            raise ValueError(f"derive mode must be 'expected' or 'threshold', got {mode!r}")
        probs = self.gates.probs().detach()  # untouched gates (init logit 3) keep every block
        n, order = self.space.max_blocks, sorted(range(self.space.max_blocks), key=lambda i: -float(probs[i]))
        if mode == "threshold":
            depth = sum(1 for p in probs.tolist() if p >= threshold)
        else:
            depth = round(float(probs.sum()))
        kept = sorted(order[:min(max(depth, self.space.min_blocks), n)])

        def width(mask: WidthMask) -> int:
            return mask.derived_width(threshold) if mode == "threshold" else mask.rounded_width()

        blocks = tuple(WDSRBlock(width(self.m1_masks[i]), width(self.m2_masks[i])) for i in kept)
        return WDSRBArch(self.space.scale, width(self.c_mask), blocks), kept

    def derive(self, threshold: float = 0.5, mode: str = "expected") -> tuple[WDSRBArch, list[int]]:
        """An architecture read off the relaxation, and the supernet block index of each block.

        ``mode="expected"`` (default): the ``round(sum of keep probabilities)`` most probable blocks
        (at least ``min_blocks``), each width the grid value nearest its expected width, so the
        result's latency stays close to the expected latency the search optimised.
        ``mode="threshold"``: blocks with keep probability >= ``threshold``, each width the widest
        grid value ``w`` with ``P(width >= w) >= threshold``; far from the expected latency when
        gates hover mid-way.
        """
        return self._derive(threshold, mode)

    def subnet_state_dict(self, arch: WDSRBArch, kept: Sequence[int]) -> dict[str, torch.Tensor]:
        """Weights for ``build_model(arch)`` sliced from the supernet; ``kept[i]`` is the supernet
        block that arch block ``i`` comes from (prefix channels of every layer)."""
        if len(kept) != arch.depth:
            raise ValueError(f"kept lists {len(kept)} blocks, the architecture has {arch.depth}")
        c = arch.channels
        src = self.net
        out = {
            "head.weight": src.head.weight[:c], "head.bias": src.head.bias[:c],
            "tail.weight": src.tail.weight[:, :c], "tail.bias": src.tail.bias,
            "skip.weight": src.skip.weight, "skip.bias": src.skip.bias,
        }
        for i, (j, b) in enumerate(zip(kept, arch.blocks)):
            blk = src.body[j]
            out[f"body.{i}.expand.weight"] = blk.expand.weight[:b.m1, :c]
            out[f"body.{i}.expand.bias"] = blk.expand.bias[:b.m1]
            out[f"body.{i}.reduce.weight"] = blk.reduce.weight[:b.m2, :b.m1]
            out[f"body.{i}.reduce.bias"] = blk.reduce.bias[:b.m2]
            out[f"body.{i}.conv.weight"] = blk.conv.weight[:c, :b.m2]
            out[f"body.{i}.conv.bias"] = blk.conv.bias[:c]
        return {k: v.detach().clone() for k, v in out.items()}
