"""Bad input gets one clear line naming the problem and the fix, never a traceback wall."""

import subprocess
import sys

import pytest

CASES = {
    "unknown task": (["task=segmentation"], "task"),
    "unknown device": (["device=pixel9"], "device"),
    "budget below the smallest architecture": (["budget_ms=1"], "smallest architecture"),
    "budget not a number": (["budget_ms=fast"], "budget_ms"),
    "malformed override": (["search.n_trials"], "search.n_trials"),
    "unknown key": (["search.n_trails=3"], "n_trails"),
    "missing data folder": (["task.data.train_root=/nonexistent/images"], "/nonexistent/images"),
    "scale with no S21 data": (["task.scale=3"], "collect"),
    "space outside the published model's box": (["experiment=smoke", "task.space.channels=[32,48]"],
                                                 "outside the box the published model was fitted on (C 8-24"),
    "allow_extrapolation not a bool": (["latency.allow_extrapolation=maybe"], "latency.allow_extrapolation"),
    "n_trials nan": (["search.n_trials=nan"], "search.n_trials"),
    "n_trials inf": (["search.n_trials=inf"], "search.n_trials"),
    "seed nan": (["seed=nan"], "seed"),
    "budget inf": (["budget_ms=inf"], "budget_ms"),
    "no validation images": (["task.data.val_images=0"], "task.data.val_images"),
    "vit budget fraction nan": (["task=vit", "device=cpu", "task.budget_fraction=nan"], "task.budget_fraction"),
    "vit too few predictor samples": (["task=vit", "device=cpu", "task.predictor.samples=3"], "task.predictor.samples"),
    "vit predictor quantile out of range": (["task=vit", "device=cpu", "task.predictor.quantile=1.5"],
                                            "task.predictor.quantile"),
    "vit unknown runtime": (["task=vit", "device=cpu", "task.runtime=tensorrt"], "task.runtime"),
    "vit backend beside its runtime": (["task=vit", "device=cpu", "latency=measured", "latency.backend=torch-cuda"],
                                       "task.runtime"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_clear_error(name, tmp_path):
    overrides, needle = CASES[name]
    proc = subprocess.run(
        [sys.executable, "-m", "search", *overrides, f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert needle in output, output
    assert "Traceback" not in output, output
    assert len(output.strip().splitlines()) <= 15, output
