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
from latency_models.interleave import interleaved_calls
from search.console import say
from search.settings import ExportSettings
from tasks.litert import FILE_NAMES as TFLITE_FILES
from tasks.sr.evaluate import evaluate_sets
from tasks.sr.export import OnnxModule, add_onnx_metadata

TIMING_ROUNDS = 5  # interleaved rounds of the exported files' host timing


def export_all(model: torch.nn.Module, arch: Any, export: ExportSettings, evals: dict[str, list],
               calibration_lr: Callable[[int], torch.Tensor], lr_hw: tuple[int, int], threads: int,
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
        modules["model.onnx"] = OnnxModule(run_dir / "model.onnx", threads)
        files["model.onnx"] = {"format": "onnx", "precision": "fp32", "max_abs_diff_vs_pytorch": diff}
    if "tflite" in export.formats:
        from tasks.sr.tflite import TFLiteModule, export_tflite

        def calibration() -> list[torch.Tensor]:
            return [x.unsqueeze(0) for x in calibration_lr(export.calibration_patches)]

        for precision in export.precision:
            name = TFLITE_FILES[precision]
            export_tflite(model, run_dir / name, precision, calibration=calibration)
            modules[name] = TFLiteModule(run_dir / name, threads)
            files[name] = {"format": "tflite", "precision": precision}
    scores = {"pytorch": pytorch_scores or evaluate_sets(model, evals, arch.scale)}
    for name, module in modules.items():
        scores[name] = evaluate_sets(module, evals, arch.scale)
        against = "model.onnx" if name != "model.onnx" and "model.onnx" in scores else "pytorch"
        files[name].update(bytes=(run_dir / name).stat().st_size, eval=scores[name], psnr_reference=against,
                           psnr_diff_db={s: scores[name][s]["psnr"] - scores[against][s]["psnr"] for s in evals})
    if timed:
        _time(modules, files, lr_hw, threads)
    for name, row in files.items():
        timing = f"; {row['latency_ms_here']:.2f} ms here ({row['latency_runtime']})" if timed else ""
        say(f"export: {label}{name} ({row['bytes'] / 1e3:.0f} kB) PSNR vs {row['psnr_reference']} "
            + ", ".join(f"{s} {d:+.3f} dB" for s, d in row["psnr_diff_db"].items()) + timing)
    return files


def onnx_metadata(arch: Any) -> dict[str, str]:
    from importlib.metadata import version

    return {"hwnas.scale": str(arch.scale), "hwnas.arch": json.dumps(arch.to_dict()),
            "hwnas.input": "lr: (1, 3, H, W) RGB float32 in [0, 1]; sr: (1, 3, sH, sW), same range",
            "hwnas.producer": f"hwnas {version('hwnas')}, torch {torch.__version__}"}


def _time(modules: dict[str, torch.nn.Module], files: dict[str, dict[str, Any]], lr_hw: tuple[int, int],
          threads: int) -> None:
    """Each file in its own runtime on one LR frame of the device, interleaved rounds, least
    round median; measured on this host, not on the device."""
    import numpy as np

    frame = np.random.default_rng(0).random((1, 3, *lr_hw), dtype=np.float32)
    names = list(modules)
    calls = [lambda m=modules[n]: m.invoke(frame) for n in names]
    rows = interleaved_calls(calls, rounds=TIMING_ROUNDS, runs=3, warmup=2)
    for name, per_round in zip(names, rows):
        runtime = "onnxruntime CPU" if name.endswith(".onnx") else "LiteRT interpreter (XNNPACK)"
        files[name].update(latency_ms_here=min(per_round), latency_spread=max(per_round) / min(per_round),
                           latency_runtime=f"{runtime}, {threads} thread(s), input {(1, 3, *lr_hw)}, "
                                           f"measured on this host ({TIMING_ROUNDS} interleaved rounds)")
