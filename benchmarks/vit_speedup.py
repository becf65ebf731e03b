"""Token-pruning speedup of timm ViTs on this CPU (random init: latency does not depend on weights).

    python benchmarks/vit_speedup.py [--rounds 15] [--batch 1] [--models deit_tiny_patch16_224 ...]
    python benchmarks/vit_speedup.py --runtime onnxruntime     # only the exported ONNX models in onnxruntime
    python benchmarks/vit_speedup.py --methods selector bound  # only the selectors and the no-scoring bound

Prints one row per (runtime, model, method, threads, batch): full and pruned latency in ms, the
speed-up (selectors' or EViT's scoring included) and its share of the no-scoring bound's speed-up,
all timed in the same interleaved rounds. Keep rates (0.7, 0.49, 0.343)
before blocks 3, 6, 9 (0-based) by default, as SPViT.
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import timm
import torch

from latency_models.interleave import InterleavedTiming, Speedup, interleaved_calls, interleaved_ms
from spaces.vit import default_stages, kept_tokens
from tasks.vit import evit_baseline, patch_token_selectors


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


def timed_rows(runtime: str, models: list[torch.nn.Module], shape: tuple[int, ...], threads: int,
               rounds: int) -> list[InterleavedTiming]:
    """Every model timed in the same interleaved rounds: eager torch, or exported to ONNX and run in
    onnxruntime (CPU, ``threads`` intra-op threads, full graph optimisation, no spinning)."""
    if runtime == "torch":
        return interleaved_ms([(m, shape) for m in models], threads, rounds=rounds, warmup=3)
    import onnxruntime as ort

    from latency_models.backends.onnx_export import export_onnx
    from latency_models.backends.onnxruntime_cpu import session_options

    sessions = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate(models):
            path = export_onnx(model.eval(), shape, Path(tmp) / f"m{i}.onnx")
            sessions.append(ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"]))
    feed = {sessions[0].get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
    rows = interleaved_calls([partial(sess.run, None, feed) for sess in sessions], rounds=rounds, warmup=3)
    return [InterleavedTiming(min(r), tuple(r), threads) for r in rows]


def pruned_model(model: torch.nn.Module, method: str, keep_rates: list[float]) -> torch.nn.Module:
    if method == "bound":
        return SliceBound(model, keep_rates, default_stages(len(model.blocks))).eval()
    build = patch_token_selectors if method == "selector" else evit_baseline
    return build(model, keep_rates).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["deit_tiny_patch16_224", "deit_small_patch16_224"])
    parser.add_argument("--keep-rates", nargs="+", type=float, default=[0.7, 0.49, 0.343])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", nargs="+", type=int, default=[1])
    parser.add_argument("--methods", nargs="+", default=["selector", "evit", "bound"],
                        choices=["selector", "evit", "bound"],
                        help="bound: first tokens kept, no scoring (SliceBound): the fastest any method can be")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (3 runs each)")
    parser.add_argument("--runtime", nargs="+", choices=["torch", "onnxruntime"], default=["torch", "onnxruntime"])
    args = parser.parse_args()

    print("Each row: the unpruned model and every method timed in the same interleaved rounds; speed-up = median "
          "over rounds of unpruned / pruned; share = that speed-up / the no-scoring bound's, same rounds.")
    print("| runtime | model | method | threads | batch | full ms | pruned ms | speed-up | share of bound | spread |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        model = timm.create_model(name, pretrained=False).eval()
        size = model.patch_embed.img_size
        pruned = [pruned_model(model, m, args.keep_rates) for m in args.methods]
        for runtime in args.runtime:
            for threads in args.threads:
                for batch in args.batch:
                    rows = timed_rows(runtime, [model, *pruned], (batch, 3, *size), threads, args.rounds)
                    speedups = [Speedup(rows[0], row).ratio for row in rows[1:]]
                    bound = speedups[args.methods.index("bound")] if "bound" in args.methods else None
                    for method, row, speedup in zip(args.methods, rows[1:], speedups):
                        share = "" if bound is None else f"{speedup / bound:.1%}"
                        print(f"| {runtime} | {name} | {method} | {threads} | {batch} | {rows[0].ms:.1f} | "
                              f"{row.ms:.1f} | {speedup:.3f} | {share} | {max(rows[0].spread, row.spread):.2f} |",
                              flush=True)


if __name__ == "__main__":
    main()
