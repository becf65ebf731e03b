"""TFLite (LiteRT) export of SR models: float32, float16 weights, or INT8 (post-training, calibrated
on training patches), through :mod:`tasks.litert`. Files take ``lr`` ``(1, 3, H, W)`` RGB float32
in [0, 1] with H and W dynamic, as the ONNX export does.

PixelShuffle is exported as the transposed convolution it equals (stride ``r``, one-hot
weights): litert-torch cannot lower a pixel shuffle over dynamic sizes, and the transposed
convolution gives the same numbers (checked at export) and is a native op of every LiteRT delegate.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tasks.litert import PRECISIONS, TFLiteModule, TFLiteUnavailable, missing_modules, write_tflite

__all__ = ["PRECISIONS", "TFLiteModule", "TFLiteUnavailable", "export_tflite", "exportable", "missing_modules",
           "shuffle_as_conv"]

MAX_SIDE_PX = 4096  # the largest LR side the dynamic export admits


def shuffle_as_conv(shuffle: nn.PixelShuffle, in_channels: int) -> nn.ConvTranspose2d:
    """A transposed convolution that computes exactly what ``shuffle`` does on ``in_channels``."""
    r = shuffle.upscale_factor
    out = in_channels // (r * r)
    conv = nn.ConvTranspose2d(in_channels, out, r, stride=r, bias=False)
    weight = torch.zeros(in_channels, out, r, r)
    for c in range(out):
        for i in range(r):
            for j in range(r):
                weight[c * r * r + i * r + j, c, i, j] = 1.0
    conv.weight.data.copy_(weight)
    return conv


def exportable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every PixelShuffle replaced by :func:`shuffle_as_conv` (channel
    counts read from the convolution feeding it, the model's ``tail``)."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.PixelShuffle):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            channels = 3 * module.upscale_factor ** 2
            setattr(parent, name.rpartition(".")[2], shuffle_as_conv(module, channels))
    return model


def export_tflite(model: nn.Module, path: str | Path, precision: str = "fp32",
                  calibration: Callable[[int], Iterable[torch.Tensor]] | None = None,
                  sample_hw: tuple[int, int] = (64, 64), candidates: int = 1,
                  held_out: Sequence[torch.Tensor] = (), record: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as a TFLite flatbuffer at ``precision`` (atomically), H and W dynamic.
    ``calibration(k)`` yields LR batches ``(1, 3, h, w)`` (training patches, sample ``k``) for INT8's
    activation ranges; ``candidates``, ``held_out``, ``record``: :func:`tasks.litert.write_tflite`."""
    from torch.export import Dim

    sample = torch.rand(1, 3, *sample_hw, generator=torch.Generator().manual_seed(0))
    dims = ({2: Dim("height", min=4, max=MAX_SIDE_PX), 3: Dim("width", min=4, max=MAX_SIDE_PX)},)
    return write_tflite(exportable(model), path, sample, precision, calibration, dims, candidates, held_out, record)
