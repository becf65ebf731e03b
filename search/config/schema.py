"""Schemas of conf/: field types here, values in the YAML (``MISSING`` means a YAML sets it).

A field with a value here is one no YAML sets: that value is its only default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from search.config.strategy_schema import AllInOneConf, DNASConf, NSGA2Conf, RandomConf, TPEConf

# OmegaConf reads these annotations at run time; `X | None` is not understood there, so Optional.


@dataclass
class FidelityConf:
    pruner: str = MISSING
    min_steps: int = MISSING
    reduction_factor: int = MISSING


@dataclass
class SearchConf:
    n_trials: int = MISSING
    timeout_s: float = MISSING
    storage: str | None = MISSING
    study_name: str | None = MISSING
    near_budget: float = MISSING
    run_final: bool = MISSING
    heartbeat_s: int = MISSING
    grace_s: int = MISSING
    max_retry: int = MISSING
    worker: int = MISSING
    fidelity: FidelityConf = field(default_factory=FidelityConf)


@dataclass
class DeviceConf:
    name: str = MISSING
    description: str = MISSING
    lr_hw: list[int] = MISSING
    budget_ms: float = MISSING
    latency: str = MISSING
    threads: int | None = MISSING
    operating_points: dict[str, Any] | None = MISSING  # strategy=allinone; null where a device has none


@dataclass
class ShortData:
    train_root: Any = MISSING  # as task.data.train_root
    eval_roots: Any = MISSING  # null or {name: folder}; Optional[Dict] cannot take a dict over null (OmegaConf)
    root: str | None = MISSING


@dataclass
class ShortModel:
    name: str | None = MISSING
    checkpoint: str | None = MISSING


@dataclass
class ExportConf:
    formats: list[str] = MISSING
    precision: list[str] = MISSING
    calibration_patches: int = MISSING
    calibration_candidates: int = MISSING
    baselines: bool = MISSING


@dataclass
class TrainConf:
    device: str = MISSING
    amp: str = MISSING
    threads: int | None = MISSING


@dataclass
class Config:
    task: Any = MISSING
    device: DeviceConf = field(default_factory=DeviceConf)
    strategy: Any = MISSING
    latency: Any = MISSING
    budget_ms: float | None = MISSING
    seed: int = MISSING
    data: ShortData = field(default_factory=ShortData)
    model: ShortModel = field(default_factory=ShortModel)
    profile: str = MISSING
    logger: str = MISSING
    search: SearchConf = field(default_factory=SearchConf)
    export: ExportConf = field(default_factory=ExportConf)
    train: TrainConf = field(default_factory=TrainConf)


# --- task=sr, task=vit -------------------------------------------------------------------------

@dataclass
class SRSpaceConf:
    min_blocks: int = MISSING
    max_blocks: int = MISSING
    channels: list[int] = MISSING
    m1: list[int] = MISSING
    m2: list[int] = MISSING


@dataclass
class SRDataConf:
    train_root: Any = MISSING  # null, a folder, or a list of folders / shipped set names (T91, BSDS200)
    eval_roots: Any = MISSING  # null or {name: folder}; Optional[Dict] cannot take a dict over null (OmegaConf)
    val_images: int = MISSING


@dataclass
class SRRecipeConf:
    steps: int = MISSING
    batch_size: int = MISSING
    patch_hr: int = MISSING
    lr: float = MISSING


@dataclass
class SRTask:
    name: str = MISSING
    scale: int = MISSING
    space: SRSpaceConf = field(default_factory=SRSpaceConf)
    data: SRDataConf = field(default_factory=SRDataConf)
    proxy: SRRecipeConf = field(default_factory=SRRecipeConf)
    final: SRRecipeConf = field(default_factory=SRRecipeConf)
    baselines: list[str] = MISSING
    baseline_cache: bool = MISSING


@dataclass
class ViTModelConf:
    name: str = MISSING
    checkpoint: str | None = MISSING
    img_size: int = MISSING
    num_classes: int = MISSING


@dataclass
class ViTDataConf:
    root: str | None = MISSING
    val_images: int = MISSING


@dataclass
class ViTTeacherConf:
    epochs: Any = MISSING  # int or float (0.3 in the smoke profile); it keys the teacher cache as written
    batch_size: int = MISSING
    lr: float = MISSING


@dataclass
class ViTProxyConf:
    steps: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING


@dataclass
class ViTFinalConf(ViTProxyConf):
    backbone_lr: float = MISSING
    hard_steps: int = MISSING


@dataclass
class ViTPredictorConf:
    samples: int = MISSING
    quantile: float | None = MISSING


@dataclass
class ViTTask:
    name: str = MISSING
    model: ViTModelConf = field(default_factory=ViTModelConf)
    stages: list[int] | None = MISSING
    keep_ratio: list[float] = MISSING
    min_keep: float = MISSING
    budget_fraction: float = MISSING
    confirm_margin: float = MISSING
    batch: int = MISSING
    runtime: str = MISSING
    predictor: ViTPredictorConf = field(default_factory=ViTPredictorConf)
    data: ViTDataConf = field(default_factory=ViTDataConf)
    teacher: ViTTeacherConf = field(default_factory=ViTTeacherConf)
    proxy: ViTProxyConf = field(default_factory=ViTProxyConf)
    final: ViTFinalConf = field(default_factory=ViTFinalConf)


# --- latency models -----------------------------------------------------------------------------

@dataclass
class LatencyConf:
    kind: str = MISSING
    # A space reaching outside the latency model's fitted range is refused; true: search it, and
    # result.json flags every extrapolated prediction.
    allow_extrapolation: bool = False


@dataclass
class MeasuredLatencyConf(LatencyConf):
    # The protocol's only defaults: All-in-One's thread points time with it under any latency=.
    # Bounded so that timing one candidate costs seconds, not minutes, on a busy machine.
    backend: str = "torch-cpu"
    warmup: int = 3
    min_repeats: int = 7
    max_repeats: int = 25
    max_seconds: float = 10.0


@dataclass
class PredictorLatencyConf(LatencyConf):
    path: str | None = MISSING
    quantile: float | None = MISSING


SCHEMAS: dict[tuple[str | None, str], Any] = {
    (None, "schema"): Config,
    ("schema/task", "sr"): SRTask,
    ("schema/task", "vit"): ViTTask,
    ("schema/strategy", "tpe"): TPEConf,
    ("schema/strategy", "nsga2"): NSGA2Conf,
    ("schema/strategy", "random"): RandomConf,
    ("schema/strategy", "dnas"): DNASConf,
    ("schema/strategy", "allinone"): AllInOneConf,
    ("schema/latency", "plain"): LatencyConf,
    ("schema/latency", "measured"): MeasuredLatencyConf,
    ("schema/latency", "predictor"): PredictorLatencyConf,
}


def register() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent); call before composing conf/. Each
    YAML of a group names its own, e.g. ``- /schema/task/sr@_here_`` in conf/task/sr.yaml."""
    store = ConfigStore.instance()
    for (group, name), node in SCHEMAS.items():
        store.store(group=group, name=name, node=node)
