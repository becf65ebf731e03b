"""Terminal progress for long work: trials done, best so far, elapsed and time left."""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.console import say
from search.tracking import scalar


def fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressPrinter:
    """An Optuna callback printing one line per finished trial."""

    def __init__(
        self, n_trials: int, timeout_s: float, describe: Callable[[FrozenTrial], str], start_done: int = 0
    ) -> None:
        self.n_trials = n_trials
        self.timeout_s = timeout_s
        self.describe = describe
        self.start_done = start_done
        self.started = time.monotonic()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        elapsed = time.monotonic() - self.started
        new = max(1, done - self.start_done)
        left = min(self.timeout_s - elapsed, elapsed / new * (self.n_trials - done))
        best = best_feasible(study)
        _track(trial, best)
        best_txt = self.describe(best) if best else "none feasible yet"
        say(
            f"[trial {done}/{self.n_trials}] {self.describe(trial)} | best: {best_txt} | "
            f"elapsed {fmt_s(elapsed)}, left ~{fmt_s(left)}")

    def finish(self, elapsed_s: float) -> None:
        say(f"search finished in {fmt_s(elapsed_s)}")


def _track(trial: FrozenTrial, best: FrozenTrial | None) -> None:
    """The trial's quality (trained trials only: none is invented), its constraints, the best so far."""
    if trial.state == TrialState.COMPLETE and trial.user_attrs.get("trained", False):
        scalar("trial/quality", trial.values[0], trial.number)
    for name, value in trial.constraints.items():
        scalar(f"trial/constraint_{name}", value, trial.number)
    if best is not None:
        scalar("trial/best_quality", best.values[0], trial.number)


def is_feasible(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values()) \
        and bool(trial.user_attrs.get("trained", False))


def best_feasible(study: optuna.Study) -> FrozenTrial | None:
    """The trained, within-budget trial with the highest quality (first objective)."""
    trials = [t for t in study.get_trials(deepcopy=False) if is_feasible(t)]
    return max(trials, key=lambda t: (t.values[0], -t.number)) if trials else None
