"""Seeded samplers: one per strategy, reseeded per trial from ``(seed, trial number)``."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.trial import FrozenTrial

from search.settings import SearchSettings


def trial_seed(seed: int, number: int) -> int:
    """A 32-bit seed that depends only on the run's seed and the trial number."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class _PerTrialSeed:
    """Sampler mixin: before each trial, reseed every random state of the sampler from
    ``(seed, trial.number)``. A sequential run is reproducible, and concurrent workers sharing
    one seed still draw different candidates (each trial number is taken once)."""

    base_seed: int = 0

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        _reseed(self, trial_seed(self.base_seed, trial.number))
        super().before_trial(study, trial)  # type: ignore[misc]


def _reseed(sampler: object, seed: int, depth: int = 0) -> None:
    for value in vars(sampler).values():
        if isinstance(value, LazyRandomState):
            value.rng.seed(seed)
        elif isinstance(value, optuna.samplers.BaseSampler) and depth < 2:
            _reseed(value, seed, depth + 1)  # e.g. TPE's random sampler for its startup trials


class SeededTPESampler(_PerTrialSeed, optuna.samplers.TPESampler):
    pass


class SeededNSGAIISampler(_PerTrialSeed, optuna.samplers.NSGAIISampler):
    pass


class SeededRandomSampler(_PerTrialSeed, optuna.samplers.RandomSampler):
    pass


def make_sampler(settings: SearchSettings) -> optuna.samplers.BaseSampler:
    opts = settings.strategy_options
    sampler: _PerTrialSeed
    if settings.strategy == "tpe":
        sampler = SeededTPESampler(
            seed=settings.seed,
            n_startup_trials=int(opts["n_startup_trials"]),
            multivariate=bool(opts["multivariate"]),
            constant_liar=True,  # concurrent workers see running trials as bad: no duplicates
        )
    elif settings.strategy == "nsga2":
        sampler = SeededNSGAIISampler(seed=settings.seed,
                                      population_size=int(opts["population_size"]))
    else:
        sampler = SeededRandomSampler(seed=settings.seed)
    sampler.base_seed = settings.seed
    return sampler  # type: ignore[return-value]


def directions(settings: SearchSettings) -> list[str]:
    """TPE and random maximise quality; NSGA-II also minimises latency (a Pareto front)."""
    return ["maximize", "minimize"] if settings.strategy == "nsga2" else ["maximize"]
