"""Training curves and trial metrics for an experiment tracker (``logger=`` in conf/config.yaml):
``tensorboard`` writes ``<run dir>/tensorboard/``; ``mlflow`` logs one MLflow run (the tracking URI
from ``MLFLOW_TRACKING_URI``, else the SQLite file ``<run dir>/mlflow.db``) with the run's resolved config as params,
the storage password masked. Each is an optional extra (``pip install -e '.[tensorboard]'`` or
``'.[mlflow]'``); the console and the job log show the same progress either way.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from search.errors import UserError

LOGGERS = {"none": None, "tensorboard": "tensorboard", "mlflow": "mlflow"}  # name -> module it needs
_active: list[Any] = []


def check_logger(name: str) -> None:
    """Refuse an unknown logger, or one whose extra is not installed, before any work."""
    if name not in LOGGERS:
        raise UserError(f"logger={name}: choose one of {', '.join(LOGGERS)}")
    module = LOGGERS[name]
    if module is not None and importlib.util.find_spec(module) is None:
        raise UserError(f"logger={name} needs the {name} extra: pip install -e '.[{name}]', or logger=none")


@contextmanager
def tracking(name: str, run_dir: Path, params: dict[str, Any]) -> Iterator[None]:
    """While open, :func:`scalar` reaches the tracker ``name`` (nothing for ``none``)."""
    check_logger(name)
    tracker = {"none": None, "tensorboard": _TensorBoard, "mlflow": _MLflow}[name]
    if tracker is None:
        yield
        return
    opened = tracker(run_dir, params)
    _active.append(opened)
    try:
        yield
    finally:
        _active.remove(opened)
        opened.close()


def scalar(tag: str, value: float, step: int) -> None:
    """One point of a curve (``train/<label>/l1`` by step, ``trial/<metric>`` by trial number)."""
    for tracker in _active:
        tracker.scalar(tag, float(value), int(step))


class _TensorBoard:
    def __init__(self, run_dir: Path, params: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, run_dir: Path, params: dict[str, Any]) -> None:
        import mlflow

        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(sqlite_uri(run_dir))
        mlflow.start_run(run_name=run_dir.name)
        mlflow.log_params(_flat(params))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.mlflow.log_metric(tag.replace("#", "_"), value, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def sqlite_uri(run_dir: Path) -> str:
    """The run's own MLflow store (MLflow's file store is deprecated; SQLite needs no server)."""
    return f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]  # MLflow caps a param's value
    return out
