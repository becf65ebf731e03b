"""Reading one architecture off a searched supernet and fitting it to the latency budget.

:func:`fit_to_budget` starts from the thresholded architecture and checks it with the
non-differentiable latency model. Over budget, it greedily takes the step (one block's M1 or M2
one grid step down, C one choice down, or a block dropped) that gives up the least supernet
mask probability per ms saved. When the budget binds and the result sits more than
```tolerance`` under it, it grows back the same way (most mask probability per ms added, a
dropped block coming back at the narrowest widths) while it still fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from spaces.sr import SRSpace, WDSRBArch, WDSRBlock
from tasks.sr.supernet import SRSupernet

PredictFn = Callable[[Sequence[WDSRBArch]], list[float]]  # archs -> ms


@dataclass(frozen=True)
class Fitted:
    arch: WDSRBArch
    kept: tuple[int, ...]       # supernet block index of each block
    latency_ms: float
    thresholded: WDSRBArch      # read off the supernet, before fitting
    thresholded_ms: float
    moves: int


@dataclass(frozen=True)
class _Cand:
    c: int
    blocks: tuple[tuple[int, int], ...]
    kept: tuple[int, ...]

    def arch(self, scale: int) -> WDSRBArch:
        return WDSRBArch(scale, self.c, tuple(WDSRBlock(m1, m2) for m1, m2 in self.blocks))


def _grid(r: tuple[int, int, int]) -> list[int]:
    return list(range(r[0], r[1] + 1, r[2]))


class _Scores:
    """The supernet's soft masks and keep probabilities, as plain lists (read once)."""

    def __init__(self, net: SRSupernet) -> None:
        with torch.no_grad():
            self.c = net.c_mask.soft_mask().tolist()
            self.m1 = [m.soft_mask().tolist() for m in net.m1_masks]
            self.m2 = [m.soft_mask().tolist() for m in net.m2_masks]
            self.keep = net.gates.probs().tolist()

    @staticmethod
    def span(mask: list[float], a: int, b: int) -> float:
        """Mean mask probability of channels ``[min(a,b), max(a,b))`` (1 beyond the mask)."""
        lo, hi = min(a, b), max(a, b)
        vals = [mask[j] if j < len(mask) else 1.0 for j in range(lo, hi)]
        return sum(vals) / len(vals) if vals else 0.0


def _moves(cand: _Cand, space: SRSpace, scores: _Scores, grow: bool,
           search_channels: bool) -> list[tuple[float, _Cand]]:
    """``(score, candidate)``: score is the mask probability gained (grow) or given up (shrink)."""
    m1g, m2g, cg = _grid(space.m1), _grid(space.m2), sorted(space.channels)
    d = 1 if grow else -1
    out: list[tuple[float, _Cand]] = []
    for i, ((m1, m2), j) in enumerate(zip(cand.blocks, cand.kept)):
        for which, grid, mask in ((0, m1g, scores.m1[j]), (1, m2g, scores.m2[j])):
            cur = (m1, m2)[which]
            k = grid.index(cur) + d if cur in grid else -1
            if 0 <= k < len(grid):
                new = list(cand.blocks)
                new[i] = (grid[k], m2) if which == 0 else (m1, grid[k])
                out.append((_Scores.span(mask, cur, grid[k]), _Cand(cand.c, tuple(new), cand.kept)))
        if not grow and len(cand.blocks) > space.min_blocks:
            out.append((scores.keep[j], _Cand(cand.c, cand.blocks[:i] + cand.blocks[i + 1:],
                                              cand.kept[:i] + cand.kept[i + 1:])))
    if grow and len(cand.blocks) < space.max_blocks:  # bring back the most probable dropped block, narrowest
        dropped = [j for j in range(len(scores.keep)) if j not in cand.kept]
        if dropped:
            j = max(dropped, key=lambda b: scores.keep[b])
            at = sum(1 for k in cand.kept if k < j)
            out.append((scores.keep[j], _Cand(cand.c, cand.blocks[:at] + ((m1g[0], m2g[0]),) + cand.blocks[at:],
                                              cand.kept[:at] + (j,) + cand.kept[at:])))
    if search_channels and cand.c in cg:
        k = cg.index(cand.c) + d
        if 0 <= k < len(cg):
            out.append((_Scores.span(scores.c, cand.c, cg[k]), _Cand(cg[k], cand.blocks, cand.kept)))
    return out


def fit_to_budget(net: SRSupernet, predict: PredictFn, budget_ms: float, tolerance: float = 0.05,
                  threshold: float = 0.5, mode: str = "expected", max_moves: int = 2000,
                  channels: int | None = None) -> Fitted:
    """The architecture read off ``net`` (:meth:`SRSupernet.derive` with ``mode``), shrunk until ``predict`` puts it within
    ``budget_ms``, then (when the budget binds) grown back towards ``(1 - tolerance) * budget_ms``.
    ``channels``: hold the trunk width C at this value (read off and fitted with C fixed)."""
    space = net.space
    arch, kept = net.derive(threshold, mode)
    scores = _Scores(net)
    move_c = net.search_channels
    if channels is not None:
        if channels not in space.channels:
            raise ValueError(f"channels={channels} is not one of the space's {list(space.channels)}")
        arch, move_c = WDSRBArch(space.scale, channels, arch.blocks), False
    cand = _Cand(arch.channels, tuple((b.m1, b.m2) for b in arch.blocks), tuple(kept))
    lat = predict([arch])[0]
    start_arch, start_ms, moves = arch, lat, 0
    while lat > budget_ms and moves < max_moves:
        options = _moves(cand, space, scores, False, move_c)
        if not options:
            break
        lats = predict([c.arch(space.scale) for _, c in options])
        ranked = [(cost / (lat - ms), ms, c) for (cost, c), ms in zip(options, lats) if ms < lat]
        if not ranked:
            break
        _, lat, cand = min(ranked, key=lambda r: r[0])
        moves += 1
    binds = predict([space.largest()])[0] > budget_ms
    while binds and lat < (1 - tolerance) * budget_ms and moves < max_moves:
        options = _moves(cand, space, scores, True, move_c)
        lats = predict([c.arch(space.scale) for _, c in options]) if options else []
        ranked = [(gain / max(ms - lat, 1e-6), ms, c) for (gain, c), ms in zip(options, lats) if ms <= budget_ms]
        if not ranked:
            break
        _, lat, cand = max(ranked, key=lambda r: r[0])
        moves += 1
    final = cand.arch(space.scale)
    space.validate(final)
    return Fitted(final, cand.kept, float(lat), start_arch, float(start_ms), moves)
