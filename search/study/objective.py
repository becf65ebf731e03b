"""The one constrained objective every Optuna strategy runs: sample, estimate latency, record
the constraint, train and score only candidates near the budget.

A candidate too slow to be worth training ends PRUNED, with its latency and constraint but no
quality: nothing in the study (or in optuna-dashboard's plots) shows a score it never earned.
Constraint-aware samplers read a pruned trial's constraint as they read a complete one's (TPE
ranks infeasible trials by their violation alone, whatever their state).

With a multi-fidelity pruner (:mod:`search.fidelity`) a trained candidate that trails the
others at a rung also ends PRUNED, with ``trained`` true, its score at that rung and ``proxy_steps``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from search.fidelity import Reporter

LATENCY_CONSTRAINT = "latency_over_budget_ms"  # also a user attr, for people reading the study
# The list-valued system attr that Optuna's ``constraints_func`` writes. Optuna 5's samplers read
# it as they read ``trial.set_constraint``'s keys, and optuna-dashboard (0.21) reads only it: one
# constraint, stored once, where both look. Storage.set_trial_system_attr is public; the trial's
# id it takes is Trial._trial_id, for which Optuna has no public accessor.
CONSTRAINTS_SYSTEM_ATTR = "constraints"
UNTRAINED_ATTR = "untrained"  # why a PRUNED trial was never trained


@dataclass
class ConstrainedObjective:
    """``sample(trial) -> arch``; ``latency_ms(arch)``; ``score(arch, report) -> quality`` (higher is
    better), run only when the latency is within ``near_budget`` x the budget; ``report(step, score)``
    returns whether to stop at that rung (see :class:`~search.fidelity.Reporter`). ``attrs(arch)``:
    further user attributes recorded before training. With ``two_objectives`` (NSGA-II) the trial
    returns ``(quality, latency)``."""

    sample: Callable[[optuna.Trial], Any]
    latency_ms: Callable[[Any], float]
    score: Callable[[Any, Reporter], float]
    budget_ms: float
    near_budget: float
    quality_key: str
    two_objectives: bool = False
    attrs: Callable[[Any], dict[str, Any]] = field(default=lambda arch: {})
    deadline: float | None = None  # time.monotonic() when the search ends (set by run_study)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        arch = self.sample(trial)
        latency_ms = float(self.latency_ms(arch))
        over_ms = latency_ms - self.budget_ms
        trial.storage.set_trial_system_attr(trial._trial_id, CONSTRAINTS_SYSTEM_ATTR, [over_ms])
        trial.set_user_attr(LATENCY_CONSTRAINT, over_ms)
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("latency_ms", latency_ms)
        for key, value in self.attrs(arch).items():
            trial.set_user_attr(key, value)
        trained = latency_ms <= self.budget_ms * self.near_budget
        trial.set_user_attr("trained", trained)
        if not trained:
            why = (f"{latency_ms:.2f} ms is over {self.near_budget:g} x the {self.budget_ms:g} ms budget: "
                   "not worth training")
            trial.set_user_attr(UNTRAINED_ATTR, why)
            raise optuna.TrialPruned(why)
        started = time.monotonic()
        report = Reporter(trial, can_prune=not self.two_objectives, deadline=self.deadline)
        quality = float(self.score(arch, report))
        trial.set_user_attr("proxy_s", time.monotonic() - started)
        trial.set_user_attr(self.quality_key, quality)
        trial.set_user_attr("proxy_steps", report.stopped_at or report.last_step or None)
        if report.stopped_at is not None:
            raise optuna.TrialPruned(f"stopped after {report.stopped_at} proxy steps ({quality:.3f}): {report.why}")
        return (quality, latency_ms) if self.two_objectives else quality

