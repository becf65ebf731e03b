"""Exported files timed on this host, each in its own runtime, interleaved: what both tasks' export
reports as ``latency_ms_here`` (measured here, not on the device)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from latency_models.interleave import interleaved_calls

TIMING_ROUNDS = 5  # interleaved rounds of the exported files' host timing


def time_files(modules: dict[str, torch.nn.Module], files: dict[str, dict[str, Any]], shape: tuple[int, ...],
               threads: int) -> None:
    """Each file's module (``invoke(array)``) on one input of ``shape``: interleaved rounds, least
    round median and the round spread, written into ``files[name]``."""
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    rows = interleaved_calls([lambda m=m: m.invoke(x) for m in modules.values()],
                             rounds=TIMING_ROUNDS, runs=3, warmup=2)
    for name, per_round in zip(modules, rows):
        runtime = "onnxruntime CPU" if name.endswith(".onnx") else "LiteRT interpreter (XNNPACK)"
        files[name].update(latency_ms_here=min(per_round), latency_spread=max(per_round) / min(per_round),
                           latency_runtime=f"{runtime}, {threads} thread(s), input {tuple(shape)}, "
                                           f"measured on this host ({TIMING_ROUNDS} interleaved rounds)")
