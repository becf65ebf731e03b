"""Token-pruning speedup of timm ViTs on this CPU (random init: latency does not depend on weights).

    python benchmarks/vit_speedup.py [--repeats 50] [--batch 1] [--models deit_tiny_patch16_224 ...]
    python benchmarks/vit_speedup.py --runtime onnxruntime     # the exported ONNX models in onnxruntime
    python benchmarks/vit_speedup.py --methods selector bound  # against the no-scoring bound

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

from spaces.vit import default_stages, kept_tokens
from tasks.vit import evit_baseline, patch_token_selectors
from tasks.vit.timing import SpeedRow, measure_speedup


class SliceBound(torch.nn.Module):
    """The cheapest pruning at the same token counts (method ``bound``): the first ``keep`` patch
    tokens stay and one mean token stands for the rest, no scoring at all. No token-pruning method
    at these keep rates can run faster, so its speedup bounds what selectors or EViT can reach."""

    def __init__(self, vit: torch.nn.Module, keep_rates: list[float], stages: tuple[int, ...]) -> None:
        super().__init__()
        self.vit, self.stages = vit, dict(zip(stages, keep_rates))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        vit, p = self.vit, self.vit.num_prefix_tokens
        x = vit.norm_pre(vit._pos_embed(vit.patch_embed(images)))
        n0 = x.shape[1] - p
        for i, block in enumerate(vit.blocks):
            if i in self.stages:
                keep = kept_tokens(self.stages[i], n0)
                x = torch.cat([x[:, :p + keep], x[:, p + keep:].mean(dim=1, keepdim=True)], dim=1)
            x = block(x)
        return vit.forward_head(vit.norm(x))


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
    parser.add_argument("--methods", nargs="+", default=["selector", "evit"], choices=["selector", "evit", "bound"],
                        help="bound: first tokens kept, no scoring (SliceBound): the fastest any method can be")
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
            if method == "bound":
                pruned = SliceBound(model, args.keep_rates, default_stages(len(model.blocks))).eval()
            else:
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
