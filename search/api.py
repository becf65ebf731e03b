"""``search.run(task="sr", device="s21", overrides=[...])``: the command line's run, from Python.

The same Hydra configs compose, the same checks run first (a bad override is a ``UserError``
with the one-line message the command prints), and the same files land in ``run_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from search.config.compose import check_overrides, compose_config
from search.result import Result


def run(task: str = "sr", device: str = "s21", overrides: Sequence[str] = (),
        run_dir: str | Path | None = None) -> Result:
    """Search (and, unless ``search.run_final=false``, train, evaluate and export) as
    ``python -m search task=TASK device=DEVICE OVERRIDES`` would; returns the result also written
    to ``run_dir/result.json`` (default ``runs/<task>-<device>/api``). Progress is printed."""
    from search.app import run as run_configured  # heavy: torch, the task packages

    args = [f"task={task}", f"device={device}", *overrides]
    check_overrides(args)
    cfg = compose_config(args)
    where = Path(run_dir) if run_dir is not None else Path("runs") / f"{task}-{device}" / "api"
    return run_configured(cfg, where)
