"""``onnxruntime-cpu``: the module exported to ONNX (temp file) and run by onnxruntime's CPU
execution provider with ``intra_op_num_threads=threads`` and sequential execution."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from latency_models.backends.base import LocalBackend, SampleFn, Shape, example_input, register_backend
from latency_models.backends.onnx_export import INPUT_NAME, export_onnx

LEVELS = ("disable", "basic", "extended", "all")


def session_options(threads: int, optimization: str = "all") -> Any:
    """``onnxruntime.SessionOptions`` for timing: ``threads`` intra-op threads, sequential execution,
    graph optimisation ``optimization`` (one of :data:`LEVELS`), and idle workers that sleep
    instead of spin-waiting. A spinning session's workers keep a core busy after each run, so
    sessions timed side by side slow each other: measured here on a demo ViT at 2 threads, two
    spinning sessions interleaved ran 19.5 ms each against 10.9 ms alone; without spinning 12.0
    interleaved and 11.8 alone (a single spinning session is ~8% faster than these figures)."""
    import onnxruntime as ort

    levels = dict(zip(LEVELS, (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                               ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)))
    if optimization not in levels:
        raise ValueError(f"optimization must be one of {sorted(levels)}, got {optimization!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[optimization]
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


@register_backend
class OnnxRuntimeCPUBackend(LocalBackend):
    """Times ``session.run`` on a float32 numpy input (the same values as the torch backends).

    ``graph_optimization_level`` is onnxruntime's full optimisation by default, as deployed;
    workers do not spin (:func:`session_options`).
    """

    name = "onnxruntime-cpu"

    def __init__(self, optimization: str = "all") -> None:
        self.optimization = optimization

    @contextmanager
    def session(self, module: torch.nn.Module, input_shape: Shape, threads: int) -> Iterator[SampleFn]:
        import onnxruntime as ort

        options = session_options(threads, self.optimization)
        with tempfile.TemporaryDirectory(prefix="hwnas-ort-") as tmp:
            path = export_onnx(module, input_shape, Path(tmp) / "model.onnx")
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {INPUT_NAME: example_input(input_shape).numpy()}

            def sample_ms() -> float:
                start = time.perf_counter_ns()
                session.run(None, feed)
                return (time.perf_counter_ns() - start) / 1e6

            yield sample_ms
