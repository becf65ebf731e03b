"""Wall-clock latency of a full and a pruned model, measured interleaved on this CPU."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SpeedRow:
    threads: int
    batch: int
    full_ms: float  # median wall time of one forward, milliseconds
    pruned_ms: float

    @property
    def speedup(self) -> float:
        return self.full_ms / self.pruned_ms


@torch.inference_mode()
def measure_speedup(full: nn.Module, pruned: nn.Module, images: torch.Tensor, threads: int = 2,
                    warmup: int = 5, repeats: int = 30) -> SpeedRow:
    """Median latency (ms) of ``full`` and ``pruned`` on ``images`` with ``threads`` intra-op threads.

    Runs alternate between the two models (order flipped every repeat) so that load from other
    processes on a shared machine hits both alike. Restores the previous thread count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    full.eval()
    pruned.eval()
    times: dict[int, list[float]] = {0: [], 1: []}
    models = (full, pruned)
    try:
        for _ in range(warmup):
            full(images)
            pruned(images)
        for r in range(repeats):
            for which in ((0, 1) if r % 2 == 0 else (1, 0)):
                start = time.perf_counter()
                models[which](images)
                times[which].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return SpeedRow(threads, images.shape[0], 1e3 * statistics.median(times[0]), 1e3 * statistics.median(times[1]))
