"""TFLite (LiteRT) export of SR models: float32, float16 weights, or INT8 (post-training, calibrated).

Needs the ``tflite`` extra (``pip install -e '.[tflite]'``: litert-torch, ai-edge-litert,
ai-edge-quantizer). Files take ``lr`` ``(1, 3, H, W)`` RGB float32 in [0, 1] with H and W dynamic,
as the ONNX export does. INT8 files quantise weights and activations, their input and output
too (int8 with the scale and zero point the file records, as integer-only accelerators want);
:class:`TFLiteModule` converts at the boundary, so one loader reads every precision.

PixelShuffle is exported as the transposed convolution it equals (stride ``r``, one-hot
weights): litert-torch cannot lower a pixel shuffle over dynamic sizes, and the transposed
convolution gives the same numbers (checked at export) and is a native op of every LiteRT delegate.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spaces.atomic import atomic_path

PRECISIONS = ("fp32", "fp16", "int8")
MAX_SIDE_PX = 4096  # the largest LR side the dynamic export admits
SIGNATURE = "serving_default"  # the one signature litert-torch writes


class TFLiteUnavailable(ImportError):
    """The ``tflite`` extra is not installed."""


EXTRA_MODULES = ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")  # the tflite extra


def missing_modules() -> list[str]:
    """The tflite extra's modules not installed here (found without importing them: they are heavy)."""
    import importlib.util

    return [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]


def _require() -> None:
    missing = missing_modules()
    if missing:
        raise TFLiteUnavailable(f"TFLite export needs the tflite extra ({', '.join(missing)} missing): "
                                "pip install -e '.[tflite]'")


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


def _convert(model: nn.Module, sample: torch.Tensor, quant_config: object | None = None) -> bytes:
    import litert_torch
    from torch.export import Dim

    dims = ({2: Dim("height", min=4, max=MAX_SIDE_PX), 3: Dim("width", min=4, max=MAX_SIDE_PX)},)
    edge = litert_torch.convert(model, (sample,), dynamic_shapes=dims, quant_config=quant_config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        edge.export(str(path))
        return path.read_bytes()


def _int8(fp32: bytes, calibration: Iterable[torch.Tensor]) -> bytes:
    from ai_edge_quantizer import Quantizer, recipe

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32.tflite"
        src.write_bytes(fp32)
        quantizer = Quantizer(str(src))
        quantizer.load_quantization_recipe(recipe.static_wi8_ai8())
        name = _input_name(fp32)
        samples = [{name: x.numpy().astype(np.float32)} for x in calibration]
        if not samples:
            raise ValueError("INT8 export needs calibration patches; none were given")
        stats = quantizer.calibrate({SIGNATURE: samples})
        return bytes(quantizer.quantize(stats).quantized_model)


def _input_name(flatbuffer: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner()
    return next(iter(runner.get_input_details()))


def export_tflite(model: nn.Module, path: str | Path, precision: str = "fp32",
                  calibration: Callable[[], Iterable[torch.Tensor]] | None = None,
                  sample_hw: tuple[int, int] = (64, 64)) -> Path:
    """Write ``model`` as a TFLite flatbuffer at ``precision`` (atomically). ``calibration()``
    yields LR batches ``(1, 3, h, w)`` (training patches) for INT8's activation ranges."""
    _require()
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    net = exportable(model)
    sample = torch.rand(1, 3, *sample_hw, generator=torch.Generator().manual_seed(0))
    if precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        data = _convert(net, sample, quant_recipes.full_fp16_recipe())
    else:
        data = _convert(net, sample)
        if precision == "int8":
            if calibration is None:
                raise ValueError("INT8 export needs calibration(): training patches for the activation ranges")
            data = _int8(data, calibration())
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path


class TFLiteModule(nn.Module):
    """A TFLite file run by the LiteRT interpreter, callable like the PyTorch model (``lr`` in,
    ``sr`` out, any size): for scoring an export with the same code as the model."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__()
        _require()
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._shape: tuple[int, ...] | None = None

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Size the interpreter for inputs of ``shape`` (a no-op when it already is)."""
        if shape != self._shape:
            self.interpreter.resize_tensor_input(self._input["index"], list(shape))
            self.interpreter.allocate_tensors()
            self._shape = shape

    def invoke(self, lr: np.ndarray) -> np.ndarray:
        """float32 in, float32 out, whatever the file's own input and output types."""
        self.prepare(tuple(lr.shape))
        self.interpreter.set_tensor(self._input["index"], _to_file(lr, self._input))
        self.interpreter.invoke()
        return _from_file(self.interpreter.get_tensor(self._output["index"]), self._output)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.invoke(lr.detach().cpu().numpy().astype(np.float32)).copy())


def _to_file(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def _from_file(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
