"""Measure the latency of one ``torch.nn.Module``: the public entry of the measurement half.

>>> m = measure(net, (1, 3, 180, 320), backend="torch-cpu", threads=1, max_repeats=50)
>>> m.median_ms, m.iqr_ms, m.n_repeats, m.host["fingerprint"]

``backend`` is a registered name (``torch-cpu``, ``torch-cuda``, ``onnxruntime-cpu``, ``adb``;
see :mod:`latency_models.backends`) or a :class:`~latency_models.backends.Backend` instance
(e.g. ``AdbBackend(serial="R58M...")``). Extra keyword arguments are
:class:`~latency_models.protocol.Protocol` options (``warmup``, ``min_repeats``,
``max_repeats``, ``rel_tol``, ``window``, ``max_seconds``).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from latency_models.backends import Backend, get_backend
from latency_models.backends.base import check_threads
from latency_models.protocol import Protocol

MEASUREMENT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Measurement:
    """Latency statistics of one model on one backend (all times in milliseconds).

    ``median_ms`` is the median of ``times_ms`` (the timed runs, warm-ups excluded, in measuring
    order), ``iqr_ms`` its inter-quartile range, ``p10_ms`` / ``p90_ms`` the 10th / 90th
    percentiles. ``stable`` is True when the protocol stopped on its tolerance rather than a
    bound. ``host`` is :func:`latency_models.hostinfo.host_info` (for ``adb``, the phone's).
    ``extra`` holds backend details (e.g. the phone benchmark's own figures).
    """

    median_ms: float
    iqr_ms: float
    p10_ms: float
    p90_ms: float
    n_repeats: int
    times_ms: tuple[float, ...]
    backend: str
    threads: int
    input_shape: tuple[int, ...]
    host: dict[str, Any]
    stable: bool = True
    stop_reason: str = "stable"
    protocol: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cv(self) -> float:
        """Coefficient of variation of ``times_ms`` (std / mean, unitless)."""
        if len(self.times_ms) < 2:
            return 0.0
        return statistics.stdev(self.times_ms) / statistics.fmean(self.times_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict; :meth:`from_dict` inverts it exactly."""
        data = asdict(self)
        data["times_ms"] = list(self.times_ms)
        data["input_shape"] = list(self.input_shape)
        data["schema_version"] = MEASUREMENT_SCHEMA_VERSION
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Measurement:
        version = data.get("schema_version", MEASUREMENT_SCHEMA_VERSION)
        if version != MEASUREMENT_SCHEMA_VERSION:
            raise ValueError(f"measurement schema version {version} not supported (want {MEASUREMENT_SCHEMA_VERSION})")
        return Measurement(
            median_ms=float(data["median_ms"]),
            iqr_ms=float(data["iqr_ms"]),
            p10_ms=float(data["p10_ms"]),
            p90_ms=float(data["p90_ms"]),
            n_repeats=int(data["n_repeats"]),
            times_ms=tuple(float(t) for t in data["times_ms"]),
            backend=str(data["backend"]),
            threads=int(data["threads"]),
            input_shape=tuple(int(d) for d in data["input_shape"]),
            host=dict(data["host"]),
            stable=bool(data.get("stable", True)),
            stop_reason=str(data.get("stop_reason", "stable")),
            protocol=dict(data.get("protocol", {})),
            extra=dict(data.get("extra", {})),
        )


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints, e.g. (1, 3, 180, 320); got {input_shape!r}")
    return shape


def resolve_backend(backend: str | Backend, **options: Any) -> Backend:
    """A :class:`Backend` from a registered name (with options) or an instance (as is)."""
    if isinstance(backend, Backend):
        if options:
            raise TypeError("backend options are only accepted with a backend name, not an instance")
        return backend
    return get_backend(backend, **options)


def measure(
    module: torch.nn.Module,
    input_shape: Sequence[int],
    backend: str | Backend = "torch-cpu",
    threads: int = 1,
    *,
    backend_options: Mapping[str, Any] | None = None,
    **protocol_kwargs: Any,
) -> Measurement:
    """Measure the latency of ``module`` on an input of ``input_shape`` (e.g. ``(1, 3, 180, 320)``).

    The module is put in eval mode for the measurement (its training flag is restored
    afterwards) and run under ``torch.inference_mode``. ``threads`` is the number of intra-op
    threads the backend uses. ``backend_options`` go to the backend's constructor (e.g.
    ``{"serial": ..., "adb_path": ...}`` for ``adb``); ``protocol_kwargs`` build the
    :class:`~latency_models.protocol.Protocol`.
    """
    shape = _check_shape(input_shape)
    check_threads(threads)
    protocol = Protocol.from_kwargs(**protocol_kwargs)
    engine = resolve_backend(backend, **dict(backend_options or {}))
    host = engine.host()
    was_training = module.training
    module.eval()
    try:
        timings = engine.run(module, shape, threads, protocol)
    finally:
        module.train(was_training)
    stats = timings.summary()
    return Measurement(
        median_ms=stats["median_ms"],
        iqr_ms=stats["iqr_ms"],
        p10_ms=stats["p10_ms"],
        p90_ms=stats["p90_ms"],
        n_repeats=len(timings.times_ms),
        times_ms=timings.times_ms,
        backend=engine.name,
        threads=threads,
        input_shape=shape,
        host=host,
        stable=timings.stable,
        stop_reason=timings.stop_reason,
        protocol=protocol.to_dict(),
        extra=engine.extra(),
    )
