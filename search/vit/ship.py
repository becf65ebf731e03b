"""The files a found ViT ships as: ``model.onnx`` always (checked against PyTorch image by image)
and, with ``tflite`` in ``export.formats``, the TFLite files at each of ``export.precision``.
Every file is scored on the held-out test images in its own runtime (top-1, and how often its top
class is PyTorch's); the final timing (:mod:`search.vit.finish`) times each in that runtime on this
host, in the same interleaved rounds as the models: figures measured here, not on the device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tasks.vit as vit
from latency_models.backends.onnxruntime_cpu import session_options
from search.console import say
from search.errors import UserError
from search.vit.prepare import ViTSetup
from search.vit.task import ViTData
from tasks.litert import FILE_NAMES, TFLiteModule
from tasks.onnx_file import OnnxModule, add_onnx_metadata


def export_files(setup: ViTSetup, student: torch.nn.Module, arch: Any
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, torch.nn.Module]]:
    """Write and score every requested file: ``{file: {format, precision, bytes, test_top1,
    top1_diff_vs_pytorch, agreement_with_pytorch, ...}}`` and each file's module in its own
    runtime (``invoke(array)``), which the final timing times beside the models
    (:func:`search.file_timing.record_file_timings` adds ``latency_ms_here``)."""
    run_dir, threads, export = setup.ctx.run_dir, setup.ctx.device.measure_threads, setup.ctx.export
    check = export_checked(student, run_dir / "model.onnx", setup.shape, setup.data)
    add_onnx_metadata(run_dir / "model.onnx", onnx_metadata(arch, setup.shape))
    files: dict[str, dict[str, Any]] = {"model.onnx": {"format": "onnx", "precision": "fp32", "check": check}}
    modules: dict[str, torch.nn.Module] = {"model.onnx": OnnxModule(run_dir / "model.onnx", options=session_options(threads))}
    if "tflite" in export.formats:
        _tflite(setup, student, modules, files)
    reference = _predictions(student.eval(), setup.data, setup.shape[0])
    for name, module in modules.items():
        files[name].update(bytes=(run_dir / name).stat().st_size,
                           **_scored(_predictions(module, setup.data, setup.shape[0]), reference))
    return files, modules


def say_files(files: dict[str, dict[str, Any]]) -> None:
    """One console line per file: size, top-1 in its runtime, agreement, latency here."""
    for name, row in files.items():
        say(f"export: {name} ({row['bytes'] / 1e3:.0f} kB) test top-1 {row['test_top1']:.2f}% "
            f"({row['top1_diff_vs_pytorch']:+.2f} vs PyTorch, same top class on {row['agreement_with_pytorch']:.1%}); "
            f"{row['latency_ms_here']:.2f} ms here ({row['latency_runtime']})")


def onnx_metadata(arch: Any, shape: tuple[int, ...]) -> dict[str, str]:
    from importlib.metadata import version

    return {"hwnas.arch": json.dumps(arch.to_dict()),
            "hwnas.input": f"images: {tuple(shape)} float32, as the model's training data (fixed batch); "
                           "logits: (batch, classes)",
            "hwnas.producer": f"hwnas {version('hwnas')}, torch {torch.__version__}, timm {version('timm')}"}


def _tflite(setup: ViTSetup, student: torch.nn.Module, modules: dict[str, torch.nn.Module],
            files: dict[str, dict[str, Any]]) -> None:
    """The TFLite file of each precision (INT8: int8 weights, activations quantised at run time,
    ``tasks.vit.export_tflite``)."""
    for precision in setup.ctx.export.precision:
        name = FILE_NAMES[precision]
        vit.export_tflite(student, setup.ctx.run_dir / name, setup.shape, precision)
        modules[name] = TFLiteModule(setup.ctx.run_dir / name, setup.ctx.device.measure_threads)
        files[name] = {"format": "tflite", "precision": precision,
                       **({"int8": "weights int8, activations quantised at run time"} if precision == "int8" else {})}


def export_checked(model: torch.nn.Module, path: Path, shape: tuple[int, ...], data: ViTData) -> dict[str, Any]:
    """Export to ONNX and compare with PyTorch on a batch of held-out images (logits, per image).

    Top-k token selection is a hard decision: where two tokens score within float rounding of
    each other, onnxruntime and PyTorch may keep different ones and that image's logits move by
    ~1e-3 (seen once in a smoke run with a near-untrained selector). One such image in a batch is
    reported; more than that fails the export.
    """
    images = next(iter(vit.data.iter_batches(data.test, shape[0])))[0][: shape[0]]
    vit.export_onnx(model, path, shape)
    with torch.inference_mode():
        expected = model.eval()(images).numpy()
    got = vit.run_onnx(path, images)
    per_image = np.abs(got - expected).reshape(len(images), -1).max(axis=1)
    off = int((per_image > 1e-3).sum())
    if off > 1:
        raise UserError(f"ONNX export of the pruned ViT differs from PyTorch on {off} of {len(images)} images "
                        f"(max {per_image.max():.2e})")
    return {"max_abs_diff": float(per_image.max()), "median_abs_diff": float(np.median(per_image)),
            "images": len(images), "images_over_1e-3": off}


@torch.inference_mode()
def _predictions(model: torch.nn.Module, data: ViTData, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Top classes and labels over the test images, in batches of the size the files were made
    for (the last one padded with copies of its last image)."""
    top, labels = [], []
    for images, y in vit.data.iter_batches(data.test, batch):
        padded = torch.cat([images, images[-1:].expand(batch - len(images), *images.shape[1:])])
        top.append(model(padded)[: len(images)].argmax(dim=1).numpy())
        labels.append(y.numpy())
    return np.concatenate(top), np.concatenate(labels)


def _scored(got: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    top1, ref_top1 = 100.0 * float((got[0] == got[1]).mean()), 100.0 * float((reference[0] == reference[1]).mean())
    return {"test_top1": top1, "top1_diff_vs_pytorch": top1 - ref_top1,
            "agreement_with_pytorch": float((got[0] == reference[0]).mean())}
