"""Many workers, one study: real processes on a real PostgreSQL server and on a journal file,
real SIGKILL and SIGINT. Workers run tests/search/cluster_worker.py, the ``open_study`` /
``run_study`` path of ``python -m search`` with a cheap objective (a sleep)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.study.engine import INTERRUPTED_REASON, STALE_REASON
from search.study.storage import HeartbeatPolicy, open_storage

WORKER = Path(__file__).with_name("cluster_worker.py")
N_TRIALS = 8
WORKERS = 3


@pytest.fixture(params=["postgresql", "journal"])
def storage_url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"journal://{tmp_path / 'study.log'}"


def start(url: str, study: str, n_trials: int, count: int, go: Path, *extra: str) -> list[subprocess.Popen]:
    """``count`` workers on one study; returns once all have opened it, then lets them go at once."""
    procs = [subprocess.Popen([sys.executable, str(WORKER), url, study, str(n_trials), "--go", str(go),
                               *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(count)]
    deadline = time.monotonic() + 120
    while len(list(go.parent.glob(go.name + ".*.ready"))) < count:
        assert time.monotonic() < deadline, [p.poll() for p in procs]
        assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs if p.poll()]
        time.sleep(0.1)
    go.touch()
    return procs


def finish(procs: list[subprocess.Popen], timeout_s: float = 120) -> list[tuple[int, str]]:
    return [(p.wait(timeout=timeout_s), p.communicate()[0]) for p in procs]


def trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(url, HeartbeatPolicy(1, 3, 2))
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def count(ts, state: TrialState) -> int:
    return sum(t.state == state for t in ts)


@pytest.mark.slow  # real worker processes on a shared study
def test_workers_split_n_trials(storage_url, tmp_path):
    """3 workers, n_trials=8 as the study's total; trial #2 hits a NaN loss and fails with its
    reason while the study goes on."""
    study = f"split-{tmp_path.name}"
    started = time.monotonic()
    procs = start(storage_url, study, N_TRIALS, WORKERS, tmp_path / "go", "--trial-s", "0.5", "--nan-at", "2")
    outs = finish(procs)
    assert [rc for rc, _ in outs] == [0] * WORKERS, outs
    ts = trials(storage_url, study)
    complete = count(ts, TrialState.COMPLETE)
    print(f"{storage_url.split(':')[0]}: {complete} complete, {len(ts)} trials, "
          f"{time.monotonic() - started:.1f} s")
    assert N_TRIALS <= complete <= N_TRIALS + WORKERS - 1
    assert count(ts, TrialState.RUNNING) == 0 and count(ts, TrialState.WAITING) == 0
    assert [t.number for t in ts] == list(range(len(ts)))  # none lost
    assert [t.number for t in ts if t.state == TrialState.FAIL] == [2]
    assert ts[2].user_attrs["failure"] == "FloatingPointError: loss is NaN"
    assert len({t.user_attrs["worker"] for t in ts}) == WORKERS  # all three took trials
    xs = [t.params["x"] for t in ts if t.state == TrialState.COMPLETE]
    assert len(set(xs)) == len(xs)  # one seed, yet no two workers drew the same candidate


@pytest.mark.slow
def test_sigkill_mid_trial_is_failed_and_rerun(storage_url, tmp_path):
    study = f"kill-{tmp_path.name}"
    procs = start(storage_url, study, N_TRIALS, WORKERS, tmp_path / "go", "--trial-s", "1.5",
                  "--heartbeat-s", "1", "--grace-s", "3")
    pids = {p.pid: p for p in procs}
    victim = None
    deadline = time.monotonic() + 60
    while victim is None:
        assert time.monotonic() < deadline
        for t in trials(storage_url, study):
            pid = int(t.user_attrs.get("worker", ":0").rsplit(":", 1)[1])
            if t.state == TrialState.RUNNING and pid in pids and t.number >= 1 and len(t.params) == 2:
                victim = t
                os.kill(pid, signal.SIGKILL)  # mid-trial: sampled, sleeping 1.5 s in the objective
                break
        time.sleep(0.2)
    outs = finish(procs)
    rcs = sorted(rc for rc, _ in outs)
    assert rcs == [-signal.SIGKILL, 0, 0], outs
    ts = trials(storage_url, study)
    killed = ts[victim.number]
    assert killed.state == TrialState.FAIL and killed.user_attrs["failure"] == STALE_REASON
    reruns = [t for t in ts if t.system_attrs.get("failed_trial") == victim.number]
    assert len(reruns) == 1 and reruns[0].state == TrialState.COMPLETE
    assert reruns[0].params == killed.params and reruns[0].user_attrs["retry_of"] == victim.number
    complete = count(ts, TrialState.COMPLETE)
    print(f"killed #{victim.number}; re-run as #{reruns[0].number}; {complete} complete")
    assert N_TRIALS <= complete <= N_TRIALS + 1  # two survivors: at most one trial of surplus
    assert count(ts, TrialState.RUNNING) == 0 and count(ts, TrialState.WAITING) == 0


@pytest.mark.slow
def test_ctrl_c_then_same_command_finishes_and_adds_nothing_after(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    cmd = [sys.executable, str(WORKER), url, "resume", "5", "--trial-s", "1.0"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while True:  # interrupt inside the objective of trial #1
        assert time.monotonic() < deadline and first.poll() is None
        if (tmp_path / "study.db").exists():
            try:
                ts = trials(url, "resume")
            except KeyError:  # the study is being created
                ts = []
            if len(ts) >= 2 and ts[1].state == TrialState.RUNNING and len(ts[1].params) == 2:
                break  # sampled: a signal before the suggestions would re-queue an empty trial
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    out = first.communicate(timeout=60)[0]
    assert first.returncode == 130, out
    assert "queued to run again" in out
    ts = trials(url, "resume")
    assert ts[1].state == TrialState.FAIL and ts[1].user_attrs["failure"] == INTERRUPTED_REASON
    assert [t.state for t in ts[2:]] == [TrialState.WAITING]

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming study resume: 1/5" in again.stdout
    ts = trials(url, "resume")
    assert count(ts, TrialState.COMPLETE) == 5 and ts[2].params == ts[1].params
    assert ts[2].state == TrialState.COMPLETE

    third = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and "nothing to add" in third.stdout
    assert len(trials(url, "resume")) == len(ts)
