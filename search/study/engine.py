"""The Optuna study: sampler per strategy, storage with heartbeats, resume, and ``n_trials`` as
the study's total across every worker that joins it.

Several processes (on one machine or many) may run :func:`run_study` on the same study. Each
starts a trial only while the finished trials plus the trials running elsewhere fall short of
``n_trials``; otherwise it waits for those to finish. A worker that dies stops sending heartbeats:
the next worker that looks marks its trial FAIL and runs a WAITING copy with the same parameters
(``search.max_retry`` times at most). Ctrl-C or SIGTERM fails the running trial, re-queues its
parameters and exits; the same command resumes.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from search.console import say
from search.errors import UserError
from search.settings import SearchSettings
from search.study.meaning import check_meaning
from search.study.objective import ConstrainedObjective
from search.study.progress import ProgressPrinter
from search.study.samplers import directions, make_sampler, trial_seed
from search.study.storage import HeartbeatPolicy, open_storage, redact, retry_callback

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
STALE_REASON = "its worker stopped sending heartbeats (killed, preempted or hung); parameters re-queued"
INTERRUPTED_REASON = "interrupted (Ctrl-C or SIGTERM); parameters re-queued"


def heartbeat_policy(settings: SearchSettings) -> HeartbeatPolicy:
    return HeartbeatPolicy(settings.heartbeat_s, settings.grace_s, settings.max_retry)


def open_study(settings: SearchSettings, meaning: dict[str, Any] | None = None,
               max_steps: int | None = None) -> optuna.Study:
    """Create the study, or load it when the same command runs again (resume) or another worker
    created it first. ``meaning``: see :func:`check_meaning`. ``max_steps``: the proxy's steps, the
    last rung of ``settings.fidelity``'s pruner (none without it)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(settings.storage, heartbeat_policy(settings))
    try:
        study = optuna.create_study(
            study_name=settings.study_name,
            storage=storage,
            sampler=make_sampler(settings),
            directions=directions(settings),
            pruner=settings.fidelity.make_pruner(max_steps) if max_steps else None,
            load_if_exists=True,
        )
    except ValueError as err:
        raise UserError(
            f"study {settings.study_name!r} in {redact(settings.storage)} cannot be resumed: {err}. "
            "Pick another search.study_name or another run directory."
        ) from None
    if [d.name.lower() for d in study.directions] != directions(settings):
        raise UserError(
            f"study {settings.study_name!r} exists with other objectives; use a new search.study_name"
        )
    if meaning is not None:
        check_meaning(study, meaning)
    return study


def done_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=DONE_STATES)


def reap_stale(study: optuna.Study) -> int:
    """Fail RUNNING trials whose worker went silent (reason in their ``failure`` user attr) and
    re-queue their parameters; returns how many were failed."""
    storage = study._storage  # no public accessor (see search/study/__init__.py)
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is None:
        return 0  # a storage without heartbeats: nothing can go stale
    study_id = storage.get_study_id_from_name(study.study_name)
    stale = storage._get_stale_trial_ids(study_id)  # type: ignore[attr-defined]
    for trial_id in stale:
        try:
            storage.set_trial_user_attr(trial_id, "failure", STALE_REASON)
        except UpdateFinishedTrialError:
            pass  # finished meanwhile
    if stale:
        optuna.storages.fail_stale_trials(study)
    return len(stale)


