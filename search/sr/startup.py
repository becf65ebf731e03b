"""A feasible, stratified start for the guided samplers (TPE, NSGA-II) on the SR space.

Uniform random start-up trials mostly miss a tight budget: at 16 ms on the S21, random search drew
280 architectures in 150 s and 15 of them fitted. TPE's ten start-up trials then put every
infeasible draw in its "bad" group, and the trunk widths those draws happened to have (C=24 with
many blocks) look bad with them: in that run TPE never tried a 1-block C=24 network, the best
family at that budget (Set5 35.22 dB mean of 3 trainings, against 35.15 for TPE's C=20 pick).

:func:`feasible_design` draws the start instead from architectures the latency model puts between
``low`` x budget and the budget, taking the trunk widths in turn (widest first), so every width
is tried with members that get trained. It needs a cheap latency model (published or fitted
predictor); with latency measured on this host the samplers keep their own random start.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from spaces.sr import SRSpace, WDSRBArch, WDSRBlock


def _draw(space: SRSpace, rng: random.Random, channels: int, max_depth: int, m1: list[int],
          m2: list[int]) -> WDSRBArch:
    depth = rng.randint(space.min_blocks, max_depth)
    return WDSRBArch(space.scale, channels, tuple(WDSRBlock(rng.choice(m1), rng.choice(m2)) for _ in range(depth)))


def feasible_design(space: SRSpace, latencies_ms: Callable[[Sequence[WDSRBArch]], list[float]], budget_ms: float,
                    n: int, seed: int, low: float = 0.6, batch: int = 256, max_batches: int = 200) -> list[WDSRBArch]:
    """Up to ``n`` distinct architectures with latency in ``[low * budget_ms, budget_ms]``, trunk
    widths in turn (widest first). Depth is drawn uniformly up to the deepest network of that
    width that fits at the narrowest block widths, so tight budgets do not waste the draws."""
    rng = random.Random(seed)
    widths = sorted(space.channels, reverse=True)
    m1, m2 = (list(range(lo, hi + 1, step)) for lo, hi, step in (space.m1, space.m2))
    deepest = {}
    for c in widths:
        narrow = [WDSRBArch(space.scale, c, (WDSRBlock(space.m1[0], space.m2[0]),) * d)
                  for d in range(space.min_blocks, space.max_blocks + 1)]
        fits = [a.depth for a, ms in zip(narrow, latencies_ms(narrow)) if ms <= budget_ms]
        if fits:
            deepest[c] = max(fits)
    usable = [w for w in widths if w in deepest]
    out: list[WDSRBArch] = []
    turn, misses = 0, 0
    while len(out) < n and usable and misses < max_batches:
        c = usable[turn % len(usable)]
        cands = [_draw(space, rng, c, deepest[c], m1, m2) for _ in range(batch)]
        ok = [a for a, ms in zip(cands, latencies_ms(cands)) if low * budget_ms <= ms <= budget_ms and a not in out]
        if ok:
            out.append(ok[0])
            turn += 1
        else:
            misses += 1
            if misses % 5 == 0:
                turn += 1  # this width has no member in the band often enough: move on
    return out
