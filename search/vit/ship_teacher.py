"""Train the ViT demo teacher with the task's recipe (conf/task/vit.yaml) and ship it in
``tasks/vit/assets`` (``demo_teacher.pt``, a plain state dict, and ``demo_teacher.json``, its
manifest: key, recipe, held-out top-1, sha256), so `task=vit` runs load it instead of training.

    python -m search.vit.ship_teacher [--threads 1]                  # train (100 epochs: ~23 min, 1 thread)
    python -m search.vit.ship_teacher --state T.pt --info T.json      # ship a teacher load_teacher cached

The key covers the image size, seed, recipe and validation split: a run whose settings differ
trains (and caches) its own teacher as before.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import torch

from search.config.compose import compose_config
from search.console import say
from search.settings import task_section
from search.vit.task import ViTSettings, load_teacher, load_vit_data, teacher_key
from tasks.vit.demo import SHIPPED_TEACHER_FORMAT


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--state", type=Path, help="a cached teacher state dict to ship instead of training")
    ap.add_argument("--info", type=Path, help="its cache json (test_top1, train_s, steps)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # the task section a default run gets (conf/task/vit.yaml, no overlay): its teacher is the one shipped
    settings = ViTSettings.from_task(task_section(compose_config(["task=vit"])), args.seed)
    if args.state is None:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["HWNAS_CACHE"] = tmp  # train afresh, not from a user's cache
            model, info = load_teacher(settings, load_vit_data(settings, args.seed), args.seed)
            state = model.state_dict()
    else:
        state = torch.load(args.state, map_location="cpu", weights_only=True)
        info = json.loads(args.info.read_text())
    folder = Path(str(resources.files("tasks.vit") / "assets"))
    weights = folder / "demo_teacher.pt"
    torch.save(state, weights)
    manifest = {
        "format": SHIPPED_TEACHER_FORMAT, "version": 1, "key": teacher_key(settings, args.seed),
        "img_size": settings.img_size, "seed": args.seed, "val_images": settings.val_images,
        "recipe": asdict(settings.teacher), "test_top1": info["test_top1"], "train_s": info["train_s"],
        "steps": info["steps"], "threads": args.threads, "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "made_by": "python -m search.vit.ship_teacher", "data": "tasks/vit/assets/mnist5k.npz (see PROVENANCE.md)",
    }
    (folder / "demo_teacher.json").write_text(json.dumps(manifest, indent=1) + "\n")
    say(f"shipped {weights} (key {manifest['key']}, held-out top-1 {100 * info['test_top1']:.2f}%)")


if __name__ == "__main__":
    main()
