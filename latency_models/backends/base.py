"""The backend seam: one small abstract class, one registry.

Call order (by :func:`latency_models.measure.measure`): ``backend.host()`` once, then
``backend.run(module, input_shape, threads, protocol)``, which returns
:class:`~latency_models.protocol.Timings`. The module arrives already in eval mode.

Local backends subclass :class:`LocalBackend` and only write ``session()``: a context manager
that prepares the model on the engine (threads set, export done) and yields a function timing
one inference in ms; it restores whatever it changed on exit.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeVar

import torch

from latency_models.heap import keep_heap
from latency_models.hostinfo import host_info
from latency_models.protocol import Protocol, Timings, run_protocol

Shape = tuple[int, ...]
SampleFn = Callable[[], float]


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (no CUDA device, no adb, no phone attached, ...)."""


class Backend(abc.ABC):
    """Measures a ``torch.nn.Module`` on one execution engine."""

    name: ClassVar[str]

    def host(self) -> dict[str, Any]:
        """Describe the machine the timings come from (see :mod:`latency_models.hostinfo`)."""
        return host_info()

    @abc.abstractmethod
    def run(self, module: torch.nn.Module, input_shape: Shape, threads: int, protocol: Protocol) -> Timings:
        """Measure ``module`` on an input of ``input_shape`` with ``threads`` threads."""

    def extra(self) -> dict[str, Any]:
        """Backend-specific details of the last :meth:`run` (JSON-serialisable), e.g. the phone
        benchmark's own statistics. Empty by default."""
        return {}


class LocalBackend(Backend):
    """A backend running in this process: timing one inference is a plain function call. Its
    timings run with the C heap kept (:func:`latency_models.heap.keep_heap`), from :meth:`host` on."""

    def host(self) -> dict[str, Any]:
        keep_heap()
        return super().host()

    @abc.abstractmethod
    def session(
        self, module: torch.nn.Module, input_shape: Shape, threads: int
    ) -> AbstractContextManager[SampleFn]:
        """Context manager yielding ``sample_ms() -> float`` (one inference, in ms)."""

    def run(self, module: torch.nn.Module, input_shape: Shape, threads: int, protocol: Protocol) -> Timings:
        keep_heap()
        with self.session(module, input_shape, threads) as sample_ms:
            return run_protocol(sample_ms, protocol)


def example_input(input_shape: Shape, seed: int = 0) -> torch.Tensor:
    """A float32 normal tensor of ``input_shape`` from a seeded generator (not zeros: some
    kernels take shortcuts on zeros, and denormals are avoided by the normal distribution)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(input_shape), generator=generator, dtype=torch.float32)


_BACKENDS: dict[str, type[Backend]] = {}
B = TypeVar("B", bound=type[Backend])


def register_backend(cls: B) -> B:
    """Class decorator: make ``cls`` available to :func:`get_backend` under ``cls.name``."""
    if cls.name in _BACKENDS and _BACKENDS[cls.name] is not cls:
        raise ValueError(f"backend {cls.name!r} registered twice")
    _BACKENDS[cls.name] = cls
    return cls


def registered_backends() -> dict[str, type[Backend]]:
    return dict(_BACKENDS)


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend registered as ``name`` with its ``options`` (e.g. ``serial``)."""
    try:
        cls = _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(_BACKENDS)}") from None
    return cls(**options)


def check_threads(threads: int) -> int:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    return threads
