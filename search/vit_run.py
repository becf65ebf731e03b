"""Orchestration of ``task=vit``: teacher, budget, keep-rate search, fine-tuning, the EViT
baseline at the same keep rates, export and reports."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tasks.vit as vit
from search import report
from search.errors import UserError
from search.latency import make_estimator
from search.progress import best_feasible
from search.settings import DeviceProfile, SearchSettings
from search.storage import redact
from search.study import open_study, run_study, search_only_result
from search.vit_task import (
    ViTObjective,
    ViTSettings,
    build_space,
    describe_trial,
    load_teacher,
    load_vit_data,
    pruned,
)
from spaces import arch_from_dict, save_arch


def run_vit(task: dict[str, Any], device: DeviceProfile, settings: SearchSettings,
            latency_cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = ViTSettings.from_task(task, settings.seed)
    data = load_vit_data(cfg, settings.seed)
    teacher, teacher_info = load_teacher(cfg, data, settings.seed)
    space = build_space(cfg, teacher, data.in_chans)
    shape = (cfg.batch, data.in_chans, cfg.img_size, cfg.img_size)
    kind = latency_cfg.get("kind", "auto")
    if (device.latency if kind == "auto" else kind) == "published":
        raise UserError(f"device={device.name} has published latency data for SR blocks only; for ViTs use "
                        "device=cpu, or collect timings on the device (python -m latency_models collect) "
                        "and pass latency=predictor latency.path=FILE")
    estimator = make_estimator(device, latency_cfg, 0, lambda arch: pruned(teacher, arch), shape)
    floor = space.arch((space.min_keep,) * len(space.stage_choices[0]))
    # The two references are timed alternately, three times each (least of the medians), so that a
    # burst of load elsewhere does not decide the budget or refuse a feasible one.
    rounds = []
    for _ in range(3):
        estimator.forget()
        rounds.append(estimator.latencies_ms([space.unpruned(), floor]))
    unpruned_ms, floor_ms = (min(values) for values in zip(*rounds))
    budget_ms = settings.budget_ms if settings.budget_given else cfg.budget_fraction * unpruned_ms
    settings = _with_budget(settings, budget_ms)
    if floor_ms > budget_ms:
        raise UserError(f"budget_ms={budget_ms:.2f} is below the most pruned model "
                        f"({floor_ms:.2f} ms at keep rate {space.min_keep}); raise it")
    print(f"task=vit {cfg.model_name} device={device.name}: unpruned {unpruned_ms:.2f} ms, budget "
          f"{budget_ms:.2f} ms; latency: {estimator.source}")

    study = open_study(settings)
    if not study.get_trials(deepcopy=False):  # the most pruned sampleable member first: a feasible floor
        low = space.ratio_range[0]
        study.enqueue_trial({f"keep_ratio_{i}": low for i in range(len(space.stage_choices[0]))})
    objective = ViTObjective(space, teacher, data, estimator, budget_ms, settings.near_budget, cfg.proxy,
                             two_objectives=settings.strategy == "nsga2")
    run_study(study, objective, settings, describe_trial)
    if not settings.run_final:  # a cluster worker: search only; the command without it trains the winner
        return search_only_result(study, settings, "vit", device.name)
    best = best_feasible(study)
    if best is None:
        raise UserError(f"no trained candidate met budget_ms={budget_ms:.2f}; raise search.n_trials or the budget")
    arch = arch_from_dict(best.user_attrs["arch"])
    print(f"best: trial #{best.number}, keep rates {arch.keep_rates}; fine-tuning with task.final "
          f"({cfg.final.steps} steps)", flush=True)

    student = pruned(teacher, arch)
    log = vit.train_selectors(student, copy.deepcopy(teacher), data.train, cfg.final)
    evit = vit.evit_baseline(copy.deepcopy(teacher), arch.keep_rates, arch.stages).eval()
    measured = {name: _measure(model, shape, device) for name, model in
                (("searched", student), ("evit", evit), ("unpruned", teacher))}
    top1 = {name: 100.0 * vit.evaluate_top1(model, data.test) for name, model in
            (("searched", student), ("evit", evit), ("unpruned", teacher))}
    val = {name: 100.0 * vit.evaluate_top1(model, data.val) for name, model in
           (("evit", evit), ("unpruned", teacher))}

    run_dir = settings.run_dir
    torch.save(student.state_dict(), run_dir / "model.pt")
    save_arch(arch, run_dir / "arch.json", latency_ms=best.user_attrs["latency_ms"])
    onnx_diff = _export(student, run_dir / "model.onnx", shape, data)
    baselines = {
        "evit": {"latency_ms": measured["evit"], "test_top1": top1["evit"], "val_top1": val["evit"],
                 "keep_rates": list(arch.keep_rates), "training": "none (EViT-style, class-token attention)"},
        "unpruned": {"latency_ms": measured["unpruned"], "test_top1": top1["unpruned"],
                     "val_top1": val["unpruned"], "teacher": teacher_info},
    }
    result = {
        "task": "vit",
        "device": {"name": device.name, "description": device.description, "threads": device.threads},
        "budget_ms": budget_ms,
        "budget_rule": "given" if settings.budget_given else f"{cfg.budget_fraction:g} x unpruned latency",
        "best": {"arch": arch.to_dict(), "arch_key": arch.key, "trial": best.number,
                 "latency_ms": best.user_attrs["latency_ms"], "measured_latency_ms": measured["searched"],
                 "latency_source": estimator.describe(), "test_top1": top1["searched"],
                 "top1_drop_vs_teacher": top1["unpruned"] - top1["searched"],
                 "finetune": {"steps": log.steps, "seconds": round(log.seconds, 1)},
                 "onnx_max_abs_diff": onnx_diff},
        "baselines": baselines,
        "trials": report.trial_summary(study),
        "study": {"name": settings.study_name, "storage": redact(settings.storage), "strategy": settings.strategy},
    }
    report.write_pareto(study, budget_ms, baselines, run_dir / "pareto.png",
                        title=f"ViT token pruning on {device.name}: validation top-1 vs latency",
                        quality_key="val_top1", quality_label="top-1 (%)")
    _write_report(result, run_dir / "report.md")
    return result


def _with_budget(settings: SearchSettings, budget_ms: float) -> SearchSettings:
    from dataclasses import replace

    return replace(settings, budget_ms=budget_ms)


def _measure(model: torch.nn.Module, shape: tuple[int, ...], device: DeviceProfile) -> float:
    import latency_models

    return latency_models.measure(model.eval(), shape, backend="torch-cpu", threads=device.threads or 1).median_ms


def _export(model: torch.nn.Module, path: Path, shape: tuple[int, ...], data: Any) -> float:
    images = next(iter(vit.data.iter_batches(data.test, shape[0])))[0][: shape[0]]
    vit.export_onnx(model, path, shape)
    with torch.inference_mode():
        expected = model.eval()(images).numpy()
    got = vit.run_onnx(path, images)
    diff = float(np.abs(got - expected).max())
    if diff > 1e-3:
        raise UserError(f"ONNX export of the pruned ViT differs from PyTorch by {diff:.2e}")
    return diff


def _write_report(result: dict[str, Any], path: Path) -> None:
    best, base = result["best"], result["baselines"]
    rows = [
        "| model | keep rates | measured latency (ms) | held-out top-1 (%) |",
        "| --- | --- | --- | --- |",
        f"| **searched, fine-tuned selectors** | {best['arch']['keep_rates']} | "
        f"{best['measured_latency_ms']:.2f} | {best['test_top1']:.2f} |",
        f"| EViT-style, training-free | {base['evit']['keep_rates']} | {base['evit']['latency_ms']:.2f} | "
        f"{base['evit']['test_top1']:.2f} |",
        f"| unpruned teacher | 1.0 | {base['unpruned']['latency_ms']:.2f} | {base['unpruned']['test_top1']:.2f} |",
    ]
    meets = best["measured_latency_ms"] <= result["budget_ms"]
    lines = [
        f"# ViT token-pruning search on {result['device']['name']}",
        "",
        f"Budget: {result['budget_ms']:.2f} ms ({result['budget_rule']}); "
        f"latency source: {best['latency_source']['source']}.",
        f"Searched keep rates {best['arch']['keep_rates']} at stages {best['arch']['stages']} "
        f"(trial #{best['trial']}, {result['study']['strategy']}).",
        f"Measured after fine-tuning: {best['measured_latency_ms']:.2f} ms, "
        f"{'within' if meets else 'OVER'} the budget; top-1 drop vs teacher "
        f"{best['top1_drop_vs_teacher']:.2f} points.",
        "",
        *rows,
        "",
        f"Trials: {result['trials']['n_total']} in total, {result['trials']['n_trained']} trained, "
        f"{result['trials']['n_feasible']} within budget. See pareto.png.",
        "",
    ]
    path.write_text("\n".join(lines))
