"""Drift correction against a reference network timed around every measured model.

On a shared host the speed of the machine itself wanders. Each model is timed between two runs
of one fixed reference, and its time is rescaled by ``nominal / local``: ``local`` the faster of
the two reference times around it, ``nominal`` the median of every reference time in the
collection. The result reads in ms of a machine running at its typical speed throughout.

It helps against slow drift (minutes) and not against noise faster than one measurement. Probed
on this project's 2-core VM: with slow drift, 12 WDSR-B nets timed in 4 rounds a minute apart
moved up to 1.4x raw and under 1.12x corrected; in a noisier hour (the reference itself ranged
28-64 ms within one collection) re-timed held-out nets agreed within +-10 % 46 % of the time raw
and 38 % corrected (``benchmarks/latency_predictor.py --families sr --noise-floor
--drift-reference``). Check the reference spread (:meth:`summary`) before trusting either.

    timer = DriftCorrectedTimer(reference_module, (1, 3, 90, 160), threads=1)
    raw = [timer.time(m, shape) for m, shape in models]
    ms = timer.corrected(raw)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from torch import nn

from latency_models.opbench import time_module


class DriftCorrectedTimer:
    """Times models (fastest of ``repeats`` runs, :func:`latency_models.opbench.time_module`)
    with the reference ``module`` timed before and after each; :meth:`corrected` rescales."""

    def __init__(self, module: nn.Module, input_shape: Sequence[int], threads: int = 1, *, clock: str = "wall",
                 reference_repeats: int = 5) -> None:
        self.module, self.input_shape, self.threads = module.eval(), tuple(input_shape), threads
        self.clock, self.reference_repeats = clock, reference_repeats
        self.local_ms: list[float] = []       # per timed model: the faster reference time around it
        self.reference_ms: list[float] = []   # every reference time, in order

    def _reference(self) -> float:
        ms = time_module(self.module, self.input_shape, self.threads, clock=self.clock,
                         repeats=self.reference_repeats, warmup=1)
        self.reference_ms.append(ms)
        return ms

    def time(self, module: nn.Module, input_shape: Sequence[int], **options: Any) -> float:
        """Raw fastest-run ms of ``module``; the reference times around it are kept."""
        before = self._reference()
        ms = time_module(module, input_shape, self.threads, clock=self.clock, **options)
        self.local_ms.append(min(before, self._reference()))
        return ms

    @property
    def nominal_ms(self) -> float:
        if not self.reference_ms:
            raise ValueError("no reference time yet: time() at least one model first")
        return statistics.median(self.reference_ms)

    def corrected(self, raw_ms: Sequence[float]) -> list[float]:
        """``raw_ms`` (one per :meth:`time` call, same order) rescaled to the nominal speed."""
        if len(raw_ms) != len(self.local_ms):
            raise ValueError(f"{len(raw_ms)} raw times for {len(self.local_ms)} timed models")
        nominal = self.nominal_ms
        return [ms * nominal / local for ms, local in zip(raw_ms, self.local_ms, strict=True)]

    def summary(self) -> dict[str, float]:
        """Reference spread over the collection: how much the correction had to do."""
        ref = self.reference_ms
        return {"reference_nominal_ms": self.nominal_ms, "reference_min_ms": min(ref), "reference_max_ms": max(ref),
                "reference_spread": max(ref) / min(ref), "n_reference": len(ref)}
