"""ONNX files whatever the task: one run by onnxruntime (CPU), callable like the PyTorch module it
came from (for scoring an export with the same code as the model), and their metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spaces.atomic import atomic_path


class OnnxModule(nn.Module):
    """The file's first input in, its first output out (float32)."""

    def __init__(self, path: str | Path, threads: int = 1, options: Any = None) -> None:
        """``options``: an ``onnxruntime.SessionOptions`` (timing passes
        ``latency_models.backends.onnxruntime_cpu.session_options``: no spin-waiting); else ``threads``."""
        super().__init__()
        import onnxruntime as ort

        if options is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name
        self._output = self.session.get_outputs()[0].name

    def invoke(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._output], {self._input: x})[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.invoke(x.detach().cpu().numpy().astype(np.float32)))


def add_onnx_metadata(path: str | Path, metadata: dict[str, str]) -> None:
    """Record ``metadata`` (scale, architecture, input range, producer) in the ONNX file's
    ``metadata_props``, rewriting it atomically."""
    import onnx

    path = Path(path)
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, {**{p.key: p.value for p in graph.metadata_props}, **metadata})
    with atomic_path(path) as tmp:
        onnx.save(graph, str(tmp))
