"""Baselines trained once per recipe. FSRCNN and ESPCN trained with the same ``task.final``, data and
seed are the same comparison every run, yet on this 2-core CPU they cost six minutes of each run
(FSRCNN alone: 2000 steps at ~9.5 steps/s). A trained baseline is kept under a key of everything its
training depends on (architecture, recipe, training folders, seed) in ``$HWNAS_CACHE/sr/baselines``
(state dict + JSON manifest, loaded with ``weights_only=True``) and reused; ``task.baseline_cache=false``
trains them every run. It is scored on the run's evaluation sets either way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from search.console import say
from search.settings import cache_root
from spaces.atomic import atomic_path, write_text_atomic
from tasks.sr.data import ASSETS

CACHE_FORMAT = "hwnas.sr.baseline"
CACHE_VERSION = 1
NOT_IN_KEY = ("threads", "checkpoint_every", "placement")  # where and how often: not what is learned
SHIPPED = ASSETS / "baselines"


def _folder(path: Path) -> str:
    """A shipped training set by its name (the same key on every machine), any other by its path."""
    try:
        return "assets:" + path.resolve().relative_to(ASSETS.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def baseline_key(arch: Any, recipe: Any, train_root: tuple[Path, ...]) -> str:
    spec = {"arch": arch.to_dict(), "v": CACHE_VERSION, "train_root": [_folder(p) for p in train_root],
            "recipe": {k: v for k, v in dataclasses.asdict(recipe).items() if k not in NOT_IN_KEY}}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(key: str) -> Path:
    """The shipped entry (the default recipe's baselines, trained by ``python -m search.sr.ship_baselines``)
    where there is one, else the user's cache."""
    shipped = SHIPPED / f"{key}.pt"
    return shipped if shipped.is_file() else cache_root() / "sr" / "baselines" / f"{key}.pt"


def load_cached(model: torch.nn.Module, key: str) -> dict[str, Any] | None:
    """``model`` with the cached weights (in place) and the manifest, or None where there are none
    or they do not load (torn, foreign): then the caller trains it."""
    path = cache_path(key)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.with_suffix(".json").read_text())
        if manifest.get("format") != CACHE_FORMAT:
            raise ValueError(f"not a {CACHE_FORMAT} manifest")
        model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError) as err:
        say(f"baseline cache {path} does not load ({type(err).__name__}: {str(err)[:120]}); training it again")
        return None
    return manifest


def store(model: torch.nn.Module, key: str, info: dict[str, Any], folder: Path | None = None) -> Path:
    """Weights first, manifest last (each atomic): a manifest always names whole weights. ``folder``:
    where (default: the user's cache)."""
    path = (folder or cache_root() / "sr" / "baselines") / f"{key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    write_text_atomic(path.with_suffix(".json"), json.dumps({"format": CACHE_FORMAT, "version": CACHE_VERSION,
                                                             **info}, indent=1, default=str))
    return path
