"""Token-pruning speedup of timm ViTs on this CPU (random init: latency does not depend on weights).

    python benchmarks/vit_speedup.py [--repeats 50] [--batch 1] [--models deit_tiny_patch16_224 ...]

Prints one row per (model, method, threads, batch): median full and pruned latency in ms and the
speedup, selectors (or EViT's class-attention scoring) included. Keep rates (0.7, 0.49, 0.343)
before blocks 3, 6, 9 (0-based) by default, as SPViT.
"""

from __future__ import annotations

import argparse

import timm
import torch

from tasks.vit import evit_baseline, patch_token_selectors
from tasks.vit.timing import measure_speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["deit_tiny_patch16_224", "deit_small_patch16_224"])
    parser.add_argument("--keep-rates", nargs="+", type=float, default=[0.7, 0.49, 0.343])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", nargs="+", type=int, default=[1])
    parser.add_argument("--methods", nargs="+", default=["selector", "evit"])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

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
                    row = measure_speedup(model, pruned, images, threads, args.warmup, args.repeats)
                    print(f"| {name} | {method} | {threads} | {batch} | {row.full_ms:.1f} | "
                          f"{row.pruned_ms:.1f} | {row.speedup:.2f} |", flush=True)


if __name__ == "__main__":
    main()
