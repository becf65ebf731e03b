"""What every SR strategy ends with, whatever found the architecture: the final training
(resumable), ``model.pt``, ``arch.json``, the exported files (``search.sr.ship``), the baselines trained with the same
recipe, ``pareto.png``, ``report.md`` and the typed result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import tasks.sr as sr
from search import report
from search.console import say
from search.latency import LatencyEstimator, make_estimator
from search.result import Result, budget_rule, device_info
from search.settings import RunContext
from search.sr.baseline_cache import baseline_key, cache_path, load_cached, store
from search.sr.ship import calibration_sampler, export_all
from search.sr.task import SRData, SRSettings, baseline_archs, check_budget, load_data, train_and_evaluate
from spaces import save_arch
from tasks.sr.evaluate import evaluate
from tasks.sr.published import published as sr_published

PlotFn = Callable[[dict[str, Any], dict[str, Any], Path], None]


@dataclass(frozen=True)
class SRJob:
    """What every SR strategy shares: the run's context, the task's settings, its latency
    estimator (checked against the budget) and its data."""

    ctx: RunContext
    sr: SRSettings
    estimator: LatencyEstimator
    data: SRData
    floor_ms: float

    @staticmethod
    def prepare(ctx: RunContext) -> SRJob:
        sr_settings = SRSettings.from_task(ctx.task, ctx.settings.seed, ctx.train)
        estimator = make_estimator(ctx.device, ctx.latency, sr_settings.space.scale, sr.build_model)
        floor_ms = check_budget(sr_settings.space, estimator, ctx.settings.budget_ms)
        return SRJob(ctx, sr_settings, estimator, load_data(sr_settings, ctx.settings.seed), floor_ms)


@dataclass
class Found:
    """What a strategy found: the architecture, its latency, how it was found (``info``: e.g.
    ``trial``, ``val_psnr_proxy``), its trials, how to draw it (``plot(baselines, best, path)``),
    the runner's own result sections (``extras``) and optionally weights the final training
    fine-tunes instead of starting afresh (dnas: the supernet's)."""

    arch: Any
    latency_ms: float
    info: dict[str, Any]
    plot: PlotFn
    study: dict[str, Any]
    trials: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    init_state: dict[str, Any] | None = None


def finish_sr(job: SRJob, found: Found) -> Result:
    run_dir, arch, data = job.ctx.run_dir, found.arch, job.data
    model, best_scores = train_and_evaluate(arch, job.sr.final, data.final_patches, data.evals, "searched",
                                            checkpoint=run_dir / "final_checkpoint.pt", init_state=found.init_state)
    best_scores["val_psnr"] = evaluate(model, data.val, arch.scale)["psnr"] if data.val else None
    sr.save_weights(model, run_dir / "model.pt")
    save_arch(arch, run_dir / "arch.json", scale=arch.scale, latency_ms=found.latency_ms)
    files = export_all(model, arch, job.ctx.export, data.evals,
                       calibration_sampler(job.sr.train_root, arch.scale, job.ctx.settings.seed),
                       tuple(job.ctx.device.lr_hw), job.ctx.device.measure_threads, run_dir,
                       pytorch_scores=best_scores["eval"])
    baselines = train_baselines(job)
    best = {
        "arch": arch.to_dict(), "arch_key": arch.key, **found.info, "latency_ms": found.latency_ms,
        "latency_source": job.estimator.describe(), "latency_extrapolated": job.estimator.extrapolated.get(arch.key),
        "measured_latency_ms": _measure_on_host(model, job) if job.estimator.measured else None,
        **best_scores, "onnx_max_abs_diff": files.get("model.onnx", {}).get("max_abs_diff_vs_pytorch"),
        "export": files,
    }
    result = Result(task="sr", strategy=job.ctx.settings.strategy, device=device_info(job.ctx.device),
                    budget_ms=job.ctx.settings.budget_ms, budget_rule=budget_rule(job.ctx.settings, job.ctx.device), best=best,
                    study=found.study, trials=found.trials, extras={"baselines": baselines, **found.extras})
    found.plot(baselines, best, run_dir / "pareto.png")
    report.write_sr_report(result, run_dir / "report.md")
    return result


def train_baselines(job: SRJob) -> dict[str, Any]:
    """Every configured baseline trained with the winner's recipe and scored on the same sets."""
    baselines: dict[str, Any] = {}
    data, scale = job.data, job.sr.space.scale
    for name, base_arch in baseline_archs(job.sr.baselines, scale).items():
        base_model, scores = _trained_baseline(job, name, base_arch)
        scores["val_psnr"] = evaluate(base_model, data.val, scale)["psnr"]
        scores["arch"] = base_arch.to_dict()
        scores["latency_ms"] = _baseline_latency(job.estimator, base_arch)
        scores["recipe"] = f"task.final ({job.sr.final.steps} steps, {' + '.join(p.name for p in job.sr.train_root)})"
        scores["published"] = sr_published(base_arch.family, scale)
        if job.ctx.export.baselines and sr.num_params(base_model) > 0:  # bicubic: no weights to ship
            scores["export"] = _ship_baseline(job, name, base_model, base_arch, scores["eval"])
        baselines[name] = scores
    return baselines


def _trained_baseline(job: SRJob, name: str, arch: Any) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A baseline trained with task.final, or its weights from an earlier run with the same recipe."""
    recipe, data = job.sr.final, job.data
    key = baseline_key(arch, recipe, job.sr.train_root)
    model = sr.build_model(arch)
    cached = load_cached(model, key) if job.sr.baseline_cache and sr.num_params(model) > 0 else None
    if cached is not None:
        say(f"{name}: weights trained with this recipe in an earlier run ({cache_path(key)}); scoring them")
        return model, {"train_s": 0.0, "steps": recipe.steps, "params": sr.num_params(model),
                       "eval": sr.evaluate_sets(model, data.evals, arch.scale), "cached_from": str(cache_path(key)),
                       "trained_at": cached.get("trained_at")}
    model, scores = train_and_evaluate(arch, recipe, data.final_patches, data.evals, name,
                                       checkpoint=job.ctx.run_dir / f"baseline_{name}_checkpoint.pt")
    if job.sr.baseline_cache and sr.num_params(model) > 0:
        store(model, key, {"arch": arch.to_dict(), "steps": recipe.steps, "train_s": scores["train_s"],
                           "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "run_dir": str(job.ctx.run_dir)})
    return model, scores


def _ship_baseline(job: SRJob, name: str, model: torch.nn.Module, arch: Any,
                   pytorch_scores: dict[str, Any]) -> dict[str, Any]:
    """``export.baselines``: a trained baseline's files in ``baselines/<name>/``, made, scored and
    timed as the searched network's are."""
    out = job.ctx.run_dir / "baselines" / name
    out.mkdir(parents=True, exist_ok=True)
    written = export_all(model, arch, job.ctx.export, job.data.evals,
                         calibration_sampler(job.sr.train_root, arch.scale, job.ctx.settings.seed),
                         tuple(job.ctx.device.lr_hw), job.ctx.device.measure_threads, out,
                         label=f"baselines/{name}/", pytorch_scores=pytorch_scores)
    return {f"baselines/{name}/{file}": row for file, row in written.items()}


def _baseline_latency(estimator: LatencyEstimator, arch: Any) -> float | None:
    """Baselines outside the modelled space (e.g. FSRCNN under a per-block WDSR-B model) get None."""
    try:
        return estimator.latency_ms(arch)
    except (ValueError, TypeError, NotImplementedError, KeyError) as err:
        estimator.notes.append(f"{arch.family}: latency not modelled ({err})")
        return None


def _measure_on_host(model: torch.nn.Module, job: SRJob) -> float:
    import latency_models

    shape = (1, 3, *job.ctx.device.lr_hw)
    return latency_models.measure(model, shape, backend="torch-cpu", threads=job.ctx.device.measure_threads).median_ms
