"""Orchestration of ``task=sr``: data, latency, study, final training, baselines, outputs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import tasks.sr as sr
from search import report
from search.errors import UserError
from search.latency import make_estimator
from search.progress import best_feasible
from search.settings import DeviceProfile, SearchSettings, run_storage
from search.sr_task import (
    Objective,
    SRSettings,
    baseline_archs,
    check_budget,
    describe_trial,
    load_data,
    train_and_evaluate,
)
from search.startup import feasible_design
from search.storage import redact
from search.study import open_study, run_study, search_only_result
from spaces import ArchError, arch_from_dict, save_arch
from tasks.sr.evaluate import evaluate


def winner(study: Any, space: Any, budget_ms: float) -> tuple[Any, Any]:
    """The best trained trial within budget and its architecture, which must lie in ``space``."""
    best = best_feasible(study)
    if best is None:
        raise UserError(f"no trained candidate met budget_ms={budget_ms:g}; raise search.n_trials or "
                        "search.timeout_s, or the budget")
    arch = arch_from_dict(best.user_attrs["arch"])
    try:
        space.validate(arch)
    except ArchError as err:  # a study made before trial meanings were recorded may hold such trials
        raise UserError(f"the study's best trial #{best.number} lies outside this run's space ({err}); "
                        "use another search.study_name") from None
    return best, arch


def trial_meaning(sr_settings: SRSettings, estimator: Any) -> dict[str, Any]:
    """What changes the meaning of a trial's PSNR and latency: a study only holds one of these."""
    proxy = {k: v for k, v in dataclasses.asdict(sr_settings.proxy).items() if k not in ("threads", "checkpoint_every")}
    return {"space": dataclasses.asdict(sr_settings.space), "train_root": str(sr_settings.train_root),
            "val_images": sr_settings.val_images, "proxy": proxy, "latency": estimator.source}


def run_sr(task: dict[str, Any], device: DeviceProfile, settings: SearchSettings,
           latency_cfg: dict[str, Any]) -> dict[str, Any]:
    if settings.strategy == "dnas":  # one supernet instead of a study; same outputs (train_and_write)
        from search.dnas import run_dnas

        return run_dnas(task, device, settings, latency_cfg)
    threads = device.threads or 2
    sr_settings = SRSettings.from_task(task, settings.seed, threads)
    scale = sr_settings.space.scale
    estimator = make_estimator(device, latency_cfg, scale, sr.build_model)
    floor_ms = check_budget(sr_settings.space, estimator, settings.budget_ms)
    proxy_patches, final_patches, val, evals = load_data(sr_settings, settings.seed)
    print(f"task=sr x{scale} device={device.name} budget {settings.budget_ms:g} ms "
          f"(smallest architecture {floor_ms:.2f} ms); latency: {estimator.source}")
    print(f"search: {settings.strategy}, {settings.n_trials} trials, study {settings.study_name} "
          f"in {redact(settings.storage)}")

    study = open_study(settings, trial_meaning(sr_settings, estimator))
    if not study.get_trials(deepcopy=False):
        # A known-feasible first candidate (the cheapest member; check_budget proved it fits), so
        # that even a tiny study ends with a trained architecture within the budget.
        study.enqueue_trial(sr_settings.space.params_of(sr_settings.space.smallest()))
        # Not on a shared study: workers starting together would each enqueue it, and the
        # surplus would outlive n_trials as waiting trials. At most n_trials - 1 (the cheapest above).
        local = settings.storage == run_storage(settings.run_dir)
        n_start = min(int(settings.strategy_options.get("feasible_startup", 0)), settings.n_trials - 1)
        if n_start > 0 and local and not estimator.measured:  # see search.startup: a cheap latency model only
            design = feasible_design(sr_settings.space, estimator.latencies_ms, settings.budget_ms, n_start,
                                     settings.seed)
            for arch in design:
                study.enqueue_trial(sr_settings.space.params_of(arch))
            print(f"start: {len(design)} feasible architectures, trunk widths in turn "
                  f"({', '.join(f'C{a.channels} x{a.depth}' for a in design)})", flush=True)
    objective = Objective(sr_settings, estimator, settings.budget_ms, settings.near_budget,
                          proxy_patches, val, two_objectives=settings.strategy == "nsga2")
    run_study(study, objective, settings, describe_trial, catch=(sr.DivergedError,))
    if not settings.run_final:  # a cluster worker: search only; the command without it trains the winner
        return search_only_result(study, settings, "sr", device.name)
    best, arch = winner(study, sr_settings.space, settings.budget_ms)
    print(f"best: trial #{best.number}, {arch.depth} blocks, C={arch.channels}, "
          f"{best.user_attrs['latency_ms']:.2f} ms; training it with task.final "
          f"({sr_settings.final.steps} steps)")

    study_info = {"name": settings.study_name, "storage": redact(settings.storage), "strategy": settings.strategy}

    def plot(baselines: dict[str, Any], best_entry: dict[str, Any], path: Path) -> None:
        report.write_pareto(study, settings.budget_ms, baselines, path,
                            title=f"SR x{scale} on {device.name}: validation PSNR-Y vs latency")

    return train_and_write(
        arch, best.user_attrs["latency_ms"], {"trial": best.number, "val_psnr_proxy": best.user_attrs["val_psnr"]},
        sr_settings, estimator, device, settings, final_patches, val, evals,
        trials=report.trial_summary(study), study=study_info, plot=plot,
    )


