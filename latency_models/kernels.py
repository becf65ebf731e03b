"""Kernel profiling on the target: each distinct op of the fitting networks, built as a one-op
module (:func:`latency_models.opbench.op_module`) and timed alone on the caller's backend, the way
nn-Meter profiles kernels on the device itself.

The backend is whatever the caller names (``torch-cpu``, ``torch-cuda``, ``onnxruntime-cpu``,
``adb`` for a phone, or a :class:`~latency_models.backends.Backend` instance): this host is never
timed when the target is elsewhere, because nothing here times a kernel except ``backend.run``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from latency_models.backends import Backend
from latency_models.measure import resolve_backend
from latency_models.protocol import Protocol
from spaces.ops import Op

# Kernels are many and short: fewer repeats than whole networks (median of 8-25 runs).
KERNEL_PROTOCOL = {"warmup": 3, "min_repeats": 8, "max_repeats": 25, "rel_tol": 0.02, "max_seconds": 2.0}


def distinct_kernels(op_lists: Iterable[Iterable[Op]]) -> list[Op]:
    """Distinct ops that run as kernels of their own (fused ops ride on their producer)."""
    return list(dict.fromkeys(op for ops in op_lists for op in ops if not op.attr("fused")))


def profile_kernels(ops: Iterable[Op], backend: str | Backend, threads: int = 1, *,
                    backend_options: Mapping[str, Any] | None = None, max_kernels: int = 3000, seed: int = 0,
                    progress: bool = False, **protocol: Any) -> tuple[dict[Op, float], dict[str, Any]]:
    """Median ms of each op run alone on ``backend``, and a record of where they were timed.

    At most ``max_kernels`` ops (a seeded random subset, every op kind first) are timed.
    """
    from tqdm.auto import tqdm

    from latency_models.opbench import op_module

    engine = resolve_backend(backend, **dict(backend_options or {}))
    chosen = _choose(list(dict.fromkeys(ops)), max_kernels, seed)
    proto = Protocol.from_kwargs(**{**KERNEL_PROTOCOL, **protocol})
    out: dict[Op, float] = {}
    for op in tqdm(chosen, desc=f"kernels on {engine.name}", disable=not progress, leave=False):
        module, shape = op_module(op)
        out[op] = engine.run(module.eval(), shape, threads, proto).summary()["median_ms"]
    record = {"backend": engine.name, "threads": threads, "host": engine.host(), "n_kernels": len(out),
              "protocol": proto.to_dict(), "extra": engine.extra()}
    return out, record


def _choose(ops: list[Op], max_kernels: int, seed: int) -> list[Op]:
    random.Random(seed).shuffle(ops)
    first, rest, seen = [], [], set()
    for op in ops:
        (rest if op.kind in seen else first).append(op)
        seen.add(op.kind)
    return (first + rest)[:max(0, max_kernels)]
