"""Search-free sampling: a seeded :class:`spaces.base.Suggester` over ``random.Random``."""

from __future__ import annotations

import random
from typing import Any, Sequence


class RandomSuggester:
    """Uniform choices from a private, seeded generator (no global random state)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int:
        value = self._rng.randrange(low, high + 1, step)
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = choices[self._rng.randrange(len(choices))]
        self.params[name] = value
        return value
