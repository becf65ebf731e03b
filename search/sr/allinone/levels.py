"""Spare levels: choose each operating point's sub-network after training, by measuring then.

On a host whose speed at a thread count moves between the search and the end of a run (measured
on this project's 2-core VM: one 11-block network ran 45 ms at 2 threads during the search and
26 ms ten minutes later, another 47 ms and then 70 ms), sub-networks chosen before training can
miss the budget or leave latency uneven when finally timed. So the All-in-One network is trained
on a chain of nested *levels* (the searched network at the top, each next one about
``step`` of the MACs of the one before), and every point takes its level from timings made right
before the final measurement: All-in-One's own idea of switching to the mask that fits the
device's current speed, applied once at the end of the run.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search.console import say
from search.sr.allinone.chain import PointChoice, ladder, macs_per_pixel
from search.sr.allinone.points import AtPoint, OperatingPoint, PointLatency
from spaces import ArchError, SRSpace, WDSRBArch, WDSRBlock
from tasks.sr.allinone import AllInOneWDSRB


def trimmed(parent: WDSRBArch, space: SRSpace, max_drop: int = 2) -> list[WDSRBArch]:
    """Fine cuts of ``parent``: its first ``d`` blocks (down to ``max_drop`` fewer), the last
    ``k`` of them one ``M1`` grid step narrower (``M2`` in proportion), every ``k``. One block
    narrower moves a 10-block network's MACs by ~1.5%, one block fewer by ~8%, where the uniform
    :func:`~search.sr.allinone.chain.ladder` moves by 14-24% (measured gaps of 1.15-1.38x in
    latency left no level inside a governor's band)."""
    low1, _, step1 = space.m1
    low2 = space.m2[0]
    out = []
    for depth in range(max(space.min_blocks, parent.depth - max_drop), parent.depth + 1):
        kept = parent.blocks[:depth]
        for k in range(depth + 1):
            blocks = kept[:depth - k] + tuple(
                WDSRBlock(m1 := max(low1, b.m1 - step1), min(b.m2, max(low2, round(b.m2 * m1 / b.m1))))
                for b in kept[depth - k:])
            arch = WDSRBArch(parent.scale, parent.channels, blocks)
            try:
                out.append(space.validate(arch))
            except ArchError:
                continue
    return out


def level_chain(top: WDSRBArch, space: SRSpace, floor_macs: float, step: float = 0.85,
                max_levels: int = 8) -> list[WDSRBArch]:
    """``top`` and nested sub-networks below it, largest first: each the largest cut of the
    previous one (its :func:`~search.sr.allinone.chain.ladder` and :func:`trimmed` cuts) with at
    most ``step`` of its MACs, until one is at or under ``floor_macs`` or ``max_levels`` are listed."""
    if not 0 < step < 1:
        raise ValueError(f"level step {step} must be in (0, 1)")
    chain = [top]
    while len(chain) < max_levels and macs_per_pixel(chain[-1]) > floor_macs:
        cap = step * macs_per_pixel(chain[-1])
        below = [r for r in ladder(chain[-1], space) + trimmed(chain[-1], space) if macs_per_pixel(r) <= cap]
        if not below:
            break
        chain.append(max(below, key=lambda r: (macs_per_pixel(r), r.depth)))
    return chain


def search_chain(search: Callable[[], list[PointChoice]], space: SRSpace, spare: int, step: float,
                 headroom: float = 1.0, log: Callable[[str], None] = print,
                 ) -> tuple[list[PointChoice], list[WDSRBArch]]:
    """Nested choices from ``search()`` (fastest point first) and the chain of up to ``1 + spare``
    levels under the first one, down to 0.9x the smallest choice or 0.45x the top's MACs (both
    over ``headroom``, the factor the search's target was raised by).

    A chain of fewer than half the levels means the top came out too small to hold them: the
    search ran in one of this host's slow phases (one found a 1-block network at 11 ms for a 72 ms
    aim, and its chain had a single level). Then the search runs once more, and the second
    answer stands."""
    for attempt in range(2):
        choices = search()
        top = choices[0].arch
        floor = min(0.9 * min(macs_per_pixel(c.arch) for c in choices), 0.45 * macs_per_pixel(top)) / headroom
        chain = level_chain(top, space, floor, step, max_levels=1 + spare)
        if len(chain) >= max(2, (1 + spare) // 2):
            break
        log(f"  the chain holds only {len(chain)} of {1 + spare} levels under its top ({top.depth} blocks, "
            f"C={top.channels}, [M1, M2]={[top.blocks[0].m1, top.blocks[0].m2]}): "
            + ("searching once more" if attempt == 0 else "going on with it"))
    return choices, chain


MAX_LEVELS = 20  # a chain's levels, top included
MAX_ASSIGNMENTS = MAX_LEVELS ** 3  # every assignment of them to 3 points


@dataclass(frozen=True)
class LevelChoice:
    point: OperatingPoint
    level: int                # index into the chain (0 = largest)
    latency_ms: float         # as timed for the choice
    meets_aim: bool           # within the target


def choose_levels(points: Sequence[OperatingPoint], ms: Mapping[tuple[int, str], float], n_levels: int,
                  target_ms: float, level: float | None = 0.05, first: int = 0) -> list[LevelChoice]:
    """One level per point, listed largest level first. ``ms[(i, point.name)]``: latency of level
    ``i`` (0 = largest) at that point. Any assignment is nested, since the levels form a chain.

    Among assignments where every point is within ``target_ms``, those whose spread (max / min
    latency) is within ``1 + level`` win, and among them the largest networks (smallest sum of
    level indices); where none is that level, the least spread. ``level=None``: each point simply
    takes its largest level within the target. A point that fits no level takes the smallest, and
    says so (``meets_aim`` False). Exhaustive over ``n_levels ** len(points)`` assignments
    (at most :data:`MAX_ASSIGNMENTS`: 20 levels at 3 points). Levels above
    ``first`` are not given to any point (they are the governor's headroom).
    """
    names = [p.name for p in points]
    if not 0 <= first < n_levels:
        raise ValueError(f"first={first} must index one of the {n_levels} levels")
    fits = {p: [i for i in range(first, n_levels) if ms[(i, p)] <= target_ms] for p in names}
    if level is None or any(not f for f in fits.values()):
        pick = {p: (fits[p][0] if fits[p] else n_levels - 1) for p in names}
    else:
        if (n_levels - first) ** len(names) > MAX_ASSIGNMENTS:
            raise ValueError(f"choose_levels searches at most {MAX_ASSIGNMENTS} assignments, got {n_levels - first} "
                             f"levels ** {len(names)} points; use fewer spare levels or points")

        def score(combo: tuple[int, ...]) -> tuple[bool, float, float]:
            lat = [ms[(i, p)] for i, p in zip(combo, names)]
            spread = max(lat) / min(lat)
            level_ok = spread <= 1 + level
            return (not level_ok, sum(combo) if level_ok else spread, spread)

        best = min(itertools.product(*(fits[p] for p in names)), key=score)
        pick = dict(zip(names, best))
    ordered = sorted(points, key=lambda p: (pick[p.name], ms[(pick[p.name], p.name)]))
    return [LevelChoice(p, pick[p.name], ms[(pick[p.name], p.name)], ms[(pick[p.name], p.name)] <= target_ms)
            for p in ordered]


def reselect(model: AllInOneWDSRB, chain: list[WDSRBArch], points: tuple[OperatingPoint, ...], lat: PointLatency,
             target_ms: float, opts: dict[str, Any],
             ) -> tuple[list[PointChoice], dict[str, int], dict[tuple[int, str], float]]:
    """Time every trained level at every point (interleaved rounds, :meth:`PointLatency.interleaved`)
    and give each point its level (:func:`choose_levels`). Returns the choices, each point's level
    index, and the timings ``(level, point name) -> ms`` (median of the rounds)."""
    pairs = [(i, p) for i in range(len(chain)) for p in points]
    timed = [AtPoint(model, p, lambda i=i: model.set_operating_point(f"level{i}")) for i, p in pairs]
    timings = lat.interleaved(timed, int(opts["search_rounds"]))
    ms = {(i, p.name): statistics.median(t.round_ms) for (i, p), t in zip(pairs, timings)}
    # The points' levels lie within one band of each other, a band below the target (so the
    # governor's band around them stays within it; where some point fits nothing there, the target
    # itself), and below the top level when the governor runs: the top is its headroom.
    band = float(opts["band"])
    first = 1 if opts["governor"] and len(chain) > 2 else 0
    tolerance = None if opts["level"] is None else band
    picked = choose_levels(points, ms, len(chain), target_ms / (1 + band), tolerance, first)
    if not all(c.meets_aim for c in picked):
        picked = choose_levels(points, ms, len(chain), target_ms, tolerance, first)
    say(f"levels timed now ({len(chain)} levels x {len(points)} points): "
        + "; ".join(f"level{i} " + "/".join(f"{ms[i, p.name]:.1f}" for p in points) + " ms" for i in range(len(chain))))
    for c in picked:
        a = chain[c.level]
        say(f"  {c.point.name}: level{c.level}, {a.depth} blocks, C={a.channels}, "
            f"[M1, M2]={[a.blocks[0].m1, a.blocks[0].m2]}, {c.latency_ms:.2f} ms "
            f"({'meets' if c.meets_aim else 'MISSES'} target {target_ms:.2f} ms)")
    choices = [PointChoice(c.point, chain[c.level], c.latency_ms, c.meets_aim, len(pairs)) for c in picked]
    return choices, {c.point.name: c.level for c in picked}, ms
