"""Hydra multirun: one study per budget in parallel (joblib), one report per budget, one summary
table across them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search.multirun import collect, write_summary
from search.result import Result

BUDGETS = (16.0, 66.0)


@pytest.mark.slow
def test_budget_sweep_with_joblib_writes_reports_and_summary(tmp_path, tiny_sr):
    sweep = tmp_path / "sweep"
    tiny = [o for o in tiny_sr if not o.startswith(("task.space.max_blocks=", "search.n_trials="))]
    cmd = [sys.executable, "-m", "search", "-m", *tiny, "search.n_trials=2", "task.space.max_blocks=1",
           "budget_ms=" + ",".join(f"{b:g}" for b in BUDGETS), "hydra/launcher=joblib",
           "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = {Result.read(p).budget_ms: p.parent for p in sweep.glob("**/result.json")}
    assert sorted(results) == list(BUDGETS)
    studies = set()
    for budget, job in results.items():
        assert job.relative_to(sweep).as_posix().startswith(f"sr-s21/budget_ms={budget:g},")
        assert (job / "report.md").stat().st_size > 0 and (job / "model.onnx").exists()
        result = Result.read(job / "result.json")
        assert result.trials["n_complete"] == 2 and result.best["latency_ms"] <= budget
        studies.add(result.study["name"])
    assert len(studies) == len(BUDGETS)  # one study per budget

    summary = json.loads((sweep / "summary.json").read_text())
    assert [row["budget_ms"] for row in summary["jobs"]] == list(BUDGETS)
    assert all(row["final_trained"] and row["eval_psnr"]["set5"] > 20 for row in summary["jobs"])
    table = (sweep / "summary.md").read_text()
    assert table.count("| `sr-s21/budget_ms=") == len(BUDGETS) and "set5 PSNR (dB)" in table


def test_summary_keeps_only_this_sweeps_jobs(tmp_path):
    def job(name: str, budget: float, mtime: float) -> None:
        (tmp_path / name).mkdir()
        path = tmp_path / name / "result.json"
        path.write_text(Result(
            task="sr", strategy="tpe", device={"name": "s21"}, budget_ms=budget, budget_rule="given",
            study={"name": f"s-{budget}", "strategy": "tpe"}, trials={"n_complete": 4, "n_failed": 1},
            best={"trial": 3, "arch_key": "k", "arch": {"blocks": [{}, {}], "channels": 12},
                  "latency_ms": budget - 1.5, "val_psnr_proxy": 30.25,
                  "eval": {"set5": {"psnr": 35.5, "ssim": 0.95}}},
            wall_s=12.0).to_json())
        import os

        os.utime(path, (mtime, mtime))

    job("old", 10.0, 1_000.0)
    job("b66", 66.0, 3_000.0)
    job("b16", 16.0, 2_000.0)
    rows = collect(tmp_path, since_unix_s=1_500.0)
    assert [r["budget_ms"] for r in rows] == [16.0, 66.0]
    assert rows[0] | {"eval_psnr": None} == rows[0] | {
        "job": "b16", "blocks": 2, "channels": 12, "latency_ms": 14.5, "n_complete": 4, "n_failed": 1,
        "eval_psnr": None, "final_trained": True}
    md, js = write_summary(rows, tmp_path)
    lines = Path(md).read_text().splitlines()
    assert "| `b16` | sr | s21 | 16.0 | tpe | 4 | 1 | 3 | 2 | 12 | 14.50 | 30.25 | 35.50 |" in lines
    assert json.loads(Path(js).read_text())["jobs"][1]["eval_psnr"] == {"set5": 35.5}


def test_slurm_launcher_config_builds_a_submitit_launcher(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.partition=cpu",
                                 f"hydra.sweep.dir={tmp_path}", "search.worker=3"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.max_num_timeout, launcher.cpus_per_task) == ("cpu", 3, 8)
    assert launcher.submitit_folder == f"{tmp_path}/.submitit/%j"
    assert type(instantiate(launcher)).__name__ == "SlurmLauncher"  # builds; submits nothing
    assert [c._target_ for c in cfg.hydra.callbacks.values()] == ["search.multirun.SweepSummary"]


@pytest.mark.slow
def test_a_strategy_sweep_summarises_a_best_architecture_for_every_job(tmp_path, tiny_sr):
    """``-m strategy=tpe,allinone``: every runner writes the same result type, so the summary has a
    best architecture and a latency for each job (All-in-One had neither before)."""
    sweep = tmp_path / "sweep"
    space = ("task.space.max_blocks=", "task.space.channels=")  # All-in-One's template needs C=16
    tiny = [o for o in tiny_sr if not o.startswith(space)]
    cmd = [sys.executable, "-m", "search", "-m", *tiny, "strategy=tpe,allinone", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jobs = json.loads((sweep / "summary.json").read_text())["jobs"]
    assert sorted(row["strategy"] for row in jobs) == ["allinone", "tpe"]
    for row in jobs:
        assert row["best_arch_key"] and row["blocks"] and row["latency_ms"] > 0, row
        assert row["final_trained"] and row["eval_psnr"]["set5"] > 20, row
