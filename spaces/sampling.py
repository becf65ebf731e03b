"""Search-free sampling: a seeded :class:`spaces.base.Suggester` over ``random.Random``."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any


class RandomSuggester:
    """Uniform choices from a private, seeded generator (no global random state)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int:
        value = self._rng.randrange(low, high + 1, step)
        self.params[name] = value
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """Uniform in [low, high]; on the grid low + i*step when ``step`` is given, log-uniform
        when ``log`` (as optuna: step and log are exclusive, log needs low > 0)."""
        if step is not None and log:
            raise ValueError("suggest_float: step and log cannot be used together")
        if log:
            if low <= 0:
                raise ValueError(f"suggest_float: log needs low > 0, got {low}")
            value = math.exp(self._rng.uniform(math.log(low), math.log(high)))
        elif step is not None:
            n = int(math.floor((high - low) / step + 1e-9))
            value = low + self._rng.randint(0, n) * step
        else:
            value = self._rng.uniform(low, high)
        value = min(max(value, low), high)
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = choices[self._rng.randrange(len(choices))]
        self.params[name] = value
        return value
