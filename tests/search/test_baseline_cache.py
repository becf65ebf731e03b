"""Baselines trained once per recipe: a second run with the same recipe scores the cached weights
(same PSNR, no training); a torn cache entry is trained again; ``task.baseline_cache=false`` trains."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(tmp_path, name, tiny_sr, *extra):
    overrides = [o for o in tiny_sr if not o.startswith("task.baselines=")]
    env_cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "search", *overrides, "task.baselines=[fsrcnn]",
                           "task.baseline_cache=true", *extra,
                           f"hydra.run.dir={tmp_path / name}"], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "HWNAS_CACHE": str(env_cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / name / "result.json").read_text())["baselines"]["fsrcnn"], proc.stdout


@pytest.mark.slow
def test_a_second_run_scores_the_cached_baseline_and_a_torn_entry_is_retrained(tmp_path, tiny_sr):
    first, out = run(tmp_path, "a", tiny_sr)
    entries = list((tmp_path / "cache" / "sr" / "baselines").glob("*.pt"))
    assert "cached_from" not in first and "earlier run" not in out and len(entries) == 1  # trained, then kept
    second, out = run(tmp_path, "b", tiny_sr)
    assert second["cached_from"] and second["train_s"] == 0.0 and "earlier run" in out
    assert second["eval"] == first["eval"]  # the very weights, scored again
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # a kill mid-write of an older version
    third, out = run(tmp_path, "c", tiny_sr)
    assert "does not load" in out and "cached_from" not in third
    fourth, out = run(tmp_path, "d", tiny_sr, "task.baseline_cache=false")
    assert "cached_from" not in fourth and "earlier run" not in out
