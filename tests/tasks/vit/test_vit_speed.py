"""Real timing on this CPU: pruned deit_small is clearly faster than unpruned (selectors included).

The issue's goal is 1.5x at 2 threads, batch 1, keep rates (0.7, 0.49, 0.343). On an idle machine
this measured 1.36x (65.7 -> 48.5 ms) with the current selectors: the goal is not met yet and is
tracked by ``python benchmarks/vit_speedup.py``, which prints the full table. This test guards a
real, measured speed-up so that a regression in the pruned path fails CI.
"""

from __future__ import annotations

import timm
import torch

from tasks.vit import patch_token_selectors
from tasks.vit.timing import measure_speedup


def test_deit_small_pruned_is_faster_at_2_threads_batch_1():
    model = timm.create_model("deit_small_patch16_224", pretrained=False).eval()
    pruned = patch_token_selectors(model, (0.7, 0.49, 0.343)).eval()
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    row = measure_speedup(model, pruned, images, threads=2, warmup=5, repeats=20)
    assert row.speedup >= 1.2, f"full {row.full_ms:.1f} ms, pruned {row.pruned_ms:.1f} ms: {row.speedup:.2f}x"
