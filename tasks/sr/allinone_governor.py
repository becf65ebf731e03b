"""Run-time level switching: keep an All-in-One network's latency level while the device's speed
moves (All-in-One's switch to the mask that fits the current frequency).

A :class:`LevelGovernor` serves one operating point. It holds the network's ladder of nested
levels (largest first), the latency of each as timed at that point, the level the point starts
on (its own sub-network) and the latency to hold, ``ref_ms``: the levelled latency every point
was given. Each :meth:`LevelGovernor.observe` takes one latency observation (ms) of the level in
use and scales the timed latencies by how much slower (or faster) the device runs now:

- above the band's top, ``min(ref_ms * (1 + band), ceiling_ms)``, it steps down to the largest
  smaller level expected within that top (the smallest level when none is);
- below the band's bottom, ``ref_ms / (1 + band)``, it steps up one level, when that level is
  expected within the top; a larger network only ever climbs one level per observation, a late
  deadline falls as far as it must.

So every point's latency stays within the same band as long as the ladder reaches: at most
``(1 + band) ** 2`` apart (1.12 for the default band). Switching is
:meth:`AllInOneWDSRB.set_operating_point`: a few microseconds, no reloading. This host's speed
moves in phases of tens of seconds (one 3-block net at 1 thread: 3-second medians of 45 ms, then
58-70 ms, within 30 s; one level at 2 threads ran 25.5 ms when chosen and 17.6 ms a minute later),
which one level chosen once cannot follow in either direction.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence

import torch

from tasks.sr.allinone import AllInOneWDSRB


class LevelGovernor:
    def __init__(self, model: AllInOneWDSRB, ladder: Sequence[str], timed_ms: Mapping[str, float], ref_ms: float,
                 start: str | None = None, band: float = 0.06, ceiling_ms: float | None = None) -> None:
        if not ladder or any(name not in model.point_names for name in ladder):
            raise ValueError(f"ladder {list(ladder)} must name operating points of the model {model.point_names}")
        if any(name not in timed_ms or timed_ms[name] <= 0 for name in ladder):
            raise ValueError(f"need a positive timed latency for every level of {list(ladder)}")
        if ref_ms <= 0 or not 0 < band < 1 or (ceiling_ms is not None and ceiling_ms <= 0):
            raise ValueError(f"need ref_ms > 0, 0 < band < 1 and ceiling_ms > 0, got {ref_ms}, {band}, {ceiling_ms}")
        start = ladder[0] if start is None else start
        if start not in ladder:
            raise ValueError(f"start level {start!r} is not on the ladder {list(ladder)}")
        self.model, self.ladder, self.own = model, list(ladder), start
        self.timed_ms = {n: float(timed_ms[n]) for n in self.ladder}
        self.ref_ms, self.band = float(ref_ms), float(band)
        top = self.ref_ms * (1 + self.band)
        self.high_ms = top if ceiling_ms is None else min(top, float(ceiling_ms))
        self.low_ms = self.ref_ms / (1 + self.band)
        self.index = self.ladder.index(start)
        self.used: Counter[str] = Counter()
        self.switches = 0

    @property
    def level(self) -> str:
        return self.ladder[self.index]

    def activate(self) -> None:
        self.model.set_operating_point(self.level)

    def observe(self, ms: float) -> str:
        """Record one latency observation of the level in use; switch if needed. Returns the
        level to run next (already set on the model)."""
        self.used[self.level] += 1
        slowdown = ms / self.timed_ms[self.level]  # > 1: the device runs slower than when timed

        def expected(i: int) -> float:
            return self.timed_ms[self.ladder[i]] * slowdown

        new = self.index
        if ms > self.high_ms:
            fits = [i for i in range(self.index + 1, len(self.ladder)) if expected(i) <= self.high_ms]
            new = fits[0] if fits else len(self.ladder) - 1
        elif ms < self.low_ms and self.index > 0 and expected(self.index - 1) <= self.high_ms:
            new = self.index - 1
        if new != self.index:
            self.index, self.switches = new, self.switches + 1
        self.activate()
        return self.level

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """One governed inference: run the level in use, time it, observe."""
        self.activate()
        t0 = time.perf_counter()
        with torch.inference_mode():
            y = self.model(x)
        self.observe((time.perf_counter() - t0) * 1e3)
        return y
