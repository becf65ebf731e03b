"""The last index whose value fits a limit, by bisection over values that grow with the index."""

from __future__ import annotations

from collections.abc import Callable


def last_within(n: int, value: Callable[[int], float], limit: float) -> int:
    """The largest ``i`` in ``range(n)`` with ``value(i) <= limit``, assuming ``value`` grows with
    ``i``; -1 when none fits. Calls ``value`` about log2(n) times (cache it where it is costly)."""
    lo, hi = -1, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if value(mid) <= limit:
            lo = mid
        else:
            hi = mid
    return lo
