"""``onnxruntime-cpu``: the module exported to ONNX (temp file) and run by onnxruntime's CPU
execution provider with ``intra_op_num_threads=threads`` and sequential execution."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from latency_models.backends.base import LocalBackend, SampleFn, Shape, example_input, register_backend
from latency_models.backends.onnx_export import INPUT_NAME, export_onnx


@register_backend
class OnnxRuntimeCPUBackend(LocalBackend):
    """Times ``session.run`` on a float32 numpy input (the same values as the torch backends).

    ``graph_optimization_level`` is onnxruntime's full optimisation by default, as deployed.
    """

    name = "onnxruntime-cpu"

    def __init__(self, optimization: str = "all") -> None:
        self.optimization = optimization

    @contextmanager
    def session(self, module: torch.nn.Module, input_shape: Shape, threads: int) -> Iterator[SampleFn]:
        import onnxruntime as ort

        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        if self.optimization not in levels:
            raise ValueError(f"optimization must be one of {sorted(levels)}, got {self.optimization!r}")
        with tempfile.TemporaryDirectory(prefix="hwnas-ort-") as tmp:
            path = export_onnx(module, input_shape, Path(tmp) / "model.onnx")
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = levels[self.optimization]
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {INPUT_NAME: example_input(input_shape).numpy()}

            def sample_ms() -> float:
                start = time.perf_counter_ns()
                session.run(None, feed)
                return (time.perf_counter_ns() - start) / 1e6

            yield sample_ms
