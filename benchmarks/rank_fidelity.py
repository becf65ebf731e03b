"""Does the search's proxy rank candidates as long training does? Kendall's tau and regret per fidelity.

    python benchmarks/rank_fidelity.py [--candidates 8] [--experiment long] [--lo-ms 5 --hi-ms 33]
                                       [--long-steps N] [--json out.json]

Candidates: ``--candidates`` WDSR-B networks whose S21 latency (the published model) spreads evenly
over [lo, hi] ms, drawn from the task's space with a fixed seed. Each is proxy-trained exactly as the
search trains it under ``--experiment``'s recipe (``task.proxy``; the cosine schedule over the
proxy's steps) and scored on the held-out validation images at every rung of its fidelity
(``search.fidelity``), then trained with the recipe's final training (``task.final``, as the winner and
the baselines are) and scored on validation and Set5. Per rung: Kendall's tau between the rung's
validation PSNR and the long-trained one, the regret (best long-trained Set5 PSNR minus that of the
rung's pick), and the proxy seconds spent per candidate up to that rung. Every setting comes from
the config (one place for defaults); this takes hours with ``--experiment long``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from scipy.stats import kendalltau

import latency_models
import tasks.sr as sr
from search.config.compose import compose_config
from search.settings import DeviceProfile, SearchSettings, task_section
from search.sr.task import SRSettings
from search.train_settings import TrainSettings
from tasks.sr.evaluate import evaluate
from tasks.sr.train import train as train_model


def candidates(space, n: int, lo_ms: float, hi_ms: float, seed: int) -> list:
    """``n`` architectures whose S21 latency is nearest to ``n`` evenly spaced targets in [lo, hi]."""
    model = latency_models.load_published("s21", space.scale)
    rng = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(sampler=rng)
    pool = [space.sample(study.ask()) for _ in range(4000)]
    ms = model.predict_archs(pool)
    picked = []
    for target in np.linspace(lo_ms, hi_ms, n):
        order = np.argsort(np.abs(ms - target))
        picked.append(next(pool[i] for i in order if pool[i] not in picked))
    return [(a, float(model.predict_archs([a])[0])) for a in picked]


def proxy_scores(arch, settings: SRSettings, rungs: list[int], patches, val) -> tuple[dict[int, float], dict[int, float]]:
    """Validation PSNR and proxy seconds at each rung, in one proxy training (as the search does)."""
    torch.manual_seed(0)
    model = sr.build_model(arch)
    scores, seconds, t0 = {}, {}, time.monotonic()

    def at_step(step: int, loss: float) -> None:
        if step in rungs:
            seconds[step] = time.monotonic() - t0
            scores[step] = evaluate(model, val, arch.scale)["psnr"]

    train_model(model, patches, settings.proxy, progress=at_step)
    return scores, seconds


def long_scores(arch, settings: SRSettings, patches, val, set5) -> dict[str, float]:
    torch.manual_seed(0)
    model = sr.build_model(arch)
    t0 = time.monotonic()
    train_model(model, patches, settings.final)
    return {"val": evaluate(model, val, arch.scale)["psnr"], "set5": evaluate(model, set5, arch.scale)["psnr"],
            "seconds": time.monotonic() - t0}


def table(rows: list[dict], rungs: list[int]) -> list[str]:
    long_val = [r["long"]["val"] for r in rows]
    long_set5 = [r["long"]["set5"] for r in rows]
    out = ["| fidelity (proxy steps) | Kendall tau vs long | regret Set5 (dB) | proxy s per candidate |",
           "| --- | --- | --- | --- |"]
    for rung in rungs:
        at = [r["proxy"][str(rung)] for r in rows]
        tau = kendalltau(at, long_val).statistic
        pick = int(np.argmax(at))
        cost = np.mean([r["proxy_s"][str(rung)] for r in rows])
        out.append(f"| {rung} | {tau:.2f} | {max(long_set5) - long_set5[pick]:.3f} | {cost:.0f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--experiment", default="long")
    parser.add_argument("--lo-ms", type=float, default=5.0)
    parser.add_argument("--hi-ms", type=float, default=33.0)
    parser.add_argument("--long-steps", type=int, default=None, help="override task.final.steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    overrides = [f"experiment={args.experiment}", "device=s21"]
    if args.long_steps:
        overrides.append(f"task.final.steps={args.long_steps}")
    cfg = compose_config(overrides)
    train = TrainSettings.from_cfg(cfg)
    settings = SRSettings.from_task(task_section(cfg), args.seed, train)
    fidelity = SearchSettings.from_cfg(cfg, DeviceProfile.from_cfg(cfg), Path("/tmp")).fidelity
    rungs = fidelity.rungs(settings.proxy.steps)
    proxy_patches = sr.TrainPatches(settings.train_root, 2, settings.proxy.patch_hr, seed=args.seed + 1,
                                    val_images=settings.val_images)
    val = proxy_patches.val_set()
    final_patches = sr.TrainPatches(settings.train_root, 2, settings.final.patch_hr, seed=args.seed + 2)
    set5 = sr.load_eval_set(sr.DEFAULT_EVAL_ROOTS["set5"], 2)
    torch.set_num_threads(train.threads)
    print(f"{args.candidates} candidates {args.lo_ms:g}-{args.hi_ms:g} ms (S21, published model); proxy "
          f"{settings.proxy.steps} steps, rungs {rungs}; long: {settings.final.steps} steps at patch "
          f"{settings.final.patch_hr} on {'+'.join(p.name for p in settings.train_root)}; {train.threads} threads", flush=True)
    rows = []
    for arch, ms in candidates(settings.space, args.candidates, args.lo_ms, args.hi_ms, args.seed):
        proxy, seconds = proxy_scores(arch, settings, rungs, proxy_patches, val)
        long = long_scores(arch, settings, final_patches, val, set5)
        rows.append({"arch": arch.to_dict(), "s21_ms": ms, "proxy": {str(k): v for k, v in proxy.items()},
                     "proxy_s": {str(k): v for k, v in seconds.items()}, "long": long})
        print(f"  {arch.depth} blocks C={arch.channels} {ms:.1f} ms: proxy "
              + ", ".join(f"{k}: {v:.2f}" for k, v in proxy.items())
              + f" | long val {long['val']:.2f}, Set5 {long['set5']:.2f} dB ({long['seconds']:.0f} s)", flush=True)
    print("\n".join(table(rows, rungs)))
    if args.json:
        args.json.write_text(json.dumps({"rungs": rungs, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
