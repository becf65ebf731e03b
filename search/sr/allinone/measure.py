"""The final latency measurement of ``strategy=allinone`` and the timing of the switch.

:func:`final_latency` times the switched and the fixed network at every operating point in
interleaved rounds (governed, where the points have governors); :func:`time_switch` times
``set_operating_point``.
"""

from __future__ import annotations

import statistics
import time

import torch

from search.sr.allinone.points import AtPoint, OperatingPoint, PointLatency
from spaces import WDSRBArch
from tasks.sr.allinone import AllInOneWDSRB
from tasks.sr.allinone_governor import LevelGovernor

Rounds = dict[str, dict[str, list[float]]]


def final_latency(model: AllInOneWDSRB, fixed: torch.nn.Module, points: dict[str, WDSRBArch],
                  by_name: dict[str, OperatingPoint], lat: PointLatency, rounds: int,
                  govs: dict[str, LevelGovernor] | None = None, observations: int = 4,
                  ) -> tuple[dict[str, float], dict[str, float], Rounds]:
    """Per point: the switched network's and the fixed network's latency (ms), and the timings.

    Measured: ``rounds`` interleaved rounds (:meth:`PointLatency.interleaved`: switched and fixed
    alternate at every point, the order reverses every round, so load drift hits both alike); the
    median of the round medians. With ``govs`` (run-time level switching) the switched network
    runs ``observations`` timings per round under each point's governor, which decides after each,
    and its latency is the median of all of them. Modelled: the model at f_max scaled to each level.
    """
    if not lat.measured:
        top = points[next(iter(points))]
        return ({n: lat.arch_ms(a, by_name[n]) for n, a in points.items()},
                {n: lat.arch_ms(top, by_name[n]) for n in points}, {})
    names = list(points)
    slots: list[tuple[str, str]] = []  # (which, point name) of each timed module, in schedule order
    timed: list[AtPoint] = []
    for name in names:
        point = by_name[name]
        if govs:
            gov = govs[name]
            slots += [("observations", name)] * max(1, observations)
            timed += [AtPoint(gov.model, point, gov.activate)] * max(1, observations)
        else:
            slots.append(("switched", name))
            timed.append(AtPoint(model, point, lambda name=name: model.set_operating_point(name)))
        slots.append(("fixed", name))
        timed.append(AtPoint(fixed, point))
    log: Rounds = {k: {n: [] for n in names} for k in ("switched", "fixed", "observations")}
    per_round: dict[tuple[str, int], list[float]] = {}  # a point's governed observations per round
    seen = [0] * len(slots)

    def record(i: int, ms: float) -> None:
        which, name = slots[i]
        log[which][name].append(round(ms, 3))
        if which == "observations":
            govs[name].observe(ms)  # type: ignore[index]
            per_round.setdefault((name, seen[i]), []).append(round(ms, 3))
        seen[i] += 1

    lat.interleaved(timed, rounds, after=record)
    model.set_operating_point(names[0])
    if govs:  # each round's figure: the median of its observations
        log["switched"] = {n: [round(statistics.median(per_round[n, r]), 3) for r in range(max(1, rounds))]
                           for n in names}
    med = {which: {n: statistics.median(v) for n, v in log[which].items()} for which in ("switched", "fixed")}
    if govs:
        med["switched"] = {n: statistics.median(log["observations"][n]) for n in names}
    return med["switched"], med["fixed"], log


def time_switch(model: AllInOneWDSRB, trials: int = 2000) -> dict[str, float]:
    """Wall time of ``set_operating_point`` cycling through every point (ms: median, p99, max)."""
    names = list(model.point_names)
    times = []
    for i in range(max(trials, len(names))):
        t = time.perf_counter_ns()
        model.set_operating_point(names[i % len(names)])
        times.append((time.perf_counter_ns() - t) / 1e6)
    model.set_operating_point(names[0])
    times.sort()
    return {"median_ms": statistics.median(times), "p99_ms": times[int(0.99 * (len(times) - 1))],
            "max_ms": times[-1], "trials": len(times)}
