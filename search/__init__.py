"""Hardware-aware NAS: ``python -m search task=sr device=s21``, or ``search.run(...)`` from Python."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy: importing one of search's modules must not load the whole pipeline.
    if name == "run":
        from search.api import run

        return run
    raise AttributeError(f"module 'search' has no attribute {name!r}")
