"""Kernel profiling on the target: each distinct op of the fitting networks, built as a one-op
module (:func:`latency_models.opbench.op_module`) and timed alone on the caller's backend, the way
nn-Meter profiles kernels on the device itself.

The backend is whatever the caller names (``torch-cpu``, ``torch-cuda``, ``onnxruntime-cpu``,
``adb`` for a phone, or a :class:`~latency_models.backends.Backend` instance): this host is never
timed when the target is elsewhere, because nothing here times a kernel except ``backend.run``.

The fitting networks' kernels alone only show the target at the fitting sizes, and a CPU's cost
per pixel changes past them (caches spill, outputs over 32 MiB are fresh pages: on this
project's VM a WDSR-B network takes 4.3-5.1x longer at 4x the pixels, 5.8-7.8x at 16x).
``scales`` also times a sample of the image kernels on images that many times taller and wider
(:func:`swept_kernels`), so the cost curves are measured where a search will ask for them.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from latency_models.backends import Backend
from latency_models.measure import resolve_backend
from latency_models.protocol import Protocol
from spaces.ops import Op

# Kernels are many and short: fewer repeats than whole networks (median of 8-25 runs).
KERNEL_PROTOCOL = {"warmup": 3, "min_repeats": 8, "max_repeats": 25, "rel_tol": 0.02, "max_seconds": 2.0}
SWEEP_PER_SCALE = 64  # grown kernels per scale: enough rows per cost group for the spill and fresh bases
SWEEP_MAX_BYTES = 512 * 2**20  # operands plus output of one grown kernel; larger ones are not built
# kinds whose attributes do not depend on the image size (an adaptive pool's output would)
_SCALABLE = {"conv2d", "conv_transpose2d", "batch_norm", "group_norm", "prelu", "relu", "gelu", "silu", "sigmoid",
             "tanh", "hardswish", "leaky_relu", "add", "mul", "pixel_shuffle", "max_pool2d", "avg_pool2d",
             "concat", "interpolate"}


def distinct_kernels(op_lists: Iterable[Iterable[Op]]) -> list[Op]:
    """Distinct ops that run as kernels of their own (fused ops ride on their producer)."""
    return list(dict.fromkeys(op for ops in op_lists for op in ops if not op.attr("fused")))


def scaled_kernel(op: Op, factor: int) -> Op | None:
    """``op`` on images ``factor`` times taller and wider (every NCHW operand's H and W, a
    broadcast 1 kept), or None: a kind whose attributes depend on the size, a non-image
    operand, or more than :data:`SWEEP_MAX_BYTES` to build."""
    from latency_models.features import memory_bytes

    shapes = (*op.inputs, op.output)
    if op.kind not in _SCALABLE or not all(len(s) == 4 for s in shapes):
        return None

    def grow(s: Sequence[int]) -> tuple[int, ...]:
        return (s[0], s[1], *(d * factor if d > 1 else d for d in s[2:]))

    grown = dataclasses.replace(op, inputs=tuple(grow(s) for s in op.inputs), output=grow(op.output))
    return grown if sum(memory_bytes(grown).values()) <= SWEEP_MAX_BYTES else None


def swept_kernels(ops: Sequence[Op], scales: Sequence[int], seed: int = 0) -> list[Op]:
    """``ops``, then for each scale above 1 a seeded sample of up to :data:`SWEEP_PER_SCALE` of
    them grown by it (:func:`scaled_kernel`)."""
    if any(int(s) != s or s < 1 for s in scales):
        raise ValueError(f"kernel scales must be whole numbers of at least 1, got {list(scales)}")
    out, rng = list(ops), random.Random(seed)
    for factor in sorted({int(s) for s in scales} - {1}):
        grown = [g for g in (scaled_kernel(op, factor) for op in ops) if g is not None]
        out += rng.sample(grown, min(len(grown), SWEEP_PER_SCALE))
    return list(dict.fromkeys(out))


def profile_kernels(ops: Iterable[Op], backend: str | Backend, threads: int = 1, *,
                    backend_options: Mapping[str, Any] | None = None, max_kernels: int = 3000, seed: int = 0,
                    progress: bool = False, **protocol: Any) -> tuple[dict[Op, float], dict[str, Any]]:
    """Median ms of each op run alone on ``backend``, and a record of where they were timed.

    At most ``max_kernels`` ops (a seeded random subset, every op kind first) are timed.
    """
    from tqdm.auto import tqdm

    from latency_models.opbench import op_module

    engine = resolve_backend(backend, **dict(backend_options or {}))
    chosen = choose_kernels(list(dict.fromkeys(ops)), max_kernels, seed)
    proto = Protocol.from_kwargs(**{**KERNEL_PROTOCOL, **protocol})
    out: dict[Op, float] = {}
    for op in tqdm(chosen, desc=f"kernels on {engine.name}", disable=not progress, leave=False):
        module, shape = op_module(op)
        out[op] = engine.run(module.eval(), shape, threads, proto).summary()["median_ms"]
    record = {"backend": engine.name, "threads": threads, "host": engine.host(), "n_kernels": len(out),
              "protocol": proto.to_dict(), "extra": engine.extra()}
    return out, record


def choose_kernels(ops: list[Op], max_kernels: int, seed: int) -> list[Op]:
    """At most ``max_kernels`` of ``ops``: a seeded random subset, one of every op kind first."""
    random.Random(seed).shuffle(ops)
    first, rest, seen = [], [], set()
    for op in ops:
        (rest if op.kind in seen else first).append(op)
        seen.add(op.kind)
    return (first + rest)[:max(0, max_kernels)]
