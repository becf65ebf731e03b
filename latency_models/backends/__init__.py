"""Measurement backends, registered by name.

=================== =========================================================================
``torch-cpu``       eager PyTorch on this CPU, ``torch.set_num_threads(threads)``
``torch-cuda``      eager PyTorch on a CUDA device, timed with CUDA events
``onnxruntime-cpu`` the module exported to ONNX, run by onnxruntime's CPU provider
``adb``             the module exported to ONNX, run by a benchmark binary on an Android phone
=================== =========================================================================

``get_backend(name, **options)`` builds one; ``register_backend`` adds a new one.
"""

from latency_models.backends.adb import AdbBackend
from latency_models.backends.base import (
    Backend,
    BackendUnavailable,
    LocalBackend,
    get_backend,
    register_backend,
    registered_backends,
)
from latency_models.backends.onnxruntime_cpu import OnnxRuntimeCPUBackend
from latency_models.backends.torch_cpu import TorchCPUBackend
from latency_models.backends.torch_cuda import TorchCUDABackend

__all__ = [
    "AdbBackend",
    "Backend",
    "BackendUnavailable",
    "LocalBackend",
    "OnnxRuntimeCPUBackend",
    "TorchCPUBackend",
    "TorchCUDABackend",
    "get_backend",
    "register_backend",
    "registered_backends",
]
