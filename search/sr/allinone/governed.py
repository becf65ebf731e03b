"""The switched network under run-time level switching, for measured operating points.

After each point has taken its level (:func:`search.sr.allinone.levels.choose_levels`), the exported
network keeps every trained level, so that a point can step down to a smaller level when the host
slows down and up to a larger one when it runs fast
(:class:`tasks.sr.allinone_governor.LevelGovernor`), holding the latency every point was given.
Levels a point chose carry the point's name; the others keep ``level<i>``.

The final measurement then runs each point under its governor
(:func:`search.sr.allinone.measure.final_latency`): per round, ``observations`` timings, each
followed by the governor's decision. A point's latency is the median of all its observations;
which levels served it, and how often, is recorded with it (:func:`governed_summary`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from spaces import WDSRBArch
from tasks.sr.allinone import AllInOneWDSRB
from tasks.sr.allinone_governor import LevelGovernor


def _level_names(chain_len: int, picked: Mapping[str, int]) -> dict[int, list[str]]:
    """Names of each level, largest first: the points that chose it, else ``level<i>``."""
    return {i: [p for p, lv in picked.items() if lv == i] or [f"level{i}"] for i in range(chain_len)}


def governed_points(chain: Sequence[WDSRBArch], picked: Mapping[str, int]) -> dict[str, WDSRBArch]:
    """Operating points of the exported network, largest first: each chosen level under the
    names of the points that chose it, every other level as ``level<i>``."""
    return {n: chain[i] for i, names in _level_names(len(chain), picked).items() for n in names}


def make_governors(model: AllInOneWDSRB, picked: Mapping[str, int], n_levels: int,
                   timed: Mapping[tuple[int, str], float], ceiling_ms: float, band: float,
                   ) -> dict[str, LevelGovernor]:
    """One governor per point: its ladder is every level (named as in :func:`governed_points`,
    its own under its name), with the latencies timed at that point right before; it starts on
    its own level and holds the levelled latency, the geometric mean of the chosen levels'."""
    names = _level_names(n_levels, picked)
    chosen = [timed[k, p] for p, k in picked.items()]
    ref_ms = math.prod(chosen) ** (1 / len(chosen))
    govs = {}
    for point, k in picked.items():
        ladder = [point if i == k else names[i][0] for i in range(n_levels)]
        ms = {n: timed[i, point] for i, n in enumerate(ladder)}
        govs[point] = LevelGovernor(model, ladder, ms, ref_ms, start=point, band=band, ceiling_ms=ceiling_ms)
    return govs


def governed_summary(gov: LevelGovernor, evals_by_level: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Which levels served the point (counts of observations), the switches, and the PSNR of
    each eval set weighted by those counts."""
    used = {n: c for n, c in gov.used.items() if c}
    total = sum(used.values())
    sets = next(iter(evals_by_level.values())).keys() if evals_by_level else []
    weighted = {s: sum(evals_by_level[n][s]["psnr"] * c for n, c in used.items()) / total for s in sets} \
        if total else {}
    return {"levels_used": used, "switches": gov.switches, "psnr_governed": weighted,
            "own_level_share": used.get(gov.own, 0) / total if total else 1.0,
            "band_ms": [round(gov.low_ms, 3), round(gov.high_ms, 3)]}
