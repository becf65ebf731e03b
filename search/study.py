"""The Optuna study: sampler per strategy, persistent storage, resume, total-trial accounting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.errors import UserError
from search.progress import ProgressPrinter
from search.settings import SearchSettings

LATENCY_CONSTRAINT = "latency_over_budget_ms"
DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def make_sampler(settings: SearchSettings) -> optuna.samplers.BaseSampler:
    opts = settings.strategy_options
    if settings.strategy == "tpe":
        return optuna.samplers.TPESampler(
            seed=settings.seed,
            n_startup_trials=int(opts.get("n_startup_trials", 10)),
            multivariate=bool(opts.get("multivariate", True)),
            constant_liar=True,
        )
    if settings.strategy == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=settings.seed, population_size=int(opts.get("population_size", 12))
        )
    return optuna.samplers.RandomSampler(seed=settings.seed)


def directions(settings: SearchSettings) -> list[str]:
    """TPE and random maximise quality; NSGA-II also minimises latency (a Pareto front)."""
    return ["maximize", "minimize"] if settings.strategy == "nsga2" else ["maximize"]


def open_study(settings: SearchSettings) -> optuna.Study:
    """Create the study, or load it when the same command runs again (resume)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=settings.study_name,
            storage=settings.storage,
            sampler=make_sampler(settings),
            directions=directions(settings),
            load_if_exists=True,
        )
    except ValueError as err:
        raise UserError(
            f"study {settings.study_name!r} in {settings.storage} cannot be resumed: {err}. "
            "Pick another search.study_name or another run directory."
        ) from None
    if [d.name.lower() for d in study.directions] != directions(settings):
        raise UserError(
            f"study {settings.study_name!r} exists with other objectives; use a new search.study_name"
        )
    return study


def done_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=DONE_STATES)


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    settings: SearchSettings,
    describe: Callable[[FrozenTrial], str],
    catch: tuple[type[Exception], ...] = (),
) -> None:
    """Run until the study holds ``n_trials`` finished trials in total (across resumes and
    workers) or ``timeout_s`` passes; print progress after each trial. Exceptions in ``catch``
    fail that trial (reason kept in its ``failure`` user attr) while the study goes on."""
    already = len(done_trials(study))
    if already >= settings.n_trials:
        print(f"study {settings.study_name}: {already} trials already done (n_trials={settings.n_trials}); "
              "nothing to add")
        return
    if already:
        print(f"resuming study {settings.study_name}: {already}/{settings.n_trials} trials done")
    progress = ProgressPrinter(settings.n_trials, settings.timeout_s, describe, start_done=already)
    stop = optuna.study.MaxTrialsCallback(settings.n_trials, states=DONE_STATES)
    started = time.monotonic()
    study.optimize(
        objective,
        n_trials=settings.n_trials - already,
        timeout=settings.timeout_s,
        callbacks=[stop, progress],
        catch=catch,
        gc_after_trial=True,
    )
    progress.finish(time.monotonic() - started)
    if not done_trials(study):
        raise UserError("no trial finished: raise search.timeout_s or lower the proxy training steps")
