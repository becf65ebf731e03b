"""LiteRT (TFLite) files from PyTorch modules, shared by the tasks: conversion (litert-torch),
float16 weights, INT8 post-training quantisation (ai-edge-quantizer, static, calibrated), and
:class:`TFLiteModule`, which runs a file in the LiteRT interpreter like the module it came from.

Needs the ``tflite`` extra (``pip install -e '.[tflite]'``: litert-torch, ai-edge-litert,
ai-edge-quantizer). INT8 files quantise weights and activations, their input and output too
(int8 with the scale and zero point the file records, as integer-only accelerators want);
:class:`TFLiteModule` converts at the boundary, so one loader reads every precision.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spaces.atomic import atomic_path

PRECISIONS = ("fp32", "fp16", "int8")
FILE_NAMES = {"fp32": "model.tflite", "fp16": "model_fp16.tflite", "int8": "model_int8.tflite"}
SIGNATURE = "serving_default"  # the one signature litert-torch writes
EXTRA_MODULES = ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")  # the tflite extra


class TFLiteUnavailable(ImportError):
    """The ``tflite`` extra is not installed."""


def missing_modules() -> list[str]:
    """The tflite extra's modules not installed here (found without importing them: they are heavy)."""
    return [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]


def require() -> None:
    missing = missing_modules()
    if missing:
        raise TFLiteUnavailable(f"TFLite export needs the tflite extra ({', '.join(missing)} missing): "
                                "pip install -e '.[tflite]'")


def write_tflite(model: nn.Module, path: str | Path, sample: torch.Tensor, precision: str = "fp32",
                 calibration: Callable[[int], Iterable[torch.Tensor]] | None = None,
                 dynamic_shapes: Any = None, candidates: int = 1, held_out: Sequence[torch.Tensor] = (),
                 record: dict[str, Any] | None = None, int8: str = "static") -> Path:
    """Write ``model`` (traced on ``sample``) as a TFLite flatbuffer at ``precision``, atomically.
    ``dynamic_shapes`` is ``torch.export``'s (None: every size as in ``sample``).

    INT8 ``static``: weights and activations int8 (integer-only accelerators), ranges calibrated;
    ``dynamic``: int8 weights, activations quantised at run time (no calibration; the form
    transformers keep their accuracy in). Static: ``calibration(k)`` yields the inputs whose
    activation ranges candidate ``k`` takes. With
    ``candidates`` > 1, each is quantised and the one whose outputs on ``held_out`` inputs come
    closest to ``model``'s (signal-to-noise ratio) is written: min/max ranges depend on which
    extreme values a sample happens to hold, and on one 40-step SR network five samples of 256
    patches gave -0.07 to -0.35 dB on Set5, ranked exactly as their held-out ratio ranked them.
    ``record`` (a dict) receives each candidate's ratio and the one chosen.
    """
    require()
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        data = _convert(model, sample, dynamic_shapes, quant_recipes.full_fp16_recipe())
    else:
        data = _convert(model, sample, dynamic_shapes)
        if precision == "int8" and int8 == "dynamic":
            data = _dynamic_int8(data)
        elif precision == "int8":
            if calibration is None:
                raise ValueError("INT8 export needs calibration(k): inputs for the activation ranges")
            data = _best_int8(model, data, calibration, candidates, held_out, record)
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path


def _best_int8(model: nn.Module, fp32: bytes, calibration: Callable[[int], Iterable[torch.Tensor]],
               candidates: int, held_out: Sequence[torch.Tensor], record: dict[str, Any] | None) -> bytes:
    if candidates > 1 and not held_out:
        raise ValueError("choosing among INT8 calibrations needs held_out inputs")
    files = [_int8(fp32, calibration(k)) for k in range(candidates)]
    snr_db = [output_snr_db(model, data, held_out) for data in files] if candidates > 1 else []
    best = int(np.argmax(snr_db)) if snr_db else 0
    if record is not None:
        record.update(candidates=candidates, held_out_inputs=len(held_out), chosen=best,
                      held_out_snr_db=[round(v, 3) for v in snr_db])
    return files[best]


def output_snr_db(model: nn.Module, flatbuffer: bytes, inputs: Sequence[torch.Tensor]) -> float:
    """How close a file's outputs come to ``model``'s on ``inputs``: 10 log10 of the reference's
    energy over the difference's, in dB (all inputs pooled)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(flatbuffer)
        runner = TFLiteModule(path)
        signal = noise = 0.0
        with torch.inference_mode():
            for x in inputs:
                want, got = model(x), runner(x)
                signal += float((want ** 2).sum())
                noise += float(((got - want) ** 2).sum())
    return 10.0 * float(np.log10(signal / max(noise, 1e-30)))


def _convert(model: nn.Module, sample: torch.Tensor, dynamic_shapes: Any, quant_config: object | None = None) -> bytes:
    import litert_torch

    edge = litert_torch.convert(model.eval(), (sample,), dynamic_shapes=dynamic_shapes, quant_config=quant_config)
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
            raise ValueError("INT8 export needs calibration inputs; none were given")
        stats = quantizer.calibrate({SIGNATURE: samples})
        return bytes(quantizer.quantize(stats).quantized_model)


def _dynamic_int8(fp32: bytes) -> bytes:
    from ai_edge_quantizer import Quantizer, recipe

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32.tflite"
        src.write_bytes(fp32)
        quantizer = Quantizer(str(src))
        quantizer.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        return bytes(quantizer.quantize().quantized_model)


def _input_name(flatbuffer: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner()
    return next(iter(runner.get_input_details()))


class TFLiteModule(nn.Module):
    """A TFLite file run by the LiteRT interpreter, callable like the PyTorch model it came from
    (one float32 tensor in, one out; any size the file admits): for scoring an export with the
    same code as the model."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__()
        require()
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

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """float32 in, float32 out, whatever the file's own input and output types."""
        self.prepare(tuple(x.shape))
        self.interpreter.set_tensor(self._input["index"], _to_file(x, self._input))
        self.interpreter.invoke()
        return _from_file(self.interpreter.get_tensor(self._output["index"]), self._output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.invoke(x.detach().cpu().numpy().astype(np.float32)).copy())


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
