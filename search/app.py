"""``run(cfg)``: the whole job for one config, separate from the tiny Hydra wrapper."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from search.config.compose import check_declared
from search.console import say
from search.errors import UserError
from search.result import Result
from search.runners import runner_for
from search.settings import DeviceProfile, ExportSettings, RunContext, SearchSettings, task_section
from search.study.storage import redact
from search.tracking import check_logger, tracking
from search.train_settings import TrainSettings
from spaces.atomic import write_text_atomic


def run(cfg: DictConfig, run_dir: Path) -> Result:
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


def context(cfg: DictConfig, run_dir: Path) -> RunContext:
    """The typed settings of one run, checked before any work."""
    check_declared(cfg)  # a multirun job's overrides reach here unchecked
    check_logger(cfg.logger)
    device = DeviceProfile.from_cfg(cfg)
    settings = SearchSettings.from_cfg(cfg, device, run_dir)
    latency_cfg = OmegaConf.to_container(cfg.latency, resolve=True)
    points = OmegaConf.select(cfg, "device.operating_points", default=None)
    points = OmegaConf.to_container(points, resolve=True) if points is not None else None
    assert isinstance(latency_cfg, dict)
    return RunContext(task_section(cfg), device, settings, latency_cfg, points,  # type: ignore[arg-type]
                      smoke=cfg.profile == "smoke", export=ExportSettings.from_cfg(cfg),
                      train=TrainSettings.from_cfg(cfg))


def redacted_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config for ``result.json``, with the storage password masked."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    if resolved["search"]["storage"]:
        resolved["search"]["storage"] = redact(str(resolved["search"]["storage"]))
    return resolved


def _run(cfg: DictConfig, run_dir: Path) -> Result:
    ctx = context(cfg, run_dir)
    runner = runner_for(ctx.task["name"], ctx.settings.strategy)
    torch.set_num_threads(ctx.train.threads)
    say(f"training on {ctx.train.placement.device} (amp {ctx.train.placement.amp}, {ctx.train.threads} threads)")
    started = time.monotonic()
    with tracking(cfg.logger, run_dir, redacted_config(cfg)):
        result = runner(ctx).with_run(round(time.monotonic() - started, 1), redacted_config(cfg), ctx.train.record())
    write_result(run_dir, result)
    say(f"done in {result.wall_s:.0f} s; outputs in {run_dir}")
    return result


def write_result(run_dir: Path, result: Result) -> Path:
    """``run_dir/result.json``, written atomically: a kill mid-write leaves the previous one whole.
    A search-only result never replaces a final one (a late worker in the final run's directory):
    it goes to ``result.search_only.json`` beside it."""
    path = run_dir / "result.json"
    if not result.final_trained and _is_final(path):
        path = run_dir / "result.search_only.json"
        say(f"{run_dir / 'result.json'} holds a final result; this search-only run's result goes to {path.name}")
    return write_text_atomic(path, result.to_json())


def _is_final(path: Path) -> bool:
    try:
        return Result.read(path).final_trained
    except (UserError, KeyError):
        return False
