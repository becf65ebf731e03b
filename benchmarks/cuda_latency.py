"""Latency on a CUDA GPU through the ``torch-cuda`` backend (CUDA events, synchronised).

    python benchmarks/cuda_latency.py [--repeats 100] [--batch 1 8]

Prints one row per (network, batch): median and IQR in ms of
``latency_models.measure(..., backend="torch-cuda")`` with its stop reason, and for the
token-pruned ViTs (keep rates 0.7, 0.49, 0.343, selectors included) the speed-up over the unpruned
model measured right before. SR networks run at device=cpu's LR size (180x320). Without CUDA it
stops with the backend's error.
"""

from __future__ import annotations

import argparse

import timm
import torch

import latency_models
import tasks.sr as sr
from latency_models.backends import BackendUnavailable
from latency_models.backends.torch_cuda import require_cuda
from spaces import WDSRBArch, WDSRBlock
from tasks.vit import patch_token_selectors

KEEP = (0.7, 0.49, 0.343)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    args = ap.parse_args()
    protocol = {"warmup": 10, "min_repeats": 20, "max_repeats": args.repeats, "max_seconds": 20.0}
    try:
        require_cuda()
    except BackendUnavailable as err:
        raise SystemExit(str(err)) from None
    print(f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, float32 eager")
    print("| network | batch | median ms | IQR ms | repeats (stop) | speed-up vs unpruned |")
    print("| --- | --- | --- | --- | --- | --- |")

    def row(name: str, module: torch.nn.Module, shape: tuple[int, ...], ref: float | None = None) -> float:
        m = latency_models.measure(module, shape, backend="torch-cuda", threads=1, **protocol)
        up = f"{ref / m.median_ms:.2f}x" if ref else ""
        print(f"| {name} | {shape[0]} | {m.median_ms:.3f} | {m.iqr_ms:.3f} | {m.n_repeats} ({m.stop_reason}) | {up} |",
              flush=True)
        return m.median_ms

    for blocks, c, m1, m2 in ((12, 16, 24, 8), (16, 32, 64, 16)):
        net = sr.build_model(WDSRBArch(2, c, (WDSRBlock(m1, m2),) * blocks)).eval()
        for b in args.batch:
            row(f"WDSR-B {blocks} blocks C={c} [{m1}, {m2}] x2 @180x320", net, (b, 3, 180, 320))
    for name in ("deit_tiny_patch16_224", "deit_small_patch16_224"):
        full = timm.create_model(name, pretrained=False).eval()
        pruned = patch_token_selectors(timm.create_model(name, pretrained=False), KEEP).eval()
        for b in args.batch:
            ref = row(name, full, (b, 3, 224, 224))
            row(f"{name} keep {KEEP}", pruned, (b, 3, 224, 224), ref)


if __name__ == "__main__":
    main()
