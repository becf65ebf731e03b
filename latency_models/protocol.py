"""The measurement protocol: warm-up, repeat until the median is stable, summarise.

Call order for one model: :func:`run_protocol` calls ``sample_ms()`` ``protocol.warmup`` times
and discards the results, then keeps calling it until the median is stable (see
:class:`Protocol`) or a bound is hit, and returns :class:`Timings` (all raw times in ms).

For a collection of models: :func:`shuffled_order` draws the measuring order from a seeded
``numpy.random.Generator`` (no global RNG), :func:`reference_positions` says after which models
a reference model is re-measured, and :func:`drift_pct` expresses each reference median as a
percentage change from the first one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Protocol:
    """How many times to run a model and when to stop.

    After ``warmup`` discarded runs the model runs at least ``min_repeats`` and at most
    ``max_repeats`` times. From ``min_repeats`` on, after every run, the median of all times is
    compared with the median without the last ``window`` runs; the loop stops once they differ
    by less than ``rel_tol`` (0.01 = 1 %). ``max_seconds`` caps the wall-clock time of the timed
    runs (checked after ``min_repeats``), so a slow model cannot stall a collection.
    """

    warmup: int = 5
    min_repeats: int = 10
    max_repeats: int = 200
    rel_tol: float = 0.01
    window: int = 5
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.min_repeats <= self.window:
            raise ValueError(
                f"min_repeats ({self.min_repeats}) must exceed window ({self.window}): the "
                "stability check compares the median with and without the last window runs"
            )
        if self.max_repeats < self.min_repeats:
            raise ValueError(f"max_repeats ({self.max_repeats}) < min_repeats ({self.min_repeats})")
        if not 0 < self.rel_tol < 1:
            raise ValueError(f"rel_tol must be in (0, 1), got {self.rel_tol}")
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Protocol:
        """Build from keyword arguments, naming the valid ones when one is unknown."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown protocol option(s) {unknown}; valid: {sorted(known)}")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Timings:
    """Raw result of one protocol run. ``times_ms`` in measuring order; ``stable`` tells whether
    the loop stopped on the tolerance (False: a bound stopped it)."""

    times_ms: tuple[float, ...]
    stable: bool
    stop_reason: str  # "stable", "max_repeats" or "max_seconds"

    def summary(self) -> dict[str, float]:
        return summarize(self.times_ms)


def summarize(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, inter-quartile range, 10th and 90th percentile (ms; linear interpolation)."""
    if len(times_ms) == 0:
        raise ValueError("no times to summarise")
    arr = np.asarray(times_ms, dtype=np.float64)
    p10, q25, median, q75, p90 = np.percentile(arr, [10, 25, 50, 75, 90])
    return {
        "median_ms": float(median),
        "iqr_ms": float(q75 - q25),
        "p10_ms": float(p10),
        "p90_ms": float(p90),
    }


def is_stable(times_ms: Sequence[float], window: int, rel_tol: float) -> bool:
    """True when the median moved by less than ``rel_tol`` over the last ``window`` samples."""
    if len(times_ms) <= window:
        return False
    before = float(np.median(times_ms[:-window]))
    now = float(np.median(times_ms))
    return abs(now - before) < rel_tol * abs(before)


def run_protocol(
    sample_ms: Callable[[], float],
    protocol: Protocol,
    clock: Callable[[], float] = time.perf_counter,
) -> Timings:
    """Warm up, then sample until stable or bounded. ``sample_ms`` returns one latency in ms."""
    for _ in range(protocol.warmup):
        sample_ms()
    times: list[float] = []
    start = clock()
    while True:
        value = float(sample_ms())
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"a timed run returned {value!r} ms; expected a finite value >= 0")
        times.append(value)
        n = len(times)
        if n < protocol.min_repeats:
            continue
        if is_stable(times, protocol.window, protocol.rel_tol):
            return Timings(tuple(times), True, "stable")
        if n >= protocol.max_repeats:
            return Timings(tuple(times), False, "max_repeats")
        if clock() - start > protocol.max_seconds:
            return Timings(tuple(times), False, "max_seconds")


def run_batched(
    sample_batch_ms: Callable[[int], Sequence[float]],
    protocol: Protocol,
    clock: Callable[[], float] = time.perf_counter,
) -> Timings:
    """The same stopping rule for engines that time several runs per call (a phone benchmark
    binary). ``sample_batch_ms(n)`` performs its own warm-up and returns up to ``n`` new times
    (at least one); it is asked for ``min_repeats`` first, then ``window`` at a time."""
    times: list[float] = []
    start = clock()
    wanted = protocol.min_repeats
    while True:
        batch = [float(v) for v in sample_batch_ms(wanted)]
        if not batch or any(not np.isfinite(v) or v < 0 for v in batch):
            raise ValueError(f"a batch of timed runs returned {batch!r}; expected finite values >= 0 ms")
        times.extend(batch)
        n = len(times)
        if n >= protocol.min_repeats and is_stable(times, protocol.window, protocol.rel_tol):
            return Timings(tuple(times), True, "stable")
        if n >= protocol.max_repeats:
            return Timings(tuple(times), False, "max_repeats")
        if clock() - start > protocol.max_seconds:
            return Timings(tuple(times), False, "max_seconds")
        wanted = protocol.min_repeats - n if n < protocol.min_repeats else protocol.window
        wanted = max(1, min(wanted, protocol.max_repeats - n))


def shuffled_order(n_models: int, seed: int) -> list[int]:
    """A random permutation of ``range(n_models)`` from a seeded per-call Generator."""
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.permutation(n_models)]


def reference_positions(n_models: int, every: int) -> list[int]:
    """Numbers of models measured before each reference measurement: the reference runs first
    (0), after every ``every`` models, and once more at the end (e.g. n=5, every=2: [0, 2, 4, 5])."""
    if every < 1:
        raise ValueError(f"reference_every must be >= 1, got {every}")
    positions = list(range(0, n_models + 1, every))
    if positions[-1] != n_models:
        positions.append(n_models)
    return positions


def drift_pct(reference_medians_ms: Sequence[float]) -> list[float]:
    """Each reference median as % change from the first one (the first is 0.0)."""
    if not reference_medians_ms:
        return []
    first = float(reference_medians_ms[0])
    if first <= 0:
        raise ValueError(f"first reference median must be > 0 ms, got {first}")
    return [100.0 * (float(m) - first) / first for m in reference_medians_ms]
