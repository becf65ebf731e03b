"""Interleaved timing: the way to compare latencies on a host whose speed wanders.

On a shared or virtualised machine, neighbours share the memory bandwidth, so the same
memory-bound network can read 1.5x slower a minute later. Timing models one after another
turns that drift into differences between them. Here every model is timed once per round, in
an order reversed each round (A B C, C B A, ...), a few runs each; a model's figure is its
least per-round median (the round that got the machine at its quietest), and its spread is the
ratio of its slowest to its fastest round median. With a ``reference`` timed in every round,
each round's medians are also rescaled by how fast the reference ran in that round.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class InterleavedTiming:
    """One model's result: ms (least round median), per-round medians, slowest/fastest ratio."""

    ms: float
    round_ms: tuple[float, ...]
    threads: int

    @property
    def spread(self) -> float:
        return max(self.round_ms) / min(self.round_ms)


def _time_once(module: nn.Module, x: torch.Tensor, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        module(x)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@torch.inference_mode()
def interleaved_ms(models: Sequence[tuple[nn.Module, Sequence[int]]], threads: int = 1, *, rounds: int = 5,
                   runs: int = 3, warmup: int = 2, reference: tuple[nn.Module, Sequence[int]] | None = None,
                   after: Callable[[int, float], None] | None = None) -> list[InterleavedTiming]:
    """Time ``models`` ((module, input shape (B, C, H, W)) pairs) in interleaved rounds on torch-cpu.

    ``runs`` forward passes per model per round (their median is the round's figure). ``after(i,
    ms)``, when given, is called after each timing with the model's index and that round's median:
    a caller whose module changes what it runs between timings (a run-time governor picking the
    next level) decides there. The previous torch thread count is restored.
    """
    if rounds < 1 or runs < 1:
        raise ValueError(f"rounds and runs must be at least 1, got {rounds} and {runs}")
    items = list(models) + ([reference] if reference is not None else [])
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(tuple(shape), generator=gen) for _, shape in items]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    per_round: list[list[float]] = [[] for _ in items]
    try:
        for (module, _), x in zip(items, inputs):
            module.eval()
            for _ in range(warmup):
                module(x)
        for r in range(rounds):
            order = range(len(items)) if r % 2 == 0 else reversed(range(len(items)))
            for i in order:
                per_round[i].append(_time_once(items[i][0], inputs[i], runs))
                if after is not None and i < len(models):
                    after(i, per_round[i][-1])
    finally:
        torch.set_num_threads(before)
    if reference is not None:
        ref = per_round.pop()
        nominal = statistics.median(ref)
        per_round = [[m * nominal / rm for m, rm in zip(rows, ref)] for rows in per_round]
    return [InterleavedTiming(min(rows), tuple(rows), threads) for rows in per_round]
