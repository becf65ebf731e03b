"""Export a module to an ONNX file with the TorchScript exporter (``dynamo=False``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from latency_models.backends.base import Shape, example_input

ONNX_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_onnx(module: torch.nn.Module, input_shape: Shape, path: Path, opset: int = ONNX_OPSET) -> Path:
    """Write ``module`` (in eval mode) as ONNX with static shapes; input named ``input``."""
    x = example_input(input_shape)
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation on every call; the dynamo
        # exporter needs onnxscript, which is not a dependency.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        torch.onnx.export(
            module, (x,), str(path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        )
    return Path(path)
