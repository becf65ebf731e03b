"""Multi-fidelity search: a candidate's proxy training reports its validation score at rungs of
steps (``min_steps x reduction_factor^k``, then the proxy's full steps), and Optuna's pruner stops
the ones that trail the others at the same rung. More candidates are screened for the same time,
and those that keep up are trained to the full proxy.

``pruner: none`` (reports nothing, trains every candidate to the end), ``halving`` (asynchronous
successive halving) or ``hyperband`` (brackets of successive halving with different first rungs, so
a slow starter is not always judged at the first rung). A candidate over the latency budget is never
trained (see :mod:`search.study.objective`), so it never reaches a rung.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import optuna

from search.errors import UserError

PRUNERS = ("none", "halving", "hyperband")  # and "auto" in the config: halving where it can prune (settings)


@dataclass(frozen=True)
class Fidelity:
    pruner: str = "none"
    min_steps: int = 250          # the first rung
    reduction_factor: int = 3     # rung k is min_steps x reduction_factor^k; about 1 in this many go on

    def __post_init__(self) -> None:
        if self.pruner not in PRUNERS:
            raise UserError(f"search.fidelity.pruner={self.pruner!r}: choose auto | {' | '.join(PRUNERS)}")
        if self.min_steps < 1 or self.reduction_factor < 2:
            raise UserError(f"search.fidelity: min_steps={self.min_steps} must be >= 1 and "
                            f"reduction_factor={self.reduction_factor} >= 2")

    @property
    def staged(self) -> bool:
        return self.pruner != "none"

    def rungs(self, max_steps: int) -> list[int]:
        """The steps at which a candidate of a ``max_steps`` proxy is scored, the last being ``max_steps``."""
        if not self.staged:
            return [max_steps]
        steps, rung = [], self.min_steps
        while rung < max_steps:
            steps.append(rung)
            rung *= self.reduction_factor
        return [*steps, max_steps]

    def make_pruner(self, max_steps: int) -> optuna.pruners.BasePruner:
        if self.pruner == "halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=self.min_steps,
                                                          reduction_factor=self.reduction_factor)
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=self.min_steps, max_resource=max_steps,
                                                  reduction_factor=self.reduction_factor)
        return optuna.pruners.NopPruner()


NO_RUNGS = Fidelity()  # every candidate trained to the proxy's end, scored once


class Reporter:
    """``report(step, score) -> stop``: records the score as the trial's intermediate value and asks
    the pruner; remembers where it stopped. ``report.final(step, score)`` records the full proxy's
    score (never pruned). A two-objective study (NSGA-II) cannot prune: it only counts."""

    def __init__(self, trial: optuna.Trial, can_prune: bool, deadline: float | None = None) -> None:
        self.trial = trial
        self.can_prune = can_prune
        self.deadline = deadline  # time.monotonic(): a rung reached after it stops the training there
        self.stopped_at: int | None = None
        self.why = ""
        self.last_step = 0

    def __call__(self, step: int, score: float) -> bool:
        self.last_step = step
        if not self.can_prune:
            return False
        self.trial.report(score, step)
        if self.trial.should_prune():
            self.stopped_at, self.why = step, "trails the trials at that rung"
        elif self.deadline is not None and time.monotonic() > self.deadline:
            self.stopped_at, self.why = step, "the search time (search.timeout_s) is over"
        return self.stopped_at is not None

    def final(self, step: int, score: float) -> None:
        self.last_step = step
        if self.can_prune:
            self.trial.report(score, step)
