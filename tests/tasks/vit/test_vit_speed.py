"""Real timing on this CPU: pruned deit_small is clearly faster than unpruned (selectors included).

The issue's goal is 1.5x at 2 threads, batch 1, keep rates (0.7, 0.49, 0.343). On an idle machine
this measured 1.36x (65.7 -> 48.5 ms) with the current selectors: the goal is not met yet and is
tracked by ``python benchmarks/vit_speedup.py``, which prints the full table. This test guards a
real, measured speed-up so that a regression in the pruned path fails CI.
"""

from __future__ import annotations

import pytest
import timm

from latency_models.interleave import speedup_of
from tasks.vit import patch_token_selectors


@pytest.mark.slow  # a timing, interleaved
def test_deit_small_pruned_is_faster_at_2_threads_batch_1():
    model = timm.create_model("deit_small_patch16_224", pretrained=False).eval()
    pruned = patch_token_selectors(model, (0.7, 0.49, 0.343)).eval()
    row = speedup_of(model, pruned, (1, 3, 224, 224), threads=2, rounds=8)
    assert row.ratio >= 1.2, f"full {row.base.ms:.1f} ms, pruned {row.other.ms:.1f} ms: {row.ratio:.2f}x"
