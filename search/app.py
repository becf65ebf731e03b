"""``run(cfg)``: the whole job for one config, separate from the tiny Hydra wrapper."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from search.errors import UserError
from search.settings import DeviceProfile, SearchSettings, task_section
from search.storage import redact
from spaces.atomic import write_text_atomic


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run the configured task; returns the result written to ``run_dir/result.json``. The run
    directory is claimed for the whole run: a second process pointed at it stops at once."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with claim(run_dir):
        return _run(cfg, run_dir)


@contextlib.contextmanager
def claim(run_dir: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``run_dir`` (released when the process ends, even killed)."""
    import fcntl

    with open(run_dir / ".run.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise UserError(f"run directory {run_dir} is in use by another process ({handle.read().strip() or 'pid ?'}); "
                            "give each worker its own: search.worker=K names it, or hydra.run.dir=DIR") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        yield


def _run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    device = DeviceProfile.from_cfg(cfg)
    settings = SearchSettings.from_cfg(cfg, device, run_dir)
    task = task_section(cfg)
    latency_cfg = OmegaConf.to_container(cfg.latency, resolve=True)
    assert isinstance(latency_cfg, dict)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    if resolved.get("search", {}).get("storage"):  # the password reaches no file
        resolved["search"]["storage"] = redact(str(resolved["search"]["storage"]))
    torch.set_num_threads(device.threads or 2)
    started = time.monotonic()
    if settings.strategy == "allinone" and task["name"] != "sr":
        raise UserError(f"strategy=allinone is built for task=sr only, not task={task['name']}; "
                        "use strategy=tpe, nsga2, random or dnas")
    if task["name"] == "sr" and settings.strategy == "allinone":
        from search.allinone import run_allinone

        points = OmegaConf.select(cfg, "device.operating_points", default=None)
        points = OmegaConf.to_container(points, resolve=True) if points is not None else None
        result = run_allinone(task, device, settings, points, smoke=cfg.get("profile") == "smoke")
    elif task["name"] == "sr":
        from search.sr_run import run_sr

        result = run_sr(task, device, settings, latency_cfg)
    elif task["name"] == "vit" and settings.strategy == "dnas":
        from search.vit_dnas import run_vit_dnas

        result = run_vit_dnas(task, device, settings, latency_cfg)
    elif task["name"] == "vit":
        from search.vit_run import run_vit

        result = run_vit(task, device, settings, latency_cfg)
    else:
        raise UserError(f"unknown task {task['name']!r}; choose task=sr or task=vit")
    result["config"] = resolved
    result["wall_s"] = round(time.monotonic() - started, 1)
    write_result(run_dir, result)
    print(f"done in {result['wall_s']:.0f} s; outputs in {run_dir}")
    return result


def write_result(run_dir: Path, result: dict[str, Any]) -> Path:
    """``run_dir/result.json``, written atomically: a kill mid-write leaves the previous one whole.
    A search-only result never replaces a final one (a late worker in the final run's directory):
    it goes to ``result.search_only.json`` beside it."""
    path = run_dir / "result.json"
    if str(result.get("final", "")).startswith("skipped") and _is_final(path):
        path = run_dir / "result.search_only.json"
        print(f"{run_dir / 'result.json'} holds a final result; this search-only run's result goes to {path.name}")
    return write_text_atomic(path, json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")


def _is_final(path: Path) -> bool:
    try:
        return not str(json.loads(path.read_text()).get("final", "")).startswith("skipped")
    except (OSError, ValueError, AttributeError):
        return False
