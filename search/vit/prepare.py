"""What every ViT strategy starts from: the task's settings, data, teacher (trained once and
cached), space, latency estimator and the budget (given, or a fraction of the unpruned model's
latency), and how candidates are timed side by side after the search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from latency_models.interleave import InterleavedTiming, interleaved_in
from search.config.schema import MeasuredLatencyConf
from search.console import say
from search.errors import UserError
from search.latency import LatencyEstimator, make_estimator
from search.settings import RunContext
from search.vit.family_latency import fitted_estimator
from search.vit.latency_check import LatencyCheck
from search.vit.task import (
    RUNTIME_BACKENDS,
    ViTData,
    ViTSettings,
    build_space,
    load_teacher,
    load_vit_data,
    pruned,
)
from spaces.vit import TokenPruneSpace

# Timing side by side after the search (re-timing, the final figures): per round, as many runs
# as latency_models.measure's least (its default protocol), after as many warm-up runs.
TIMED_RUNS = 10
TIMED_WARMUP = 5
# The budget's two references are timed alternately this many times (least of the figures), so
# that a burst of load elsewhere does not decide the budget or refuse a feasible one.
REFERENCE_ROUNDS = 3


@dataclass(frozen=True)
class ViTSetup:
    """What every ViT strategy shares. ``ctx.settings.budget_ms`` is the run's budget (derived
    from the unpruned model's latency unless one was given)."""

    ctx: RunContext
    cfg: ViTSettings
    data: ViTData
    teacher: torch.nn.Module
    teacher_info: dict[str, Any]
    space: TokenPruneSpace
    estimator: LatencyEstimator
    timed_here: bool  # the trials' figures are this host's (timed, or predicted from timings made here)
    check: LatencyCheck | None = None  # the fitted predictor against timings (None: trials timed, or not here)

    @property
    def budget_ms(self) -> float:
        return self.ctx.settings.budget_ms

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return input_shape(self.cfg, self.data)

    @property
    def fraction(self) -> float | None:
        """The budget as a share of the unpruned model's latency; None where budget_ms was given."""
        return None if self.ctx.settings.budget_given else self.cfg.budget_fraction

    @property
    def budget_rule(self) -> str:
        return "given" if self.fraction is None else f"{self.fraction:g} x unpruned latency"

    def meets_budget(self, ms: float, ratio: float | None, margin: float = 0.0) -> bool:
        """Within budget, ``margin`` (a fraction) of it left free: ``ratio`` (the latency over the
        unpruned model's, timed in the same rounds: ``latency_models.interleave.paired_ratio``)
        against the fraction where the budget is one, else ``ms`` against budget_ms."""
        keep = 1.0 - margin
        if self.fraction is not None and ratio is not None:
            return ratio <= self.fraction * keep
        return ms <= self.budget_ms * keep

    @property
    def backend(self) -> str:
        """The latency_models backend of ``task.runtime``: what every figure of the run is timed in."""
        return RUNTIME_BACKENDS[self.cfg.runtime]

    def check_latency(self, kind: str, arch: Any, model: torch.nn.Module, ratio: float) -> None:
        """Record the fitted predictor's point and bound for ``arch`` against ``ratio`` (its latency
        timed beside the unpruned model); nothing where the trials were not predicted."""
        if self.check is not None and self.estimator.predictor is not None:
            self.check.add(kind, arch.keep_rates, ratio, self.estimator.predictor.predict(model, self.shape),
                           self.estimator.latency_ms(arch))

    def runtime_info(self) -> dict[str, Any]:
        """What the run's figures were timed in: ``task.runtime``, its backend, threads, batch."""
        return {"name": self.cfg.runtime, "backend": self.backend, "threads": self.ctx.device.measure_threads,
                "batch": self.cfg.batch, "where": "measured on this host"}

    def timed(self, models: dict[str, torch.nn.Module], rounds: int,
              calls: dict[str, Callable[[], object]] | None = None) -> dict[str, InterleavedTiming]:
        """Each model in the run's runtime and each of ``calls`` (a shipped file's session) timed
        interleaved on this host (``latency_models.interleave``: order reversed every round, the
        least round median), by name."""
        calls = calls or {}
        timings = interleaved_in(self.backend, [(model.eval(), self.shape) for model in models.values()],
                                 self.ctx.device.measure_threads, rounds=rounds, runs=TIMED_RUNS,
                                 warmup=TIMED_WARMUP, calls=list(calls.values()))
        return dict(zip([*models, *calls], timings))


