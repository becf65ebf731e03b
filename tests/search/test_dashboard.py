"""optuna-dashboard shows the study truthfully (every trial carries its latency constraint where
the dashboard reads it; a candidate never trained carries no quality: it is PRUNED), and the job log
holds what the console showed."""

import io
import json
import subprocess
import sys
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

optuna_dashboard = pytest.importorskip("optuna_dashboard")  # a dev extra


def get(app, path: str):
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, REQUEST_METHOD="GET", **{"wsgi.input": io.BytesIO()})
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (path, status, body[:300])
    return json.loads(body)


@pytest.mark.slow
def test_the_dashboard_lists_constraints_and_no_invented_quality(tmp_path):
    run_dir = tmp_path / "run"
    # The smoke profile as it is: the space is cut to what can fit the budget, so only a few of
    # its candidates (2 of 14 at this seed) are too slow to be worth training.
    done = subprocess.run([sys.executable, "-m", "search", "task=sr", "device=s21", "experiment=smoke", "seed=3",
                           "budget_ms=12", "search.n_trials=14", "search.run_final=false",
                           f"hydra.run.dir={run_dir}"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}")
    app = optuna_dashboard.wsgi(storage)
    (study,) = [s for s in get(app, "/api/studies")["study_summaries"] if not s["study_name"].endswith(".final")]
    trials = get(app, f"/api/studies/{study['study_id']}")["trials"]
    assert len(trials) == 14
    states = {t["state"] for t in trials}
    assert "Pruned" in states and "Complete" in states, states
    for t in trials:
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        assert len(t["constraints"]) == 1, t
        assert float(attrs["latency_over_budget_ms"]) == pytest.approx(t["constraints"][0])
        if t["state"] == "Pruned":
            assert "val_psnr" not in attrs and not t.get("values"), t
            assert t["constraints"][0] > 0 and "not worth training" in attrs["untrained"]
        else:
            assert float(attrs["val_psnr"]) > 0 and t["values"]
    # The same run: Hydra's job log holds every line the console showed, time-stamped.
    logged = (run_dir / "__main__.log").read_text()
    shown = [line for line in done.stdout.splitlines() if line.strip()]
    assert shown and all(line in logged for line in shown), [line for line in shown if line not in logged][:3]
