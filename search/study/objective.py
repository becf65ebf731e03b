"""The one constrained objective every Optuna strategy runs: sample, estimate latency, record
the constraint, train and score only candidates near the budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

LATENCY_CONSTRAINT = "latency_over_budget_ms"
UNTRAINED_SCORE = 0.0  # never trained: constraint-aware samplers rank it by its violation alone


@dataclass
class ConstrainedObjective:
    """``sample(trial) -> arch``; ``latency_ms(arch)``; ``score(arch) -> quality`` (higher is
    better), run only when the latency is within ``near_budget`` x the budget. ``attrs(arch)``:
    further user attributes recorded before training. With ``two_objectives`` (NSGA-II) the trial
    returns ``(quality, latency)``."""

    sample: Callable[[optuna.Trial], Any]
    latency_ms: Callable[[Any], float]
    score: Callable[[Any], float]
    budget_ms: float
    near_budget: float
    quality_key: str
    two_objectives: bool = False
    attrs: Callable[[Any], dict[str, Any]] = field(default=lambda arch: {})

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        arch = self.sample(trial)
        latency_ms = float(self.latency_ms(arch))
        trial.set_constraint(LATENCY_CONSTRAINT, latency_ms - self.budget_ms)
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("latency_ms", latency_ms)
        for key, value in self.attrs(arch).items():
            trial.set_user_attr(key, value)
        quality = UNTRAINED_SCORE
        trained = latency_ms <= self.budget_ms * self.near_budget
        trial.set_user_attr("trained", trained)
        if trained:
            started = time.monotonic()
            quality = float(self.score(arch))
            trial.set_user_attr("proxy_s", time.monotonic() - started)
        trial.set_user_attr(self.quality_key, quality)
        return (quality, latency_ms) if self.two_objectives else quality

