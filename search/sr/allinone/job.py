"""One ``strategy=allinone`` run's settings and state: :func:`prepare` checks the options and
builds the operating points' latency; each phase of :mod:`search.sr.allinone.run` adds to
:class:`Run`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import tasks.sr as sr
from search.console import say
from search.errors import UserError
from search.settings import RunContext
from search.sr.allinone.chain import PointChoice
from search.sr.allinone.levels import MAX_LEVELS
from search.sr.allinone.points import OperatingPoint, PointLatency, PointSet, point_estimator
from search.sr.task import SRSettings
from spaces import WDSRBArch
from tasks.sr.allinone_governor import LevelGovernor


def options_from(strategy_options: dict[str, Any]) -> dict[str, Any]:
    """The strategy's options (complete: conf/strategy/allinone.yaml holds every default, and
    experiment=smoke's overlay is merged in already), checked."""
    opts = dict(strategy_options)
    if not 0 < float(opts["target"]) <= 1:
        raise UserError(f"strategy.target={opts['target']} must be in (0, 1]: the fraction of the budget aimed at")
    if not 0 < float(opts["band"]) < 1 or float(opts["headroom"]) < 0 or not float(opts["top_weight"]) > 0:
        raise UserError(f"strategy.band={opts['band']} must be in (0, 1), strategy.headroom={opts['headroom']} "
                        f">= 0 and strategy.top_weight={opts['top_weight']} > 0")
    if not 0 <= int(opts["spare_levels"]) <= MAX_SPARE_LEVELS:
        raise UserError(f"strategy.spare_levels={opts['spare_levels']} must be in [0, {MAX_SPARE_LEVELS}]: the levels "
                        "are assigned to the points by trying every combination")
    return opts


MAX_SPARE_LEVELS = MAX_LEVELS - 1  # under the top


@dataclass
class Run:
    """One All-in-One run: its settings, points and latency, and what each phase adds."""

    ctx: RunContext
    opts: dict[str, Any]
    sr: SRSettings
    pointset: PointSet
    lat: PointLatency
    target_ms: float
    spare: int                                      # spare levels trained (measured points only)
    timing_s: dict[str, float] = field(default_factory=dict)
    choices: list[PointChoice] = field(default_factory=list)   # one per point, largest first
    chain: list[WDSRBArch] = field(default_factory=list)       # the levels trained (spare levels)
    govs: dict[str, LevelGovernor] | None = None

    @property
    def points(self) -> dict[str, WDSRBArch]:
        return {c.point.name: c.arch for c in self.choices}

    @property
    def fixed_point(self) -> str:
        """The point whose sub-network is the *fixed* network: the slowest point's, the one network
        a user without switching would ship, since it must meet the budget there too."""
        return self.choices[-1].point.name

    @property
    def by_name(self) -> dict[str, OperatingPoint]:
        return {c.point.name: c.point for c in self.choices}

    def timed(self, phase: str, started: float) -> None:
        self.timing_s[phase] = round(time.monotonic() - started, 1)


def prepare(ctx: RunContext) -> Run:
    """The run's options, task settings, operating points and their latency, checked."""
    opts = options_from(ctx.settings.strategy_options)
    sr_settings = SRSettings.from_task(ctx.task, ctx.settings.seed, ctx.train)
    scale = sr_settings.space.scale
    pointset = PointSet.from_config(ctx.operating_points, ctx.device, opts["points"])
    estimator = point_estimator(pointset, ctx.device, ctx.latency, scale, sr.build_model)
    lat = PointLatency(pointset, estimator, sr.build_model, protocol=opts["measure"])
    budget_ms = ctx.settings.budget_ms
    target_ms = budget_ms * float(opts["target"])
    say(f"task=sr x{scale} device={ctx.device.name} strategy=allinone: {len(pointset.points)} operating points "
        f"({pointset.kind}), budget {budget_ms:g} ms, target {target_ms:.2f} ms per point; "
        f"latency {'measured on this host' if lat.measured else 'MODELLED: ' + pointset.latency_model}")
    spare = int(opts["spare_levels"]) if lat.measured else 0
    return Run(ctx, opts, sr_settings, pointset, lat, target_ms, spare)
