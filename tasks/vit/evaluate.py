"""Accuracy, ONNX and TFLite export of (pruned) ViTs."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spaces.atomic import atomic_path
from tasks.litert import write_tflite
from tasks.vit.data import Data, iter_batches
from tasks.vit.errors import TokenPruneError


@torch.no_grad()
def evaluate_top1(model: nn.Module, data: Data, batch_size: int = 100) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (eval mode, inference path) over ``data``."""
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        for images, labels in iter_batches(data, batch_size):
            correct += int((model(images).argmax(dim=1) == labels).sum())
            total += int(labels.numel())
    finally:
        model.train(was_training)
    if total == 0:
        raise TokenPruneError("evaluation data is empty")
    return correct / total


def export_onnx(model: nn.Module, path: str | Path, input_shape: Sequence[int], opset: int = 17) -> Path:
    """Export the inference (top-k) path of ``model`` for a fixed ``input_shape`` (B, C, H, W).

    The batch size is fixed: kept-token counts follow from the token count, so the graph is
    static. Input name ``images``, output ``logits``. Returns ``path``.
    """
    if len(input_shape) != 4:
        raise TokenPruneError(f"input_shape must be (B, C, H, W), got {tuple(input_shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    p = next(model.parameters())
    dummy = torch.zeros(*input_shape, dtype=p.dtype, device=p.device)
    try:
        with warnings.catch_warnings():
            # Token counts are read from tensor shapes; the tracer warns that they become
            # constants, which is exactly right for the fixed input_shape of this export.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            with atomic_path(path) as tmp:
                torch.onnx.export(model, (dummy,), str(tmp), input_names=["images"], output_names=["logits"],
                                  opset_version=opset, dynamo=False)
    finally:
        model.train(was_training)
    return path


def run_onnx(path: str | Path, images: torch.Tensor | np.ndarray, threads: int = 2) -> np.ndarray:
    """Logits from an exported model in onnxruntime (CPU), for checking against PyTorch."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    return session.run(["logits"], {"images": array.astype(np.float32)})[0]


def export_tflite(model: nn.Module, path: str | Path, input_shape: Sequence[int], precision: str = "fp32",
                  calibration: Callable[[int], Iterable[torch.Tensor]] | None = None, candidates: int = 1,
                  held_out: Sequence[torch.Tensor] = (), record: dict[str, Any] | None = None,
                  int8: str = "dynamic") -> Path:
    """Export the inference path of ``model`` as a TFLite file for a fixed ``input_shape`` (B, C, H,
    W), at ``precision`` (``tasks.litert.PRECISIONS``). INT8 is ``dynamic`` by default (int8
    weights, activations quantised at run time): static int8 activations picked the PyTorch
    model's top class on 44-51 % of the demo's held-out images, dynamic on 99.7 %. For ``static``,
    ``calibration(k)`` yields image batches of that shape, sample ``k``; ``candidates``,
    ``held_out``, ``record``: :func:`tasks.litert.write_tflite`. Tokens are selected without
    top-k (LiteRT has no sort): the same tokens, by comparisons and a one-hot matmul. Returns ``path``."""
    if len(input_shape) != 4:
        raise TokenPruneError(f"input_shape must be (B, C, H, W), got {tuple(input_shape)}")
    net = copy.deepcopy(model).eval()
    if hasattr(net, "sort_free"):
        net.sort_free = True
    p = next(net.parameters())
    sample = torch.zeros(*input_shape, dtype=p.dtype, device=p.device)
    return write_tflite(net, path, sample, precision, calibration, None, candidates, held_out, record, int8)
