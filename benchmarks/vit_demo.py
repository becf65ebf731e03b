"""End-to-end offline demo: train the digit teacher, then compare learned selectors with EViT.

    python benchmarks/vit_demo.py --out /tmp/vit_demo [--epochs 14] [--selector-steps 300] [--train-threads 1]

Prints the teacher's held-out top-1 and training time, then top-1 of the EViT baseline and of the
learned selectors (before and after ``train_selectors``) at the same keep rates, and the measured
speedup of the pruned teacher. The teacher is saved as ``teacher.pt`` (a plain state dict, loads
with ``weights_only=True``); ``--teacher`` reuses one.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from latency_models.interleave import speedup_of
from tasks.vit.demo import TeacherRecipe, build_demo_teacher, load_demo_data, train_teacher
from tasks.vit.evaluate import evaluate_top1
from tasks.vit.patch import evit_baseline, patch_token_selectors
from tasks.vit.train import SelectorRecipe, train_selectors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, default=None, help="reuse a saved teacher state dict")
    parser.add_argument("--img-size", type=int, default=28)
    parser.add_argument("--epochs", type=float, default=14.0)
    parser.add_argument("--keep-rates", nargs="+", type=float, default=[0.7, 0.49, 0.343])
    parser.add_argument("--selector-steps", type=int, default=300)
    parser.add_argument("--selector-lr", type=float, default=2e-3)
    parser.add_argument("--backbone-lr", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for the speed table")
    parser.add_argument("--train-threads", type=int, default=2)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--speed-batch", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.train_threads)
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_demo_data(img_size=args.img_size)
    teacher = build_demo_teacher(img_size=args.img_size)
    if args.teacher is not None:
        teacher.load_state_dict(torch.load(args.teacher, map_location="cpu", weights_only=True))
        print(f"teacher loaded from {args.teacher}: held-out top-1 {evaluate_top1(teacher, data.test):.4f}")
    else:
        log = train_teacher(teacher, data, TeacherRecipe(epochs=args.epochs, warmup_steps=args.warmup_steps,
                                                               log_every=50))
        print(f"teacher: {log.steps} steps in {log.seconds:.0f} s wall, {log.cpu_seconds:.0f} s CPU "
              f"({args.train_threads} threads), "
              f"held-out top-1 {log.test_top1:.4f}", flush=True)
        torch.save(teacher.state_dict(), args.out / "teacher.pt")
    teacher.eval()
    rates = tuple(args.keep_rates)

    rows = [("teacher (unpruned)", evaluate_top1(teacher, data.test))]
    evit = evit_baseline(teacher, rates)
    rows.append(("EViT top-k by class attention", evaluate_top1(evit, data.test)))
    student = patch_token_selectors(copy.deepcopy(teacher), rates)
    rows.append(("selectors, untrained", evaluate_top1(student, data.test)))
    recipe = SelectorRecipe(steps=args.selector_steps, lr=args.selector_lr, backbone_lr=args.backbone_lr)
    start = time.perf_counter()
    slog = train_selectors(student, teacher, data.train, recipe)
    print(f"train_selectors: {slog.steps} steps in {time.perf_counter() - start:.0f} s, loss "
          f"{sum(slog.losses[:10]) / 10:.3f} -> {sum(slog.losses[-10:]) / 10:.3f}, last terms {slog.parts}")
    rows.append((f"selectors, trained {slog.steps} steps", evaluate_top1(student, data.test)))
    torch.save(student.state_dict(), args.out / "student.pt")

    print(f"\nkeep rates {rates}, stages {student.stages}, held-out top-1 on {len(data.test_labels)} digits")
    print("| model | top-1 |\n| --- | --- |")
    for name, top1 in rows:
        print(f"| {name} | {top1:.4f} |")
    images = data.test_images[:args.speed_batch]
    print("\n| pruned | threads | batch | full ms | pruned ms | speedup (median of round ratios) | spread |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for name, model in (("selectors", student), ("EViT", evit)):
        row = speedup_of(teacher, model, tuple(images.shape), args.threads, rounds=10)
        print(f"| {name} | {args.threads} | {images.shape[0]} | {row.base.ms:.1f} | {row.other.ms:.1f} | "
              f"{row.ratio:.2f} | {max(row.base.spread, row.other.spread):.2f} |", flush=True)


if __name__ == "__main__":
    main()
