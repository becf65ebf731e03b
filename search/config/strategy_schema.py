"""Schemas of conf/strategy/: field types here, values in the YAML (see :mod:`search.config.schema`)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class TPEConf:
    name: str = MISSING
    n_startup_trials: int = MISSING
    multivariate: bool = MISSING
    feasible_startup: int = MISSING


@dataclass
class NSGA2Conf:
    name: str = MISSING
    population_size: int = MISSING
    feasible_startup: int = MISSING


@dataclass
class RandomConf:
    name: str = MISSING


@dataclass
class DNASConf:
    name: str = MISSING
    warmup_steps: int = MISSING
    width_steps: int = MISSING
    joint_steps: int = MISSING
    batch_size: int = MISSING
    patch_hr: int = MISSING
    lr: float = MISSING
    lr_final: float = MISSING
    arch_lr: float = MISSING
    arch_optimizer: str = MISSING
    latency_lambda: float = MISSING
    arch_from: str = MISSING
    tau_start: float = MISSING
    tau_end: float = MISSING
    search_channels: bool = MISSING
    derive: str = MISSING
    threshold: float = MISSING
    tolerance: float = MISSING
    select: str = MISSING
    select_steps: int = MISSING
    select_lr: float = MISSING
    select_share: float = MISSING
    final_init: str = MISSING
    calibrate_steps: int = MISSING
    checkpoint_every: int = MISSING
    eval_every: int = MISSING


@dataclass
class AllInOneConf:
    name: str = MISSING
    target: float = MISSING
    level: float | None = MISSING
    spare_levels: int = MISSING
    level_step: float = MISSING
    headroom: float = MISSING
    band: float = MISSING
    channels: int = MISSING
    m1: int = MISSING
    m2: int = MISSING
    points: list[str] | None = MISSING
    n_random: int | None = MISSING
    top_weight: float = MISSING
    governor: bool = MISSING
    observations: int = MISSING
    compare_alone: bool = MISSING
    search_rounds: int = MISSING
    final_rounds: int = MISSING
    switch_trials: int = MISSING
    eval_sets: list[str] | None = MISSING
    measure: dict[str, int] = MISSING
