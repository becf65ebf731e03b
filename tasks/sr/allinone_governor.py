"""Run-time level switching: keep an All-in-One network within its latency aim while the device's
speed moves (All-in-One's switch to the mask that fits the current frequency).

A :class:`LevelGovernor` serves one operating point. It holds the point's ladder of nested
levels (the point's own sub-network first, then the smaller levels the network also holds) and
their latencies as timed at that point. Each :meth:`LevelGovernor.observe` takes one latency
observation (ms) of the level in use:

- over ``aim_ms``, it steps down to the largest smaller level expected to fit, scaling the timed
  latencies by how much slower the device runs now than when they were timed;
- when the level above (never above the point's own) is expected to fit the aim at the current
  speed, and either the device runs within ``recovered`` of the speed it was timed at or that
  level is expected within ``up_margin`` of the aim, it steps back up one level.

Switching is :meth:`AllInOneWDSRB.set_operating_point`: a few microseconds, no reloading. This
host's speed moves in phases of tens of seconds (one 3-block net at 1 thread: 3-second medians of
45 ms, then 58-70 ms, within 30 s), which one level chosen once cannot follow.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence

import torch

from tasks.sr.allinone import AllInOneWDSRB


class LevelGovernor:
    def __init__(self, model: AllInOneWDSRB, ladder: Sequence[str], timed_ms: Mapping[str, float], aim_ms: float,
                 up_margin: float = 0.9, recovered: float = 1.05) -> None:
        if not ladder or any(name not in model.point_names for name in ladder):
            raise ValueError(f"ladder {list(ladder)} must name operating points of the model {model.point_names}")
        if any(name not in timed_ms or timed_ms[name] <= 0 for name in ladder):
            raise ValueError(f"need a positive timed latency for every level of {list(ladder)}")
        if aim_ms <= 0 or not 0 < up_margin <= 1:
            raise ValueError(f"need aim_ms > 0 and 0 < up_margin <= 1, got {aim_ms}, {up_margin}")
        self.model, self.ladder, self.aim_ms, self.up_margin = model, list(ladder), float(aim_ms), float(up_margin)
        self.recovered = float(recovered)
        self.timed_ms = {n: float(timed_ms[n]) for n in self.ladder}
        self.index = 0
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
        new = self.index
        if ms > self.aim_ms:
            fits = [i for i in range(self.index + 1, len(self.ladder))
                    if self.timed_ms[self.ladder[i]] * slowdown <= self.aim_ms]
            new = fits[0] if fits else len(self.ladder) - 1
        elif self.index > 0:
            up = self.timed_ms[self.ladder[self.index - 1]] * slowdown
            if up <= self.aim_ms and (slowdown <= self.recovered or up <= self.up_margin * self.aim_ms):
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
