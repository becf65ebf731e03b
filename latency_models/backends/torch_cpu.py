"""``torch-cpu``: eager PyTorch on this machine's CPU with a fixed number of intra-op threads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from latency_models.backends.base import LocalBackend, SampleFn, Shape, example_input, register_backend


@register_backend
class TorchCPUBackend(LocalBackend):
    """Times ``module(x)`` with ``time.perf_counter_ns`` under ``torch.inference_mode``.

    ``torch.set_num_threads(threads)`` holds only during the session; the previous value is
    restored on exit, also when the model raises.
    """

    name = "torch-cpu"

    @contextmanager
    def session(self, module: torch.nn.Module, input_shape: Shape, threads: int) -> Iterator[SampleFn]:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            x = example_input(input_shape)
            with torch.inference_mode():

                def sample_ms() -> float:
                    start = time.perf_counter_ns()
                    module(x)
                    return (time.perf_counter_ns() - start) / 1e6

                yield sample_ms
        finally:
            torch.set_num_threads(previous)
