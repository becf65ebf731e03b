"""The real pipeline (``python -m search``), run twice in a row with one seed, finds the same
architecture. (The finished command run again adds no trial: test_cluster_search.py, test_cluster.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def search(run_dir, *overrides: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "search", *overrides, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_same_seed_same_best_arch(tmp_path, tiny_sr):
    args = [*tiny_sr, "seed=7", "budget_ms=33.3", "search.run_final=false"]
    search(tmp_path / "a", *args)
    search(tmp_path / "b", *args)
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("a", "b"))
    assert a["best"] is not None and a["best"]["arch"]["blocks"]
    assert a["best"]["arch"] == b["best"]["arch"] and a["best"]["trial"] == b["best"]["trial"]
    assert [t["arch"] for t in a["trials"]["trials"]] == [t["arch"] for t in b["trials"]["trials"]]
    assert a["best"]["val_psnr_proxy"] == b["best"]["val_psnr_proxy"]

