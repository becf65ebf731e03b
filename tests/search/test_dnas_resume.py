"""Killing `strategy=dnas` during supernet training and running the same command again resumes
from the last supernet checkpoint and finishes with every output."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

TOTAL = 4 + 4 + 8


@pytest.mark.slow
def test_killed_supernet_training_resumes_from_its_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "search", "task=sr", "device=s21", "strategy=dnas", "experiment=smoke",
           f"hydra.run.dir={run_dir}", "task.baselines=[]", "task.final.steps=10",
           "task.space.max_blocks=4", "task.space.m1=[8,64,8]", "search.timeout_s=3600",
           "strategy.warmup_steps=4", "strategy.width_steps=4", "strategy.joint_steps=8",
           "strategy.checkpoint_every=2", "strategy.eval_every=4", "strategy.select=validation"]
    ckpt = run_dir / "supernet_checkpoint.pt"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900
        while not ckpt.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-2000:]
    step = int(torch.load(ckpt, weights_only=True)["step"])
    assert 1 <= step < TOTAL
    assert not (run_dir / "result.json").exists()

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"resuming supernet from step {step} of {TOTAL}" in second.stdout
    assert f"supernet: {TOTAL} steps done" in second.stdout
    assert "[supernet warmup] step 1/" not in second.stdout  # nothing before the checkpoint ran again
    for name in ("result.json", "arch.json", "model.pt", "model.onnx", "pareto.png", "report.md"):
        assert (run_dir / name).stat().st_size > 0, name
    result = json.loads((run_dir / "result.json").read_text())
    assert result["study"]["strategy"] == "dnas" and result["supernet"]["steps"] == TOTAL
    assert result["supernet"]["final_init"] == "supernet" and "from the supernet" in second.stdout
    assert 0 < result["best"]["latency_ms"] <= 33.3
    assert [p["step"] for p in result["supernet"]["trajectory"]] == [4, 8, 12, 16]
    chosen = [c for c in result["supernet"]["candidates"] if c["chosen"]]
    assert len(chosen) == 1 and chosen[0]["arch"] == result["best"]["arch"]
