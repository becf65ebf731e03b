"""Does a second thread help a WDSR-B network on this CPU, with and without oneDNN (mkldnn)?

    python benchmarks/conv_threads.py [--blocks 12] [--channels 16] [--m1 24] [--m2 8] [--rounds 3]

Prints one row per (oneDNN on/off, round): median ms of 8 runs at 1 and at 2 threads, LR 180x320
(device=cpu's input), and the 2-thread speed-up. On this project's 2-core VM oneDNN's 2-thread path
ran these narrow convolutions 2x *slower* than 1 thread (65 vs 133 ms), while with oneDNN off 2
threads were 1.36x faster (87 vs 64 ms): which operating point is faster depends on the kernels.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import tasks.sr as sr
from latency_models.heap import keep_heap
from spaces import WDSRBArch, WDSRBlock


def median_ms(model: torch.nn.Module, x: torch.Tensor, threads: int, runs: int = 8) -> float:
    torch.set_num_threads(threads)
    for _ in range(2):
        model(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model(x)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--m1", type=int, default=24)
    ap.add_argument("--m2", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    arch = WDSRBArch(2, args.channels, (WDSRBlock(args.m1, args.m2),) * args.blocks)
    model = sr.build_model(arch).eval()
    heap = keep_heap()  # as every timing in the project (HWNAS_HEAP=default: the allocator as is)
    x = torch.randn(1, 3, 180, 320)
    print(f"WDSR-B {args.blocks} blocks, C={args.channels}, [M1, M2]=[{args.m1}, {args.m2}], LR 180x320, torch {torch.__version__}, heap {heap}")
    print("| oneDNN | round | 1 thread ms | 2 threads ms | 2-thread speed-up |")
    print("| --- | --- | --- | --- | --- |")
    before = torch.backends.mkldnn.enabled
    try:
        with torch.inference_mode():
            for enabled in (True, False):
                torch.backends.mkldnn.enabled = enabled
                for r in range(args.rounds):
                    one, two = median_ms(model, x, 1), median_ms(model, x, 2)
                    print(f"| {'on' if enabled else 'off'} | {r} | {one:.1f} | {two:.1f} | {one / two:.2f}x |", flush=True)
    finally:
        torch.backends.mkldnn.enabled = before


if __name__ == "__main__":
    main()
