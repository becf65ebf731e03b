"""Train FSRCNN, ESPCN and one WDSR-B network with the same recipe; print a PSNR/SSIM table.

    python benchmarks/sr_baselines.py                       # ~4 min per network on an idle 2-core CPU
    python benchmarks/sr_baselines.py --steps 1000 --threads 1
    python benchmarks/sr_baselines.py --wdsr 16:64x13,64x13,64x13 --scale 2 --json out.json

Data: the shipped T91 (training) and Set5 / Set14 (evaluation, MATLAB-bicubic LR files). Every
network gets the same patches (same seed), steps, batch, patch size and learning-rate schedule.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import tasks.sr as sr
from spaces import BicubicArch, ESPCNArch, FSRCNNArch, WDSRBArch, WDSRBlock
from tasks.sr.train import TrainRecipe, train


def parse_wdsr(text: str, scale: int) -> WDSRBArch:
    """``"C:M1xM2,M1xM2,..."`` -> WDSRBArch, e.g. ``16:64x13,64x13,64x13``."""
    try:
        channels, blocks = text.split(":")
        pairs = [b.split("x") for b in blocks.split(",")]
        return WDSRBArch(scale, int(channels), tuple(WDSRBlock(int(m1), int(m2)) for m1, m2 in pairs))
    except ValueError as err:
        raise SystemExit(f"--wdsr {text!r}: expected C:M1xM2,M1xM2,... e.g. 16:64x13,64x13,64x13 ({err})") from None


def run_one(name: str, arch, recipe: TrainRecipe, evals: dict, seed: int) -> dict:
    torch.manual_seed(seed)
    model = sr.build_model(arch)
    patches = sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, arch.scale, recipe.patch_hr, seed=seed)
    last = [time.monotonic()]

    def progress(step: int, loss: float) -> None:
        if time.monotonic() - last[0] > 30:
            print(f"  [{name}] step {step}/{recipe.steps} L1 {loss:.4f}", flush=True)
            last[0] = time.monotonic()

    stats = train(model, patches, recipe, progress=progress)
    old = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        scores = sr.evaluate_sets(model, evals, arch.scale)
    finally:
        torch.set_num_threads(old)
    row = {"model": name, "params": sr.num_params(model), "steps": stats.steps,
           "train_s": round(stats.seconds, 1), "steps_per_s": round(stats.steps_per_second, 2),
           "final_l1": stats.final_loss, "arch": arch.to_dict()}
    for set_name, s in scores.items():
        row[f"{set_name}_psnr"], row[f"{set_name}_ssim"] = round(s["psnr"], 3), round(s["ssim"], 4)
    print(f"  [{name}] done: {row}", flush=True)
    return row


def print_table(rows: list[dict], set_names: list[str], scale: int) -> None:
    head = ["model", "params", "steps", "train s", "steps/s"]
    head += [f"{n} x{scale} PSNR / SSIM" for n in set_names]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---" for _ in head) + " |")
    for r in rows:
        cells = [r["model"], f"{r['params']:,}", str(r["steps"]), f"{r['train_s']:.0f}",
                 f"{r['steps_per_s']:.1f}" if r["steps"] else "-"]
        cells += [f"{r[f'{n}_psnr']:.2f} / {r[f'{n}_ssim']:.4f}" for n in set_names]
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="training steps per network (default 3000)")
    parser.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch-hr", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wdsr", default="16:64x13,64x13,64x13", help="WDSR-B as C:M1xM2,... (default: 3 blocks)")
    parser.add_argument("--only", nargs="*", default=None, help="subset of: wdsr_b fsrcnn espcn")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    recipe = TrainRecipe(steps=args.steps, batch_size=args.batch_size, patch_hr=args.patch_hr, lr=args.lr,
                         seed=args.seed, threads=args.threads)
    evals = {name: sr.load_eval_set(root, args.scale) for name, root in sr.DEFAULT_EVAL_ROOTS.items()}
    candidates = {"wdsr_b": parse_wdsr(args.wdsr, args.scale), "fsrcnn": FSRCNNArch(args.scale),
                  "espcn": ESPCNArch(args.scale)}
    chosen = args.only or list(candidates)
    print(f"recipe: {recipe}; torch {torch.__version__}", flush=True)
    rows = [run_one("bicubic", BicubicArch(args.scale), recipe, evals, args.seed)]
    rows += [run_one(name, candidates[name], recipe, evals, args.seed) for name in chosen]
    print()
    print_table(rows, list(evals), args.scale)
    if args.json:
        args.json.write_text(json.dumps({"recipe": vars(args) | {"json": None}, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
