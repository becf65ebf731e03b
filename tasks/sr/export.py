"""ONNX export (checked against onnxruntime) and weight files for SR models."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spaces.atomic import atomic_path
from tasks.onnx_file import OnnxModule, add_onnx_metadata
from tasks.sr.models import build_model

__all__ = ["ExportError", "OnnxModule", "add_onnx_metadata", "export_onnx", "load_weights", "save_weights"]

WEIGHTS_FORMAT = "hwnas.sr.weights"
WEIGHTS_VERSION = 1
ONNX_OPSET = 17


class ExportError(RuntimeError):
    """The exported ONNX graph does not reproduce the PyTorch model."""


def export_onnx(model: nn.Module, path: str | Path, sample_hw: tuple[int, int] = (64, 64),
                check: bool = True, atol: float = 1e-4) -> float:
    """Write ``model`` as ONNX: input ``lr`` ``(1, 3, H, W)``, output ``sr`` ``(1, 3, sH, sW)``,
    RGB float32 in [0, 1], height and width dynamic, opset 17 (TorchScript exporter).

    With ``check``, onnxruntime runs an input of a size other than ``sample_hw`` and the result is
    compared with PyTorch; returns the max abs difference (raises :class:`ExportError` above
    ``atol``). Without ``check``, returns nan.
    """
    path = Path(path)
    model = copy.deepcopy(model).eval()  # leave the caller's model (and its mode) untouched
    sample = torch.rand(1, 3, *sample_hw, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose (plain opset-17 graphs that phone
        # runtimes load); its deprecation notice is not news to the caller.
        warnings.simplefilter("ignore", DeprecationWarning)
        with atomic_path(path) as tmp:
            torch.onnx.export(
                model, (sample,), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
                input_names=["lr"], output_names=["sr"],
                dynamic_axes={"lr": {2: "height", 3: "width"}, "sr": {2: "out_height", 3: "out_width"}},
            )
    if not check:
        return math.nan
    import onnxruntime as ort  # heavy; only needed to check

    check_hw = (sample_hw[0] // 2 + 5, sample_hw[1] + 7)  # odd-ish and different from the trace size
    x = torch.rand(1, 3, *check_hw, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["sr"], {"lr": x.numpy()})[0]
    if got.shape != expected.shape:
        raise ExportError(f"{path}: onnxruntime output {got.shape} != PyTorch {expected.shape} at {check_hw}")
    diff = float(np.abs(got - expected).max())
    if not diff <= atol:
        raise ExportError(f"{path}: onnxruntime differs from PyTorch by {diff:.3g} (> {atol}) at {check_hw}")
    return diff


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write the model's state dict with its architecture description (no pickled objects)."""
    arch = getattr(model, "arch", None)
    if arch is None:
        raise ValueError("model has no .arch; build it with tasks.sr.build_model(arch)")
    doc: dict[str, Any] = {
        "format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION,
        "arch": arch.to_dict(), "state_dict": model.state_dict(),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(doc, tmp)
    return path


def load_weights(arch: Any, path: str | Path) -> nn.Module:
    """Build ``arch`` and load weights written by :func:`save_weights` (``weights_only`` load).

    Raises ValueError if the file is not a weights file or holds another architecture.
    """
    path = Path(path)
    doc = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{path} is not an SR weights file written by tasks.sr.save_weights")
    if doc.get("version", 0) > WEIGHTS_VERSION:
        raise ValueError(f"{path}: weights format version {doc['version']} is newer than this package reads")
    if doc["arch"] != arch.to_dict():
        raise ValueError(f"{path} holds weights of {doc['arch']}, not of {arch.to_dict()}")
    model = build_model(arch)
    model.load_state_dict(doc["state_dict"])
    return model
