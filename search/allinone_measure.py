"""The final latency measurement of ``strategy=allinone`` and the timing of the switch.

:func:`final_latency` times the switched and the fixed network at every operating point in
interleaved rounds (governed, where the points have governors); :func:`time_switch` times
``set_operating_point``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from search.allinone_governed import governed_latency
from search.allinone_points import OperatingPoint, PointLatency
from spaces import WDSRBArch
from tasks.sr.allinone import AllInOneWDSRB


def final_latency(model: AllInOneWDSRB, fixed: torch.nn.Module, points: dict[str, WDSRBArch],
                  by_name: dict[str, OperatingPoint], lat: PointLatency, rounds: int,
                  govs: dict[str, Any] | None = None, observations: int = 4,
                  ) -> tuple[dict[str, float], dict[str, float], dict[str, dict[str, list[float]]]]:
    """Per point: the switched network's and the fixed network's latency (ms).

    Measured: ``rounds`` interleaved rounds (switched and fixed alternate at every point, the
    point order reverses every round, so load drift hits both alike); the median of the round
    medians. With ``govs`` (run-time level switching) the switched network runs ``observations``
    short timings per round under each point's governor, and its latency is the median of all of
    them. Modelled: the published model at f_max scaled to each level.
    """
    if not lat.measured:
        top = points[next(iter(points))]
        return ({n: lat.arch_ms(a, by_name[n]) for n, a in points.items()},
                {n: lat.arch_ms(top, by_name[n]) for n in points}, {})
    log: dict[str, dict[str, list[float]]] = {k: {n: [] for n in points} for k in ("switched", "fixed", "observations")}
    names = list(points)
    for r in range(max(1, rounds)):
        for name in names if r % 2 == 0 else names[::-1]:
            pair = [("switched", model), ("fixed", fixed)]
            for which, module in pair if r % 2 == 0 else pair[::-1]:
                if which == "switched" and govs:
                    obs = governed_latency(govs, by_name[name], lat, observations)
                    log["observations"][name].extend(obs)
                    log["switched"][name].append(round(statistics.median(obs), 3))
                    continue
                if which == "switched":
                    model.set_operating_point(name)
                log[which][name].append(round(lat.module_ms(module, by_name[name]), 3))
    model.set_operating_point(names[0])
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
