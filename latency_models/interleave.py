"""Interleaved timing: the way to compare latencies on a host whose speed wanders.

On a shared or virtualised machine, neighbours share the memory bandwidth, so the same
memory-bound network can read 1.5x slower a minute later. Timing models one after another
turns that drift into differences between them. Here every model is timed once per round, in
an order reversed each round (A B C, C B A, ...), a few runs each; a model's figure is its
least per-round median (the round that got the machine at its quietest), and its spread is the
ratio of its slowest to its fastest round median. (A reference model for host drift is timed as
one more item: :func:`latency_models.host.time_zoo`.)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from latency_models.heap import keep_heap


@dataclass(frozen=True)
class InterleavedTiming:
    """One model's result: ms (least round median), per-round medians, slowest/fastest ratio."""

    ms: float
    round_ms: tuple[float, ...]
    threads: int

    @property
    def spread(self) -> float:
        return max(self.round_ms) / min(self.round_ms)


def _time_once(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def interleaved_calls(calls: Sequence[Callable[[], object]], *, rounds: int = 5, runs: int = 3,
                      warmup: int = 2, settle: int = 0, after: Callable[[int, float], None] | None = None
                      ) -> list[list[float]]:
    """Per-round medians (ms) of each of ``calls``, timed in rounds whose order reverses each round.

    Any runtime: a torch module, an onnxruntime session, a TFLite interpreter, wrapped as a call
    with its input bound. ``runs`` calls per item per round; ``after(i, ms)`` follows each timing.
    ``settle`` untimed calls precede each item's runs in every round: a small network timed right
    after a large one otherwise inherits its cold caches and allocator state (measured here: 1.2-1.3x
    slower beside 360x640 SR networks than beside its own kind).
    """
    if rounds < 1 or runs < 1:
        raise ValueError(f"rounds and runs must be at least 1, got {rounds} and {runs}")
    keep_heap()  # else a figure depends on its neighbours' frees (latency_models.heap)
    per_round: list[list[float]] = [[] for _ in calls]
    for call in calls:
        for _ in range(warmup):
            call()
    for r in range(rounds):
        order = range(len(calls)) if r % 2 == 0 else reversed(range(len(calls)))
        for i in order:
            for _ in range(settle):
                calls[i]()
            per_round[i].append(_time_once(calls[i], runs))
            if after is not None:
                after(i, per_round[i][-1])
    return per_round


@torch.inference_mode()
def interleaved_ms(models: Sequence[tuple[nn.Module, Sequence[int]]], threads: int = 1, *, rounds: int = 5,
                   runs: int = 3, warmup: int = 2, settle: int = 0,
                   after: Callable[[int, float], None] | None = None) -> list[InterleavedTiming]:
    """Time ``models`` ((module, input shape (B, C, H, W)) pairs) in interleaved rounds on torch-cpu.

    ``runs`` forward passes per model per round (their median is the round's figure). ``after(i,
    ms)``, when given, is called after each timing with the model's index and that round's median:
    a caller whose module changes what it runs between timings (a run-time governor picking the
    next level) decides there. The previous torch thread count is restored.
    """
    items = list(models)
    gen = torch.Generator().manual_seed(0)
    calls = [partial(module.eval(), torch.randn(tuple(shape), generator=gen)) for module, shape in items]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        per_round = interleaved_calls(calls, rounds=rounds, runs=runs, warmup=warmup, settle=settle, after=after)
    finally:
        torch.set_num_threads(before)
    return [InterleavedTiming(min(rows), tuple(rows), threads) for rows in per_round]


def interleaved_in(backend: str, models: Sequence[tuple[nn.Module, Sequence[int]]], threads: int = 1, *,
                   rounds: int = 5, runs: int = 3, warmup: int = 2, settle: int = 0,
                   calls: Sequence[Callable[[], object]] = ()) -> list[InterleavedTiming]:
    """As :func:`interleaved_ms`, in the local backend named ``backend`` (``"onnxruntime-cpu"``:
    each module exported to ONNX once and run by onnxruntime, as deployed; ``"torch-cpu"``).
    ``calls`` (ready calls, e.g. a shipped file's session) are timed in the same rounds; their
    timings follow the models'."""
    from contextlib import ExitStack

    from latency_models.backends import LocalBackend, get_backend, registered_backends

    kind = registered_backends().get(backend)
    if kind is not None and not issubclass(kind, LocalBackend):
        raise ValueError(f"backend {backend!r} does not run in this process; interleaved timing needs a local one")
    impl = get_backend(backend)  # an unknown name: its own error, listing the known ones
    with ExitStack() as stack:
        sessions = [stack.enter_context(impl.session(module.eval(), tuple(shape), threads)) for module, shape in models]
        per_round = interleaved_calls([*sessions, *calls], rounds=rounds, runs=runs, warmup=warmup, settle=settle)
    return [InterleavedTiming(min(rows), tuple(rows), threads) for rows in per_round]


@dataclass(frozen=True)
class Speedup:
    """Two timings taken side by side: ``ratio`` is the median over rounds of base/other, each
    round's pair measured back to back, so drift between rounds cancels."""

    base: InterleavedTiming
    other: InterleavedTiming

    @property
    def ratio(self) -> float:
        return paired_ratio(self.base, self.other)


def paired_ratio(a: InterleavedTiming, b: InterleavedTiming) -> float:
    """``a``'s latency over ``b``'s, both timed in the same interleaved rounds: the median over
    rounds of each round's ratio. A slow phase of the host moves both sides of a round together,
    whereas the ratio of the least round medians pairs figures from different rounds."""
    return statistics.median(x / y for x, y in zip(a.round_ms, b.round_ms))


def speedup_of(base: nn.Module, other: nn.Module, shape: Sequence[int], threads: int = 1, *,
               rounds: int = 10, runs: int = 3, warmup: int = 3) -> Speedup:
    """How much faster ``other`` runs than ``base`` on an input of ``shape`` (torch-cpu)."""
    timed = interleaved_ms([(base, shape), (other, shape)], threads, rounds=rounds, runs=runs, warmup=warmup)
    return Speedup(*timed)