class _Guarded:
    """The objective, plus: who runs the trial, a per-trial torch seed, and the reason a trial
    failed (``failure`` user attr)."""

    def __init__(self, objective: Callable[[optuna.Trial], Any], seed: int) -> None:
        self.objective = objective
        self.seed = seed
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.current: int | None = None  # the trial running now, if any
        self.last: int | None = None  # the last trial this worker started

    def __call__(self, trial: optuna.Trial) -> Any:
        self.current = self.last = trial.number
        trial.set_user_attr("worker", self.worker)
        frozen = trial.study.get_trials(deepcopy=False)[trial.number]
        retried = frozen.system_attrs.get("failed_trial")
        if retried is not None:
            trial.set_user_attr("retry_of", retried)
            trial.set_user_attr("failure", None)  # the failed original's reason is not this one's
        torch = sys.modules.get("torch")  # the task's objective imported it (weights init etc.)
        if torch is not None:
            torch.manual_seed(trial_seed(self.seed, trial.number))
        try:
            value = self.objective(trial)
        except (KeyboardInterrupt, SystemExit):
            trial.set_user_attr("failure", INTERRUPTED_REASON)
            raise
        except optuna.TrialPruned:
            self.current = None  # not trained (its reason is in its user attrs): no failure
            raise
        except Exception as err:
            if not trial.user_attrs.get("failure"):
                trial.set_user_attr("failure", f"{type(err).__name__}: {err}")
            raise
        values = value if isinstance(value, tuple | list) else (value,)
        if any(not math.isfinite(float(v)) for v in values):
            trial.set_user_attr("failure", f"objective returned {value} (NaN or inf)")
        self.current = None
        return value


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """``kill`` and schedulers send SIGTERM: treat it as Ctrl-C (save, re-queue, exit). A handler
    someone else installed (submitit's, which requeues the SLURM job) is left alone."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _requeue(study: optuna.Study, number: int | None, settings: SearchSettings) -> None:
    """After Ctrl-C/SIGTERM: fail the interrupted trial (if Optuna has not) and queue its
    parameters again so the next run (this command again, or another worker) runs them."""
    if number is None:
        return
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.RUNNING:
        try:
            study.tell(number, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError, RuntimeError):
            return
        trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.FAIL:
        retry_callback(heartbeat_policy(settings))(study, trial)
        say(f"trial #{number} interrupted: marked failed, its parameters queued to run again")


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
    reap_stale(study)
    already = len(done_trials(study))
    name = settings.study_name
    if already >= settings.n_trials:
        say(f"study {name}: {already} trials already done (n_trials={settings.n_trials}); nothing to add")
        return
    if already:
        say(f"resuming study {name}: {already}/{settings.n_trials} trials done")
    progress = ProgressPrinter(settings.n_trials, settings.timeout_s, describe, start_done=already)
    guarded = _Guarded(objective, settings.seed)
    started = time.monotonic()
    if isinstance(objective, ConstrainedObjective):  # a staged proxy stops at its next rung after this
        objective.deadline = started + settings.timeout_s
    with _sigterm_as_interrupt():
        try:
            _loop(study, guarded, settings, progress, catch, started)
        except KeyboardInterrupt:
            _requeue(study, guarded.current, settings)
            raise
        except SystemExit:  # e.g. submitit requeueing the job on a timeout signal
            _requeue(study, guarded.current, settings)
            raise
    progress.finish(time.monotonic() - started)
    if not done_trials(study):
        raise UserError("no trial finished: raise search.timeout_s or lower the proxy training steps")


def _loop(study: optuna.Study, guarded: _Guarded, settings: SearchSettings, progress: ProgressPrinter,
          catch: tuple[type[Exception], ...], started: float) -> None:
    n_trials = settings.n_trials
    poll_s = min(float(settings.heartbeat_s), 5.0)
    failures_in_a_row = 0
    waiting_said = False
    while True:
        reap_stale(study)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        done = sum(s in DONE_STATES for s in states)
        running = states.count(TrialState.RUNNING)
        queued = states.count(TrialState.WAITING)
        if done >= n_trials:
            return
        if time.monotonic() - started >= settings.timeout_s:
            say(f"search.timeout_s={settings.timeout_s:g} reached with {done}/{n_trials} trials done; "
                "run the same command again to continue")
            return
        if failures_in_a_row >= max(3, n_trials):
            raise UserError(f"{failures_in_a_row} trials in a row failed on this worker; see their "
                            "'failure' attribute in result.json")
        if queued == 0 and done + running >= n_trials:
            if not waiting_said:
                say(f"waiting for {running} trial(s) running on other workers to finish "
                    f"({done}/{n_trials} done)")
                waiting_said = True
            time.sleep(poll_s)
            continue
        waiting_said = False
        try:
            study.optimize(guarded, n_trials=1, callbacks=[progress], catch=catch, gc_after_trial=True)
        except UpdateFinishedTrialError:
            # this worker was silent too long and another worker failed its trial and re-queued it
            say(f"trial #{guarded.current} was declared dead by another worker (no heartbeat "
                f"within search.grace_s={settings.grace_s}); its retry runs elsewhere")
        guarded.current = None
        last = study.get_trials(deepcopy=False)[guarded.last] if guarded.last is not None else None
        failures_in_a_row = failures_in_a_row + 1 if last and last.state == TrialState.FAIL else 0


FINAL_CLAIM_SUFFIX = ".final"


def claim_final(study: optuna.Study, settings: SearchSettings) -> None:
    """Claim the final training of ``study`` for this run directory, once per study: the claim
    is a companion study whose creation the database makes atomic (a unique name), so of two
    final commands on one shared study exactly one trains the winner. The same run directory
    may claim again (a re-run resumes its own final training)."""
    storage = study._storage  # no public accessor (see search/study/__init__.py)
    name = study.study_name + FINAL_CLAIM_SUFFIX
    mine = {"run_dir": str(settings.run_dir.resolve()), "by": f"{socket.gethostname()}:{os.getpid()}",
            "at_unix_s": round(time.time())}
    try:
        claim = optuna.create_study(study_name=name, storage=storage)
        claim.set_user_attr("claim", mine)
        return
    except optuna.exceptions.DuplicatedStudyError:
        held = optuna.load_study(study_name=name, storage=storage).user_attrs.get("claim") or {}
    if held.get("run_dir") == mine["run_dir"]:
        return
    raise UserError(f"the final training of study {study.study_name!r} was claimed by {held.get('by', '?')} for "
                    f"{held.get('run_dir', '?')}; its result is written there. Run this command with "
                    f"hydra.run.dir={held.get('run_dir', 'DIR')} to resume it, search.run_final=false to add trials "
                    "only, or another search.study_name")
