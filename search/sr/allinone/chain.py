"""Search for nested sub-networks, one per operating point, each under the same latency budget.

The points are ordered fastest first (by the template's latency at each point). The fastest
point gets the largest network of a *ladder* cut out of the template (uniform WDSR-B blocks at
the space's maximum depth) whose latency there is at most ``target_ms``; each slower point gets
the largest rung of the ladder cut out of the previous point's network (fewer blocks, narrower
``M1``/``M2``, same trunk) that meets ``target_ms`` at *its* speed. So every sub-network is a
subset of the next larger one, and every point lands just under the same target.

Rungs are ordered by multiply-accumulates per output pixel, the capacity proxy this search
maximises; latency is close to monotone along that order, so a bisection finds the largest
feasible rung with ~log2(rungs) latency evaluations (each one measured on this host, or the
modelled value for a phone's DVFS levels, where every rung is evaluated).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search.errors import UserError
from search.sr.allinone.points import OperatingPoint, PointLatency
from search.study.bisection import last_within
from spaces import ArchError, SRSpace, WDSRBArch, WDSRBlock

LatencyFn = Callable[[WDSRBArch, OperatingPoint], float]


def macs_per_pixel(arch: WDSRBArch) -> int:
    """Multiply-accumulates per LR pixel of a WDSR-B network (all convs, 3x3 and 5x5 included)."""
    c, out_c = arch.channels, 3 * arch.scale**2
    body = sum(c * b.m1 + b.m1 * b.m2 + 9 * b.m2 * c for b in arch.blocks)
    return 27 * c + body + 9 * c * out_c + 75 * out_c


def template(space: SRSpace, channels: int, m1: int, m2: int, depth: int | None = None) -> WDSRBArch:
    """Uniform-block WDSR-B at ``depth`` (default: the space's maximum), checked against the space."""
    arch = WDSRBArch(space.scale, channels, (WDSRBlock(m1, m2),) * (depth or space.max_blocks))
    try:
        return space.validate(arch)
    except ArchError as err:
        raise ValueError(f"strategy template C={channels}, M1={m1}, M2={m2}: {err}") from None


def widen(arch: WDSRBArch, space: SRSpace) -> WDSRBArch | None:
    """One size up in every width the space still allows: ``M1`` x1.25 (on the grid), ``M2`` +2,
    the trunk ``C`` to the next width of the space; ``None`` when ``arch`` is already the widest."""
    _, high1, step1 = space.m1
    top1 = max(b.m1 for b in arch.blocks)
    m1 = min(high1, top1 + step1 * max(1, round(0.25 * top1 / step1)))
    m2 = min(space.m2[1], max(b.m2 for b in arch.blocks) + 2)
    wider = [c for c in space.channels if c > arch.channels]
    c = min(wider) if wider else arch.channels
    grown = template(space, c, m1, m2, depth=arch.depth)
    return None if grown == arch else grown


def grow_to_bind(root: WDSRBArch, space: SRSpace, point: OperatingPoint, target_ms: float, latency: LatencyFn,
                 log: Callable[[str], None] = print) -> WDSRBArch:
    """``root`` widened (see :func:`widen`) until it misses ``target_ms`` at the fastest ``point``.

    The fastest point takes the largest network that fits, cut out of ``root``; a template that
    already fits there would leave that point under-using its budget and every slower point
    copying it, so the latency would follow the point's speed instead of staying level.
    """
    arch = root
    while (ms := latency(arch, point)) <= target_ms:
        bigger = widen(arch, space)
        if bigger is None:
            log(f"  template is the space's widest at depth {arch.depth} and still fits at {point.name} "
                f"({ms:.2f} ms <= {target_ms:.2f} ms): that point's budget does not bind")
            return arch
        log(f"  template C={arch.channels} [M1, M2]={[arch.blocks[0].m1, arch.blocks[0].m2]} fits at "
            f"{point.name} ({ms:.2f} ms): widened to C={bigger.channels} [M1, M2]={[bigger.blocks[0].m1, bigger.blocks[0].m2]}")
        arch = bigger
    return arch


def ladder(parent: WDSRBArch, space: SRSpace, min_width: float = 0.3) -> list[WDSRBArch]:
    """Sub-networks of ``parent`` inside ``space``: the first ``d`` blocks (every ``d`` the space
    allows), each block's ``M1`` cut to a value of the space's grid between ``min_width`` of the
    parent's and the parent's (``M2`` cut in proportion), and the trunk ``C`` cut to a width of
    the space between half the parent's and the parent's; sorted by MACs, ascending."""
    low1, _, step1 = space.m1
    low2 = space.m2[0]
    top1 = max(b.m1 for b in parent.blocks)
    choices = [v for v in range(low1, top1 + 1, step1) if v >= min_width * top1] or [low1]
    widths = [c for c in space.channels if parent.channels / 2 <= c <= parent.channels] or [parent.channels]
    rungs: dict[str, WDSRBArch] = {}
    for depth, m1, c in itertools.product(range(space.min_blocks, parent.depth + 1), choices, widths):
        blocks = tuple(
            WDSRBlock(min(b.m1, m1), min(b.m2, max(low2, round(b.m2 * min(b.m1, m1) / b.m1))))
            for b in parent.blocks[:depth]
        )
        arch = WDSRBArch(parent.scale, c, blocks)
        try:
            space.validate(arch)
        except ArchError:
            continue
        rungs[arch.key] = arch
    return sorted(rungs.values(), key=lambda a: (macs_per_pixel(a), a.depth))


@dataclass(frozen=True)
class PointChoice:
    point: OperatingPoint
    arch: WDSRBArch
    latency_ms: float         # at this point, as found by the search
    meets_target: bool
    evaluated: int            # latency evaluations spent on this point


def largest_under(rungs: list[WDSRBArch], point: OperatingPoint, target_ms: float, latency: LatencyFn,
                  exhaustive: bool, upward: int = 8) -> PointChoice:
    """The rung with the most MACs whose latency at ``point`` is <= ``target_ms``.

    ``exhaustive``: evaluate every rung (cheap, modelled latency). Else (measured latency) bisect,
    then also time ``upward`` rungs spread over those above the bisection's answer: at 2 threads
    latency is not monotone in MACs (measured here: 12 blocks with M1=24 ran 60 ms, 9 blocks with
    M1=16 ran 28 ms), so a bigger rung can fit where bisection stopped. The largest fitting rung
    is confirmed by a second evaluation; one that misses then gives way to the next fitting one.
    """
    seen: dict[int, float] = {}

    def lat(i: int) -> float:
        if i not in seen:
            seen[i] = latency(rungs[i], point)
        return seen[i]

    if exhaustive:
        feasible = [i for i in range(len(rungs)) if lat(i) <= target_ms]
        best = max(feasible) if feasible else 0
    else:
        lo = last_within(len(rungs), lat, target_ms)
        top = len(rungs) - 1
        for k in range(upward):
            i = lo + 1 + round(k * (top - lo - 1) / max(1, upward - 1))
            if lo < i <= top:
                lat(i)
        best = 0
        for i in sorted((i for i, ms in seen.items() if ms <= target_ms), reverse=True):
            if latency(rungs[i], point) <= target_ms:  # re-measure: a lucky run does not decide
                best = i
                break
    ms = lat(best)
    return PointChoice(point, rungs[best], ms, ms <= target_ms, len(seen))


def order_points(points: tuple[OperatingPoint, ...], probe: WDSRBArch, latency: LatencyFn) -> list[tuple[OperatingPoint, float]]:
    """Points sorted fastest first by ``probe``'s latency at each (``(point, ms)`` pairs)."""
    timed = [(p, latency(probe, p)) for p in points]
    return sorted(timed, key=lambda pm: pm[1])


def search_nested(space: SRSpace, root: WDSRBArch, points: tuple[OperatingPoint, ...], target_ms: float,
                  lat: PointLatency, measured_latency: Callable[[WDSRBArch, WDSRBArch, OperatingPoint], float],
                  log: Callable[[str], None] = print, level: float | None = 0.05,
                  ) -> tuple[list[PointChoice], list[tuple[OperatingPoint, float]]]:
    """Nested choices, fastest point first. ``measured_latency(supernet, arch, point)`` times
    ``arch`` as a slice of ``supernet`` (as it will run); modelled points use ``lat.arch_ms``.

    ``level``: every slower point aims at ``min(target_ms, (1 + level) * L0)``, with ``L0`` the
    fastest point's latency as found, so latency stays level across points (All-in-One's aim)
    even where the ladder's step or timing noise leaves the fastest point well under the target.
    ``None`` aims every point at ``target_ms``."""
    if level is not None and not 0 <= level < 1:
        raise UserError(f"strategy.level={level} must be in [0, 1) or null")

    def alone(a: WDSRBArch, p: OperatingPoint) -> float:  # ``a`` as the top of its own network
        return measured_latency(a, a, p) if lat.measured else lat.arch_ms(a, p)

    timed: dict[tuple[str, str], float] = {}

    def template_ms(a: WDSRBArch, p: OperatingPoint) -> float:  # ordering and growing time it once
        if (a.key, p.name) not in timed:
            timed[a.key, p.name] = alone(a, p)
        return timed[a.key, p.name]

    # Ordered by the template first; the networks chosen are a good part of its size, but which
    # point is faster depends on size (on a 2-core host the 16-block template ran slower at 2
    # threads than at 1, the 11-block network chosen out of it 1.6x faster). So the first choice is
    # timed at every point, and where another point runs it faster, the search starts again once
    # with the points ordered by that network (the faster point must hold the larger network).
    order = order_points(points, root, template_ms)
    log(f"operating points, fastest first (template, {root.depth} blocks): "
        + ", ".join(f"{p.name} {ms:.1f} ms" for p, ms in order))
    choices = _nested(space, root, [p for p, _ in order], target_ms, lat, measured_latency, alone,
                      template_ms, level, log)
    if len(points) > 1:
        first = choices[0].arch
        reorder = order_points(points, first, alone)
        was_first_ms = next(ms for p, ms in reorder if p == order[0][0])
        if reorder[0][0] != order[0][0] and reorder[0][1] < 0.98 * was_first_ms:
            order = reorder
            log(f"operating points, fastest first ({first.depth}-block first choice): "
                + ", ".join(f"{p.name} {ms:.1f} ms" for p, ms in order) + "; searching again in this order")
            choices = _nested(space, root, [p for p, _ in order], target_ms, lat, measured_latency, alone,
                              template_ms, level, log)
    return choices, order


def _nested(space: SRSpace, root: WDSRBArch, order: list[OperatingPoint], target_ms: float, lat: PointLatency,
            measured_latency: Callable[[WDSRBArch, WDSRBArch, OperatingPoint], float], alone: LatencyFn,
            template_ms: LatencyFn, level: float | None, log: Callable[[str], None]) -> list[PointChoice]:
    """One pass of :func:`search_nested` with the points in ``order`` (fastest first)."""
    exhaustive = not lat.measured
    choices: list[PointChoice] = []
    parent = grow_to_bind(root, space, order[0], target_ms, template_ms, log)
    for point in order:
        if choices and lat.measured:
            top = choices[0].arch

            def fn(a: WDSRBArch, p: OperatingPoint, top: WDSRBArch = top) -> float:
                return measured_latency(top, a, p)
        else:
            fn = alone
        aim = target_ms if not choices or level is None else min(target_ms, (1 + level) * choices[0].latency_ms)
        choice = largest_under(ladder(parent, space), point, aim, fn, exhaustive)
        log(f"  {point.name}: {choice.arch.depth} blocks, C={choice.arch.channels}, "
            f"[M1, M2]={[choice.arch.blocks[0].m1, choice.arch.blocks[0].m2]}, {choice.latency_ms:.2f} ms "
            f"({'meets' if choice.meets_target else 'MISSES'} aim {aim:.2f} ms; "
            f"{choice.evaluated} evaluations)")
        choices.append(choice)
        parent = choice.arch
    return choices


def describe_arch(arch: WDSRBArch) -> dict[str, Any]:
    return {"arch": arch.to_dict(), "depth": arch.depth, "macs_per_pixel": macs_per_pixel(arch)}
