"""How repeatable are torch-cpu latency measurements on this machine?

Collects ~30 small SR-like conv stacks (LR input 90x160, x2 pixel shuffle) with
:func:`latency_models.collect.collect` at 1 and 2 threads, re-measuring a reference stack after
every few models, and prints per thread count the drift of the reference median (% of its first
median) and the coefficient of variation (std / mean of the timed runs) of every model.

    python benchmarks/latency_repeatability.py                 # 30 models, threads 1 and 2
    python benchmarks/latency_repeatability.py --models 10 --threads 1 --keep runs/
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from latency_models.collect import collect
from latency_models.dataset import read_dataset

LR_SHAPE = (1, 3, 90, 160)
DRIFT_GOAL_PCT = 3.0
PROTOCOL = {"warmup": 3, "min_repeats": 10, "max_repeats": 40, "rel_tol": 0.01, "window": 5, "max_seconds": 5.0}


def sr_stack(channels: int, layers: int, scale: int = 2, seed: int = 0) -> nn.Module:
    """conv3x3(3->C), (layers-1) x [conv3x3(C->C) + ReLU], conv3x3(C->3*scale^2), pixel shuffle."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
    for _ in range(layers - 1):
        mods += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    mods += [nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
    return nn.Sequential(*mods)


def model_specs(n: int, seed: int) -> list[tuple[str, object, tuple[int, ...]]]:
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        channels = int(rng.choice([8, 12, 16, 24, 32]))
        layers = int(rng.integers(2, 6))
        specs.append((f"sr{i:02d}_c{channels}_l{layers}", (lambda c=channels, k=layers, s=i: sr_stack(c, k, seed=s)),
                      LR_SHAPE))
    return specs


def cv_pct(times_ms: tuple[float, ...]) -> float:
    return 100.0 * statistics.stdev(times_ms) / statistics.fmean(times_ms)


def run(n_models: int, threads_list: list[int], reference_every: int, seed: int, out_dir: Path) -> int:
    specs = model_specs(n_models, seed)
    load_before = os.getloadavg()
    reference = ("reference_c32_l4", sr_stack(32, 4, seed=12345), LR_SHAPE)
    per_thread: dict[int, dict[str, tuple[float, float]]] = {}
    rows = []
    for threads in threads_list:
        path = out_dir / f"repeatability_t{threads}.jsonl"
        summary = collect(specs, path, "torch-cpu", threads, reference=reference, reference_every=reference_every,
                          seed=seed, progress=True, **PROTOCOL)
        _, records = read_dataset(path)
        models = {r.model_id: (r.median_ms, cv_pct(r.times_ms)) for r in records if r.role == "model"}
        per_thread[threads] = models
        cvs = [cv for _, cv in models.values()]
        rows.append((threads, len(summary.reference_medians_ms), summary.reference_medians_ms[0],
                     summary.max_abs_drift_pct, summary.final_drift_pct, statistics.median(cvs), max(cvs),
                     summary.elapsed_s))
        print(f"t={threads}: reference medians (ms): " + " ".join(f"{m:.2f}" for m in summary.reference_medians_ms))
        print(f"t={threads}: drift (%):              " + " ".join(f"{d:+.2f}" for d in summary.drift_pct))

    print("\nPer-model median (ms) and CV of the timed runs (%)\n")
    head = "| model | " + " | ".join(f"t={t} median ms | t={t} CV %" for t in threads_list) + " |"
    print(head)
    print("|" + " --- |" * (1 + 2 * len(threads_list)))
    for mid, _, _ in specs:
        cells = " | ".join(f"{per_thread[t][mid][0]:.2f} | {per_thread[t][mid][1]:.1f}" for t in threads_list)
        print(f"| {mid} | {cells} |")

    print("\nReference drift and per-model CV\n")
    print("| threads | reference runs | first ref median ms | max abs drift % | final drift % | "
          "median CV % | max CV % | time s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for t, n_ref, first, max_drift, final, cv_med, cv_max, secs in rows:
        print(f"| {t} | {n_ref} | {first:.2f} | {max_drift:.2f} | {final:+.2f} | {cv_med:.2f} | {cv_max:.2f} | {secs:.0f} |")
    load_after = os.getloadavg()
    cores = os.cpu_count() or 1
    print(f"\nLoad average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f} on {cores} cores"
          + ("  <- other processes were competing for the CPU; figures are not representative"
             if max(load_before[0], load_after[0]) > cores else ""))
    worst = max(r[3] for r in rows)
    verdict = "YES" if worst < DRIFT_GOAL_PCT else "NO"
    print(f"\nReference drift below {DRIFT_GOAL_PCT:.0f}% at every thread count: {verdict} "
          f"(worst {worst:.2f}% over {n_models} models, reference every {reference_every}).")
    return 0 if worst < DRIFT_GOAL_PCT else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reference-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the datasets here instead of a temp dir")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args.models, args.threads, args.reference_every, args.seed, args.keep)
    with tempfile.TemporaryDirectory(prefix="hwnas-repeatability-") as tmp:
        return run(args.models, args.threads, args.reference_every, args.seed, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
