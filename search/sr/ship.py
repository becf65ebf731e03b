"""The files a found SR network ships as (``export:``): ``model.onnx`` (with metadata) and the
TFLite files at each precision, each scored on the evaluation sets in its own runtime at export
time and timed on this host in that runtime, interleaved."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import tasks.sr as sr
from latency_models.backends.onnxruntime_cpu import session_options
from search.console import say
from search.file_timing import time_files
from search.settings import ExportSettings
from tasks.litert import FILE_NAMES as TFLITE_FILES
from tasks.sr.evaluate import evaluate_sets
from tasks.sr.export import OnnxModule, add_onnx_metadata

CALIBRATION_PATCH_HR = 96  # INT8 ranges from patches this large: smaller ones under-read them (clipping)
HELD_OUT_PATCHES = 128  # training patches on which INT8 calibration candidates are compared
HELD_OUT_SAMPLE = 10_000  # the held-out patches' sample index: no candidate draws it


def calibration_sampler(train_root: Path | tuple[Path, ...], scale: int, seed: int) -> Callable[[int, int], torch.Tensor]:
    """``lr(n, k)``: ``n`` LR patches of the training images (not the evaluation sets), sample ``k``."""
    def lr(n: int, k: int) -> torch.Tensor:
        return sr.data.TrainPatches(train_root, scale, patch_hr=CALIBRATION_PATCH_HR, seed=seed + k).batch(n)[0]

    return lr


def export_all(model: torch.nn.Module, arch: Any, export: ExportSettings, evals: dict[str, list],
               calibration_lr: Callable[[int, int], torch.Tensor], lr_hw: tuple[int, int], threads: int,
               run_dir: Path, label: str = "", timed: bool = True,
               pytorch_scores: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write every requested file; returns ``{file: {format, precision, bytes, eval, psnr_diff_db,
    latency_ms_here, ...}}``. PSNR differences: ``model.onnx`` against PyTorch, the TFLite files
    against ``model.onnx`` (against PyTorch without it)."""
    modules: dict[str, torch.nn.Module] = {}
    files: dict[str, dict[str, Any]] = {}
    if "onnx" in export.formats:
        diff = sr.export_onnx(model, run_dir / "model.onnx", check=True)
        add_onnx_metadata(run_dir / "model.onnx", onnx_metadata(arch))
        modules["model.onnx"] = OnnxModule(run_dir / "model.onnx", options=session_options(threads))
        files["model.onnx"] = {"format": "onnx", "precision": "fp32", "max_abs_diff_vs_pytorch": diff}
    if "tflite" in export.formats:
        _tflite(model, export, calibration_lr, threads, run_dir, modules, files)
    scores = {"pytorch": pytorch_scores or evaluate_sets(model, evals, arch.scale)}
    for name, module in modules.items():
        scores[name] = evaluate_sets(module, evals, arch.scale)
        against = "model.onnx" if name != "model.onnx" and "model.onnx" in scores else "pytorch"
        files[name].update(bytes=(run_dir / name).stat().st_size, eval=scores[name], psnr_reference=against,
                           psnr_diff_db={s: scores[name][s]["psnr"] - scores[against][s]["psnr"] for s in evals})
    if timed:
        time_files(modules, files, (1, 3, *lr_hw), threads)
    for name, row in files.items():
        timing = f"; {row['latency_ms_here']:.2f} ms here ({row['latency_runtime']})" if timed else ""
        say(f"export: {label}{name} ({row['bytes'] / 1e3:.0f} kB) PSNR vs {row['psnr_reference']} "
            + ", ".join(f"{s} {d:+.3f} dB" for s, d in row["psnr_diff_db"].items()) + timing)
    return files


def _tflite(model: torch.nn.Module, export: ExportSettings, calibration_lr: Callable[[int, int], torch.Tensor],
            threads: int, run_dir: Path, modules: dict[str, torch.nn.Module], files: dict[str, dict[str, Any]]) -> None:
    """The TFLite file of each precision; INT8 from the best of ``export.calibration_candidates``
    calibration samples on held-out training patches (``tasks.litert.write_tflite``)."""
    from tasks.sr.tflite import TFLiteModule, export_tflite

    def calibration(k: int) -> list[torch.Tensor]:
        return list(calibration_lr(export.calibration_patches, k).unsqueeze(1))

    held_out = list(calibration_lr(HELD_OUT_PATCHES, HELD_OUT_SAMPLE).unsqueeze(1)) \
        if export.calibration_candidates > 1 else []
    for precision in export.precision:
        name, record = TFLITE_FILES[precision], {}
        export_tflite(model, run_dir / name, precision, calibration=calibration,
                      candidates=export.calibration_candidates, held_out=held_out, record=record)
        modules[name] = TFLiteModule(run_dir / name, threads)
        files[name] = {"format": "tflite", "precision": precision, **({"calibration": record} if record else {})}


def onnx_metadata(arch: Any) -> dict[str, str]:
    from importlib.metadata import version

    return {"hwnas.scale": str(arch.scale), "hwnas.arch": json.dumps(arch.to_dict()),
            "hwnas.input": "lr: (1, 3, H, W) RGB float32 in [0, 1]; sr: (1, 3, sH, sW), same range",
            "hwnas.producer": f"hwnas {version('hwnas')}, torch {torch.__version__}"}