def train_and_write(
    arch: Any, latency_ms: float, found: dict[str, Any], sr_settings: SRSettings, estimator: Any,
    device: DeviceProfile, settings: SearchSettings, final_patches: Any, val: list[Any],
    evals: dict[str, list[Any]], trials: dict[str, Any], study: dict[str, Any],
    plot: Callable[[dict[str, Any], dict[str, Any], Path], None], extra: dict[str, Any] | None = None,
    init_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Whatever strategy found ``arch``: train it with ``task.final`` (resumable), write
    ``model.pt``, ``arch.json``, ``model.onnx``, train the baselines with the same recipe, draw
    ``plot(baselines, best, path)`` into ``pareto.png``, write ``report.md``; returns the result.
    ``found`` (e.g. ``trial``, ``val_psnr_proxy``) and ``extra`` go into the result as they are.
    ``init_state``: the final training fine-tunes these weights (dnas: the supernet's) instead of
    starting afresh; baselines always start afresh."""
    scale = arch.scale
    run_dir = settings.run_dir
    model, best_scores = train_and_evaluate(
        arch, sr_settings.final, final_patches, evals, "searched",
        checkpoint=run_dir / "final_checkpoint.pt", init_state=init_state,
    )
    best_scores["val_psnr"] = evaluate(model, val, scale)["psnr"] if val else None
    sr.save_weights(model, run_dir / "model.pt")
    save_arch(arch, run_dir / "arch.json", scale=scale, latency_ms=latency_ms)
    onnx_diff = sr.export_onnx(model, run_dir / "model.onnx", check=True)

    baselines: dict[str, Any] = {}
    for name, base_arch in baseline_archs(sr_settings.baselines, scale).items():
        base_model, scores = train_and_evaluate(base_arch, sr_settings.final, final_patches, evals, name)
        scores["val_psnr"] = evaluate(base_model, val, scale)["psnr"]
        scores["arch"] = base_arch.to_dict()
        scores["latency_ms"] = _baseline_latency(estimator, base_arch)
        baselines[name] = scores

    measured_ms = _measure_on_host(model, device) if estimator.measured else None
    result = {
        "task": "sr",
        "device": {"name": device.name, "description": device.description, "lr_hw": list(device.lr_hw)},
        "budget_ms": settings.budget_ms,
        "best": {
            "arch": arch.to_dict(),
            "arch_key": arch.key,
            **found,
            "latency_ms": latency_ms,
            "latency_source": estimator.describe(),
            "latency_extrapolated": estimator.extrapolated.get(arch.key),
            "measured_latency_ms": measured_ms,
            **best_scores,
            "onnx_max_abs_diff": onnx_diff,
        },
        "baselines": baselines,
        "trials": trials,
        "study": study,
        **(extra or {}),
    }
    plot(baselines, result["best"], run_dir / "pareto.png")
    report.write_sr_report(result, run_dir / "report.md")
    return result


def _baseline_latency(estimator: Any, arch: Any) -> float | None:
    """Baselines outside the modelled space (e.g. FSRCNN under a per-block WDSR-B model) get None."""
    try:
        return estimator.latency_ms(arch)
    except (ValueError, TypeError, NotImplementedError, KeyError) as err:
        estimator.notes.append(f"{arch.family}: latency not modelled ({err})")
        return None


def _measure_on_host(model: torch.nn.Module, device: DeviceProfile) -> float:
    import latency_models

    shape = (1, 3, *device.lr_hw)
    return latency_models.measure(model, shape, backend="torch-cpu", threads=device.threads or 1).median_ms