def prepare_vit(ctx: RunContext) -> ViTSetup:
    """Data, teacher, space, latency estimator and the budget; refuses a budget below the most
    pruned member."""
    _refuse_published(ctx)
    seed = ctx.settings.seed
    cfg = ViTSettings.from_task(ctx.task, seed, ctx.train.placement)
    latency = _runtime_latency(ctx, cfg)
    data = load_vit_data(cfg, seed)
    teacher, teacher_info = load_teacher(cfg, data, seed)
    space = build_space(cfg, teacher, data.in_chans)
    estimator = make_estimator(ctx.device, latency, 0, lambda arch: pruned(teacher, arch), input_shape(cfg, data))
    unpruned_ms, floor_ms = reference_ms(estimator, [space.unpruned(), space.most_pruned()])
    settings = ctx.settings
    budget_ms = settings.budget_ms if settings.budget_given else cfg.budget_fraction * unpruned_ms
    if floor_ms > budget_ms:
        raise UserError(f"budget_ms={budget_ms:.2f} is below the most pruned model "
                        f"({floor_ms:.2f} ms at keep rate {space.min_keep}); raise it")
    say(f"task=vit {cfg.model_name} device={ctx.device.name}: unpruned {unpruned_ms:.2f} ms, budget "
        f"{budget_ms:.2f} ms; latency: {estimator.source}")
    timed_here, check = estimator.measured, None
    if timed_here and cfg.predictor.samples:
        estimator, check = fitted_estimator(ctx.device, space, lambda arch: pruned(teacher, arch), input_shape(cfg, data),
                                     RUNTIME_BACKENDS[cfg.runtime], unpruned_ms, cfg.predictor, seed)
    ctx = replace(ctx, settings=replace(settings, budget_ms=budget_ms))
    return ViTSetup(ctx, cfg, data, teacher, teacher_info, space, estimator, timed_here, check)


def input_shape(cfg: ViTSettings, data: ViTData) -> tuple[int, int, int, int]:
    """One timed inference's input (B, C, H, W): ``task.batch`` images."""
    return (cfg.batch, data.in_chans, cfg.img_size, cfg.img_size)


def reference_ms(estimator: LatencyEstimator, archs: Sequence[Any]) -> list[float]:
    """Each arch's least figure over :data:`REFERENCE_ROUNDS` alternating rounds of the run's own
    estimator (the statistic the trials are timed with; a predictor gives the same every round)."""
    rounds = []
    for _ in range(REFERENCE_ROUNDS):
        estimator.forget()
        rounds.append(estimator.latencies_ms(list(archs)))
    return [min(values) for values in zip(*rounds)]


def _runtime_latency(ctx: RunContext, cfg: ViTSettings) -> dict[str, Any]:
    """``latency=`` with the backend of ``task.runtime``: for ViTs the runtime decides what is timed."""
    backend = RUNTIME_BACKENDS[cfg.runtime]
    given = ctx.latency.get("backend")
    if given not in (None, MeasuredLatencyConf.backend, backend):
        raise UserError(f"latency.backend={given} with task=vit: ViT candidates are timed in task.runtime "
                        f"({cfg.runtime}); choose task.runtime={'|'.join(RUNTIME_BACKENDS)} instead")
    return {**ctx.latency, "backend": backend}


def _refuse_published(ctx: RunContext) -> None:
    kind = ctx.latency["kind"]
    if (ctx.device.latency if kind == "auto" else kind) == "published":
        raise UserError(f"device={ctx.device.name} has published latency data for SR blocks only; for ViTs use "
                        "device=cpu, or collect timings on the device (python -m latency_models collect) "
                        "and pass latency=predictor latency.path=FILE")
