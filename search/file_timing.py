"""Exported files timed on this host, each in its own runtime, interleaved: what both tasks' export
reports as ``latency_ms_here`` (measured here, not on the device)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from latency_models.interleave import interleaved_calls

TIMING_ROUNDS = 5  # interleaved rounds of the exported files' host timing


def time_files(modules: dict[str, torch.nn.Module], files: dict[str, dict[str, Any]], shape: tuple[int, ...],
               threads: int) -> None:
    """Each file's module (``invoke(array)``) on one input of ``shape``: interleaved rounds, least
    round median and the round spread, written into ``files[name]``."""
    rows = interleaved_calls(file_calls(modules, shape), rounds=TIMING_ROUNDS, runs=3, warmup=2)
    record_file_timings(files, dict(zip(modules, rows)), shape, threads)


def file_calls(modules: dict[str, torch.nn.Module], shape: tuple[int, ...]) -> list[Callable[[], object]]:
    """One ready call per file: its module's ``invoke`` on a fixed random input of ``shape``."""
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    return [lambda m=m: m.invoke(x) for m in modules.values()]


def record_file_timings(files: dict[str, dict[str, Any]], per_round: dict[str, Sequence[float]],
                        shape: tuple[int, ...], threads: int) -> None:
    """Write each file's least round median, spread and runtime into ``files[name]``."""
    for name, rows in per_round.items():
        runtime = "onnxruntime CPU" if name.endswith(".onnx") else "LiteRT interpreter (XNNPACK)"
        files[name].update(latency_ms_here=min(rows), latency_spread=max(rows) / min(rows),
                           latency_runtime=f"{runtime}, {threads} thread(s), input {tuple(shape)}, "
                                           f"measured on this host ({len(rows)} interleaved rounds)")
