"""A space outside the published S21 model's box runs only when the user allows extrapolation,
and then result.json flags the extrapolated predictions (the refusal is in test_errors.py)."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_allowed_extrapolation_is_flagged_in_the_result(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "search", "task=sr", "device=s21", "experiment=smoke",
                           "task.space.channels=[32,48]", "latency.allow_extrapolation=true",
                           "search.n_trials=3", "task.proxy.steps=2", "task.final.steps=2", "task.baselines=[bicubic]",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reaches outside the latency model's range" in proc.stdout
    best = json.loads((tmp_path / "result.json").read_text())["best"]
    assert best["arch"]["channels"] in (32, 48)
    assert "outside the box the published model was fitted on" in best["latency_extrapolated"]
    flagged = best["latency_source"]["extrapolated"]
    assert best["arch_key"] in flagged and all("C 8-24" in why for why in flagged.values())
