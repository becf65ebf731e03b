"""``torch-cpu``: eager PyTorch on this machine's CPU with a fixed number of intra-op threads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from latency_models.backends.base import LocalBackend, SampleFn, Shape, example_input, register_backend


@contextmanager
def conv_kernels(onednn: bool | None) -> Iterator[None]:
    """Context choosing torch's CPU convolution kernels: ``True`` oneDNN (mkldnn), ``False`` torch's
    native kernels, ``None`` whatever is set. Which is faster depends on the thread count: on this
    project's 2-core VM oneDNN runs narrow SR convolutions no faster at 2 threads than at 1, the
    native kernels 1.37x faster (``benchmarks/conv_threads.py``)."""
    check_onednn(onednn)
    if onednn is None:
        yield
        return
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = onednn
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


def check_onednn(onednn: object) -> bool | None:
    if onednn is not None and not isinstance(onednn, bool):
        raise ValueError(f"onednn must be true, false or null (leave torch's setting), got {onednn!r}")
    return onednn


@register_backend
class TorchCPUBackend(LocalBackend):
    """Times ``module(x)`` with ``time.perf_counter_ns`` under ``torch.inference_mode``.

    ``torch.set_num_threads(threads)`` and the conv-kernel choice (``onednn``) hold only during the
    session; the previous values are restored on exit, also when the model raises.
    """

    name = "torch-cpu"

    def __init__(self, onednn: bool | None = None) -> None:
        self.onednn = check_onednn(onednn)

    def extra(self) -> dict[str, Any]:
        used = torch.backends.mkldnn.enabled if self.onednn is None else self.onednn
        return {"conv_kernels": "onednn" if used else "native"}

    @contextmanager
    def session(self, module: torch.nn.Module, input_shape: Shape, threads: int) -> Iterator[SampleFn]:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            x = example_input(input_shape)
            with torch.inference_mode(), conv_kernels(self.onednn):

                def sample_ms() -> float:
                    start = time.perf_counter_ns()
                    module(x)
                    return (time.perf_counter_ns() - start) / 1e6

                yield sample_ms
        finally:
            torch.set_num_threads(previous)
