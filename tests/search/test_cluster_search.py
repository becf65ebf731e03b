"""The cluster recipe end to end with the real pipeline: three ``python -m search`` workers on one
study in a real PostgreSQL server (search only), then one command that trains the winner."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from search.result import Result

N_TRIALS = 4
WORKERS = 3


@pytest.mark.slow
def test_real_workers_on_postgresql_then_final_command(postgres_url, tmp_path, tiny_sr):
    study_name = f"sr-{tmp_path.name}"
    common = [o for o in tiny_sr if not o.startswith("search.n_trials=")] + [
        f"search.n_trials={N_TRIALS}", "budget_ms=33.3", f"search.storage={postgres_url}",
        f"search.study_name={study_name}"]
    workers = [subprocess.Popen([sys.executable, "-m", "search", *common, "search.run_final=false",
                                 f"search.worker={i}", f"hydra.run.dir={tmp_path / f'w{i}'}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in range(WORKERS)]
    outs = [(w.wait(timeout=600), w.communicate()[0]) for w in workers]
    assert [rc for rc, _ in outs] == [0] * WORKERS, [out[-2000:] for _, out in outs]

    trials = optuna.load_study(study_name=study_name, storage=postgres_url).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    print(f"{len(complete)} complete of {len(trials)}; by worker: "
          f"{sorted(t.user_attrs['worker'] for t in trials)}")
    assert N_TRIALS <= len(complete) <= N_TRIALS + WORKERS - 1
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert [t.number for t in trials] == list(range(len(trials)))
    for i in range(WORKERS):
        result = Result.read(tmp_path / f"w{i}" / "result.json")
        assert not result.final_trained and result.study["storage"] == postgres_url

    final = subprocess.run([sys.executable, "-m", "search", *common, f"hydra.run.dir={tmp_path / 'final'}"],
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "nothing to add" in final.stdout
    result = Result.read(tmp_path / "final" / "result.json")
    assert (tmp_path / "final" / "report.md").exists() and (tmp_path / "final" / "model.onnx").exists()
    assert result.trials["n_total"] == len(trials)
    best = max((t for t in complete if t.user_attrs.get("trained") and t.user_attrs["latency_ms"] <= 33.3),
               key=lambda t: (t.values[0], -t.number))
    assert result.best["trial"] == best.number and result.best["arch"] == best.user_attrs["arch"]
