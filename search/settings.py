"""Typed settings read from the Hydra config at the boundary; nothing below sees DictConfig."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from search.errors import UserError
from search.fidelity import NO_RUNGS, Fidelity
from search.train_settings import TrainSettings

STRATEGIES = ("tpe", "nsga2", "random", "allinone", "dnas")
# Threads where the device names none (its latency is modelled, e.g. s21): a host timing (a final
# check) uses one, the most repeatable. Training threads are train.threads (search.train_settings).
MEASURE_THREADS = 1


def cache_root() -> Path:
    """Where trained things are kept between runs: ``$HWNAS_CACHE``, else ``~/.cache/hwnas``."""
    return Path(os.environ.get("HWNAS_CACHE", Path.home() / ".cache" / "hwnas"))


def _get(cfg: DictConfig, path: str) -> Any:
    value = OmegaConf.select(cfg, path, throw_on_missing=False)
    if value is None:
        return None
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | list) else value


def _number(value: Any, name: str, *, positive: bool = True) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name}={value!r} is not a number; e.g. {name}=33.3") from None
    if not math.isfinite(number):
        raise UserError(f"{name}={value!r} must be a finite number")
    if positive and not number > 0:
        raise UserError(f"{name}={value!r} must be positive")
    return number


def _int(value: Any, name: str, *, minimum: int = 0) -> int:
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or int(value) != value):
        raise UserError(f"{name}={value!r} must be an integer")
    if value < minimum:
        raise UserError(f"{name}={value!r} must be at least {minimum}")
    return int(value)


def run_storage(run_dir: Path) -> str:
    """The default study storage: SQLite in the run directory (not shared with other workers)."""
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


@dataclass(frozen=True)
class DeviceProfile:
    """The hardware target: its input resolution, budget and default latency model."""

    name: str
    description: str
    lr_hw: tuple[int, int]
    budget_ms: float
    latency: str
    threads: int | None            # as configured; None: the device fixes none

    @property
    def measure_threads(self) -> int:
        """torch threads for timing on this host."""
        return self.threads or MEASURE_THREADS

    @staticmethod
    def from_cfg(cfg: DictConfig) -> DeviceProfile:
        dev = cfg.device
        try:
            lr_hw = tuple(int(v) for v in dev.lr_hw)
            if len(lr_hw) != 2 or min(lr_hw) < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise UserError(f"device.lr_hw={dev.lr_hw!r} must be [height, width] in pixels") from None
        threads = dev.threads
        return DeviceProfile(
            name=str(dev.name),
            description=str(dev.description),
            lr_hw=lr_hw,  # type: ignore[arg-type]
            budget_ms=_number(dev.budget_ms, "device.budget_ms"),
            latency=str(dev.latency),
            threads=None if threads is None else _int(threads, "device.threads", minimum=1),
        )


@dataclass(frozen=True)
class SearchSettings:
    """How the study runs: sampler, size, storage, seed and where outputs go."""

    strategy: str
    strategy_options: dict[str, Any]
    n_trials: int
    timeout_s: float
    storage: str
    study_name: str
    near_budget: float
    budget_ms: float
    seed: int
    run_dir: Path
    heartbeat_s: int          # workers' heartbeat period; see search/study/storage.py
    grace_s: int              # a RUNNING trial silent this long is failed and re-queued
    max_retry: int            # how often one trial's parameters are re-queued at most
    run_final: bool           # False: search only (cluster workers); one final command trains
    budget_given: bool        # False: budget_ms came from the device (a task may derive its own)
    fidelity: Fidelity = NO_RUNGS  # rungs of proxy steps and the pruner (search/study/fidelity.py)

    @staticmethod
    def from_cfg(cfg: DictConfig, device: DeviceProfile, run_dir: Path) -> SearchSettings:
        strategy = strategy_section(cfg)
        name = strategy.pop("name", None)
        if name not in STRATEGIES:
            raise UserError(f"unknown strategy {name!r}; choose strategy=" + "|".join(STRATEGIES))
        budget = cfg.budget_ms
        budget_ms = device.budget_ms if budget is None else _number(budget, "budget_ms")
        storage = cfg.search.storage or run_storage(run_dir)
        study_name = cfg.search.study_name or f"{cfg.task.name}-{device.name}-{budget_ms:g}ms-{name}"
        near = _number(cfg.search.near_budget, "search.near_budget")
        if near < 1.0:
            raise UserError(f"search.near_budget={near} must be >= 1 (1.1 trains candidates up to 10% over)")
        return SearchSettings(
            strategy=name,
            strategy_options=strategy,
            n_trials=_int(cfg.search.n_trials, "search.n_trials", minimum=1),
            timeout_s=_number(cfg.search.timeout_s, "search.timeout_s"),
            storage=str(storage),
            study_name=str(study_name),
            near_budget=near,
            budget_ms=budget_ms,
            seed=_int(cfg.seed, "seed"),
            run_dir=run_dir,
            heartbeat_s=_int(cfg.search.heartbeat_s, "search.heartbeat_s", minimum=1),
            grace_s=_int(cfg.search.grace_s, "search.grace_s", minimum=2),
            max_retry=_int(cfg.search.max_retry, "search.max_retry"),
            run_final=bool(cfg.search.run_final),
            budget_given=budget is not None,
            fidelity=_fidelity(cfg, name),
        )


def _fidelity(cfg: DictConfig, strategy: str) -> Fidelity:
    f = cfg.search.fidelity
    can_prune = cfg.task.name == "sr" and strategy in ("tpe", "random")
    pruner = str(f.pruner)
    if pruner == "auto":
        pruner = "halving" if can_prune else "none"
    fidelity = Fidelity(pruner, _int(f.min_steps, "search.fidelity.min_steps", minimum=1),
                        _int(f.reduction_factor, "search.fidelity.reduction_factor", minimum=2))
    if fidelity.staged and not can_prune:
        raise UserError(f"search.fidelity.pruner={fidelity.pruner} stops SR proxy trainings of one-objective "
                        f"studies (task=sr, strategy=tpe or random), not task={cfg.task.name} strategy={strategy}; "
                        "use search.fidelity.pruner=none")
    return fidelity


def strategy_section(cfg: DictConfig) -> dict[str, Any]:
    """The strategy's settings (experiment=smoke's overlay already composed in)."""
    return dict(_get(cfg, "strategy") or {})


def task_section(cfg: DictConfig) -> dict[str, Any]:
    """The task's settings as a plain dict, with the top-level short forms (``data.root=...``,
    ``model.name=...``) merged in where given."""
    task = OmegaConf.to_container(cfg.task, resolve=True)
    assert isinstance(task, dict)
    for section in ("data", "model"):
        given = {k: v for k, v in (_get(cfg, section) or {}).items() if v is not None}
        if given:
            task[section] = {**(task.get(section) or {}), **given}
    return task


EXPORT_FORMATS = ("onnx", "tflite")
TFLITE_PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ExportSettings:
    """What the found network ships as (``export:`` in conf/config.yaml), checked before any work."""

    formats: tuple[str, ...]
    precision: tuple[str, ...]
    calibration_patches: int
    calibration_candidates: int
    baselines: bool = False

    @staticmethod
    def from_cfg(cfg: DictConfig) -> ExportSettings:
        formats, precision = tuple(cfg.export.formats), tuple(cfg.export.precision)
        for key, given, known in (("formats", formats, EXPORT_FORMATS), ("precision", precision, TFLITE_PRECISIONS)):
            bad = [v for v in given if v not in known]
            if bad or not given:
                raise UserError(f"export.{key}={list(given)}: choose from {list(known)}, e.g. "
                                f"'export.{key}=[{known[0]}]'")
        n = int(cfg.export.calibration_patches)
        if "int8" in precision and "tflite" in formats and n < 1:
            raise UserError(f"export.calibration_patches={n}: INT8 needs at least 1 (e.g. 64)")
        k = int(cfg.export.calibration_candidates)
        if "int8" in precision and "tflite" in formats and k < 1:
            raise UserError(f"export.calibration_candidates={k}: INT8 needs at least 1 (e.g. 4)")
        export = ExportSettings(formats, precision, n, k, bool(cfg.export.baselines))
        if "tflite" in formats:
            _check_tflite_installed()
        return export


def _check_tflite_installed() -> None:
    from tasks.litert import missing_modules

    missing = missing_modules()
    if missing:
        raise UserError(f"export.formats has tflite but {', '.join(missing)} is not installed: "
                        "pip install -e '.[tflite]', or export.formats=[onnx]")


@dataclass(frozen=True)
class RunContext:
    """Everything a runner needs, parsed at the boundary: ``run(ctx) -> Result``."""

    task: dict[str, Any]
    device: DeviceProfile
    settings: SearchSettings
    latency: dict[str, Any]
    operating_points: dict[str, Any] | None
    smoke: bool
    export: ExportSettings
    train: TrainSettings

    @property
    def run_dir(self) -> Path:
        return self.settings.run_dir
