"""``torch-cuda``: eager PyTorch on a CUDA device, timed with CUDA events.

Each sample records a start and an end event around ``module(x)`` on the current stream and
synchronises on the end event, so the time is the GPU's, not the launch overhead's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from latency_models.backends.base import (
    BackendUnavailable,
    LocalBackend,
    SampleFn,
    Shape,
    example_input,
    register_backend,
)


def require_cuda() -> None:
    """Raise :class:`BackendUnavailable` with the reason when CUDA cannot be used."""
    if not torch.cuda.is_available():
        built = torch.version.cuda or "without CUDA"
        raise BackendUnavailable(
            "backend 'torch-cuda' needs a CUDA device, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built with CUDA {built}). Use 'torch-cpu' or "
            "'onnxruntime-cpu' here."
        )


@register_backend
class TorchCUDABackend(LocalBackend):
    """Times ``module(x)`` on ``torch_device`` (default ``cuda:0``). ``threads`` sets the host's
    intra-op threads for the session (restored afterwards); the module itself is copied to the
    GPU, so the caller's module stays where it was."""

    name = "torch-cuda"

    def __init__(self, torch_device: str = "cuda:0") -> None:
        self.torch_device = torch_device

    def host(self) -> dict:
        require_cuda()
        info = super().host()
        index = torch.device(self.torch_device).index or 0
        info["gpu_model"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
        return info

    @contextmanager
    def session(self, module: torch.nn.Module, input_shape: Shape, threads: int) -> Iterator[SampleFn]:
        require_cuda()
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            device = torch.device(self.torch_device)
            gpu_module = copy.deepcopy(module).to(device).eval()
            x = example_input(input_shape).to(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            with torch.inference_mode(), torch.cuda.device(device):

                def sample_ms() -> float:
                    start.record()
                    gpu_module(x)
                    end.record()
                    end.synchronize()
                    return float(start.elapsed_time(end))

                torch.cuda.synchronize(device)
                yield sample_ms
        finally:
            torch.set_num_threads(previous)
