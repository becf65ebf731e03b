"""Token-pruning speedup of timm ViTs on this CPU (random init: latency does not depend on weights).

    python benchmarks/vit_speedup.py [--repeats 50] [--batch 1] [--models deit_tiny_patch16_224 ...]
    python benchmarks/vit_speedup.py --runtime onnxruntime     # the exported ONNX models in onnxruntime

Prints one row per (model, method, threads, batch): median full and pruned latency in ms and the
speedup, selectors (or EViT's class-attention scoring) included. Keep rates (0.7, 0.49, 0.343)
before blocks 3, 6, 9 (0-based) by default, as SPViT.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch

from tasks.vit import evit_baseline, patch_token_selectors
from tasks.vit.timing import SpeedRow, measure_speedup


def ort_speedup(full: torch.nn.Module, pruned: torch.nn.Module, images: torch.Tensor, threads: int,
                warmup: int, repeats: int) -> SpeedRow:
    """As :func:`measure_speedup`, for both models exported to ONNX and run in onnxruntime (CPU,
    ``threads`` intra-op threads, full graph optimisation), runs interleaved."""
    import onnxruntime as ort

    from latency_models.backends.onnx_export import export_onnx

    sessions = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate((full, pruned)):
            path = export_onnx(model.eval(), tuple(images.shape), Path(tmp) / f"m{i}.onnx")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            sessions.append(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
    feed = {sessions[0].get_inputs()[0].name: images.numpy().astype(np.float32)}
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(warmup):
        for sess in sessions:
            sess.run(None, feed)
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            sessions[which].run(None, feed)
            times[which].append(time.perf_counter() - start)
    return SpeedRow(threads, images.shape[0], 1e3 * statistics.median(times[0]), 1e3 * statistics.median(times[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["deit_tiny_patch16_224", "deit_small_patch16_224"])
    parser.add_argument("--keep-rates", nargs="+", type=float, default=[0.7, 0.49, 0.343])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", nargs="+", type=int, default=[1])
    parser.add_argument("--methods", nargs="+", default=["selector", "evit"])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runtime", choices=["torch", "onnxruntime"], default="torch")
    args = parser.parse_args()
    timed = measure_speedup if args.runtime == "torch" else ort_speedup

    print(f"runtime: {args.runtime}")
    print("| model | method | threads | batch | full ms | pruned ms | speedup |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    gen = torch.Generator().manual_seed(0)
    for name in args.models:
        model = timm.create_model(name, pretrained=False).eval()
        size = model.patch_embed.img_size
        for method in args.methods:
            build = patch_token_selectors if method == "selector" else evit_baseline
            pruned = build(model, args.keep_rates).eval()
            for threads in args.threads:
                for batch in args.batch:
                    images = torch.randn(batch, 3, *size, generator=gen)
                    row = timed(model, pruned, images, threads, args.warmup, args.repeats)
                    print(f"| {name} | {method} | {threads} | {batch} | {row.full_ms:.1f} | "
                          f"{row.pruned_ms:.1f} | {row.speedup:.2f} |", flush=True)


if __name__ == "__main__":
    main()
