"""Train the default SR run's baselines and ship their weights, so a default run scores them
instead of training them (FSRCNN and ESPCN: about six minutes of every default run on 2 cores).

    python -m search.sr.ship_baselines [--threads 2] [--seed 0]

They are trained exactly as a default run trains them (conf/task/sr.yaml's ``task.final`` on the
shipped T91, the run's seed) and written to ``tasks/sr/assets/baselines/`` under the key that run
looks up (:mod:`search.sr.baseline_cache`), with a manifest (architecture, recipe, Set5/Set14
scores, when and how). A run whose recipe, data or seed differs trains (and caches) its own.
"""

from __future__ import annotations

import argparse
import time

import torch

import tasks.sr as sr
from search.config.compose import compose_config
from search.console import say
from search.settings import task_section
from search.sr.baseline_cache import SHIPPED, baseline_key, store
from search.sr.task import SRSettings, baseline_archs, load_data, train_and_evaluate
from search.train_settings import TrainSettings
from tasks.placement import CPU


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = TrainSettings(CPU, threads=args.threads, requested="cpu", worker=0)
    settings = SRSettings.from_task(task_section(compose_config(["task=sr"])), args.seed, train)
    data = load_data(settings, args.seed)
    for name, arch in baseline_archs(settings.baselines, settings.space.scale).items():
        if sr.num_params(sr.build_model(arch)) == 0:
            continue  # bicubic: nothing to train
        torch.manual_seed(args.seed)
        model, scores = train_and_evaluate(arch, settings.final, data.final_patches, data.evals, name)
        key = baseline_key(arch, settings.final, settings.train_root)
        path = store(model, key, {"arch": arch.to_dict(), "steps": settings.final.steps, "train_s": scores["train_s"],
                                  "eval": scores["eval"], "threads": args.threads, "seed": args.seed,
                                  "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                  "made_by": "python -m search.sr.ship_baselines"}, folder=SHIPPED)
        say(f"{name}: {path.name}, Set5 {scores['eval']['set5']['psnr']:.2f} dB, trained in {scores['train_s']:.0f} s")


if __name__ == "__main__":
    main()
