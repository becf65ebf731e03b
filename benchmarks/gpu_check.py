"""The prepared check for a machine with a GPU: the training paths really run on CUDA.

    python benchmarks/gpu_check.py [--device cuda] [--out /tmp/gpu_check] [--seconds 20]

1. the smoke SR pipeline (``python -m search ... experiment=smoke train.device=cuda``) runs, and its
   result.json records a CUDA device and the AMP mode;
2. one training step on the same batch from the same weights, on the CPU and on the GPU (fp32, TF32
   off), gives the same weights within tolerance;
3. steps/s of the proxy and the final SR recipes on the CPU and the GPU, fp32 and bf16, each timed
   for ``--seconds`` after warm-up (CUDA synchronised), printed as a table.

Exits 1 naming the first check that fails. ``--device cpu`` runs the same flow on the CPU only (a dry
run of the script itself, for machines without a GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import tasks.sr as sr
from spaces import WDSRBArch, WDSRBlock
from tasks.placement import Placement
from tasks.sr.train import TrainRecipe, train

ARCH = WDSRBArch(2, 24, tuple(WDSRBlock(64, 16) for _ in range(8)))  # a mid-size searched network
RECIPES = {"proxy": TrainRecipe(steps=1, batch_size=16, patch_hr=64), "final": TrainRecipe(steps=1, batch_size=16, patch_hr=96)}


def smoke(device: str, out: Path) -> dict:
    run = out / "smoke"
    cmd = [sys.executable, "-m", "search", "task=sr", "device=s21", "experiment=smoke", f"train.device={device}",
           "train.amp=bf16", f"hydra.run.dir={run}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"smoke run failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    training = json.loads((run / "result.json").read_text())["training"]
    if not (training["device"].startswith(device) and training["amp"] == "bf16"):
        raise SystemExit(f"smoke run recorded {training}, expected {device} with bf16")
    return training


def one_step(device: str, patches: sr.TrainPatches) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = sr.build_model(ARCH)
    train(model, patches, TrainRecipe(steps=1, batch_size=8, patch_hr=64, placement=Placement(device)))
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def same_step(device: str) -> float:
    """Largest weight difference after one Adam step on the CPU and on ``device``, same batch."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu = one_step("cpu", sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 64, seed=0))
    dev = one_step(device, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 64, seed=0))
    return max((cpu[k] - dev[k]).abs().max().item() for k in cpu)


def steps_per_s(recipe: TrainRecipe, placement: Placement, seconds: float) -> float:
    patches = sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, recipe.patch_hr, seed=0)
    model = sr.build_model(ARCH)
    base = TrainRecipe(steps=5, batch_size=recipe.batch_size, patch_hr=recipe.patch_hr, placement=placement,
                       threads=torch.get_num_threads())
    train(model, patches, base)  # warm-up: kernels chosen, memory allocated
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        train(model, patches, dataclasses.replace(base, steps=20))
        done += 20
    if placement.is_cuda:
        torch.cuda.synchronize()
    return done / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU here; run it on a machine with one (or --device cpu)")
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(0)})" if args.device.startswith("cuda") else ""), flush=True)
    print(f"1. smoke run on {args.device}: result.json training = {smoke(args.device, args.out)}", flush=True)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    diff = same_step(args.device)
    if args.device.startswith("cuda") and torch.cuda.max_memory_allocated() == 0:
        raise SystemExit("2. the CUDA step allocated no GPU memory: it did not run on the GPU")
    print(f"2. one step, CPU vs {args.device}, fp32: largest weight difference {diff:.2e} (tolerance 1e-5)", flush=True)
    if diff > 1e-5:
        raise SystemExit(f"2. CPU and {args.device} steps differ by {diff:.2e}")
    print("3. steps/s (WDSR-B 8 blocks C=24, batch 16)\n| recipe | amp | cpu | " + args.device + " | ratio |\n|---|---|---|---|---|")
    for name, recipe in RECIPES.items():
        for amp in ("off", "bf16"):
            cpu = steps_per_s(recipe, Placement("cpu", amp), args.seconds)
            dev = steps_per_s(recipe, Placement(args.device, amp), args.seconds)
            print(f"| {name} | {amp} | {cpu:.2f} | {dev:.2f} | x{dev / cpu:.1f} |", flush=True)


if __name__ == "__main__":
    main()
