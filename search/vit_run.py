"""Orchestration of ``task=vit``: teacher, budget, keep-rate search, fine-tuning, the EViT
baseline at the same keep rates, export and reports."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tasks.vit as vit
from search import report
from search.errors import UserError
from search.latency import make_estimator
from search.progress import is_feasible
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
from spaces.atomic import atomic_path, write_text_atomic


@dataclass
class ViTSetup:
    """What every ViT strategy shares: settings, data, teacher, space, estimator and budget."""

    cfg: ViTSettings
    settings: SearchSettings
    device: DeviceProfile
    data: Any
    teacher: torch.nn.Module
    teacher_info: dict[str, Any]
    space: Any
    shape: tuple[int, ...]
    estimator: Any
    budget_ms: float


def prepare_vit(task: dict[str, Any], device: DeviceProfile, settings: SearchSettings,
                latency_cfg: dict[str, Any]) -> ViTSetup:
    """Data, teacher (trained once and cached), space, latency estimator and the budget."""
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
    floor = space.most_pruned()
    # The two references are timed alternately, three times each (least of the medians), so that a
    # burst of load elsewhere does not decide the budget or refuse a feasible one.
    rounds = []
    for _ in range(3):
        estimator.forget()
        rounds.append(estimator.latencies_ms([space.unpruned(), floor]))
    unpruned_ms, floor_ms = (min(values) for values in zip(*rounds))
    budget_ms = settings.budget_ms if settings.budget_given else cfg.budget_fraction * unpruned_ms
    if floor_ms > budget_ms:
        raise UserError(f"budget_ms={budget_ms:.2f} is below the most pruned model "
                        f"({floor_ms:.2f} ms at keep rate {space.min_keep}); raise it")
    print(f"task=vit {cfg.model_name} device={device.name}: unpruned {unpruned_ms:.2f} ms, budget "
          f"{budget_ms:.2f} ms; latency: {estimator.source}")
    return ViTSetup(cfg, _with_budget(settings, budget_ms), device, data, teacher, teacher_info, space, shape,
                    estimator, budget_ms)


def run_vit(task: dict[str, Any], device: DeviceProfile, settings: SearchSettings,
            latency_cfg: dict[str, Any]) -> dict[str, Any]:
    """Optuna over keep rates (TPE, NSGA-II or random), then :func:`finish_vit` on the best."""
    setup = prepare_vit(task, device, settings, latency_cfg)
    settings, space, budget_ms = setup.settings, setup.space, setup.budget_ms
    study = open_study(settings)
    if not study.get_trials(deepcopy=False):  # the most pruned sampleable member first: a feasible floor
        low = space.ratio_range[0]
        study.enqueue_trial({f"keep_ratio_{i}": low for i in range(len(space.stage_choices[0]))})
    objective = ViTObjective(space, setup.teacher, setup.data, setup.estimator, budget_ms, settings.near_budget,
                             setup.cfg.proxy, two_objectives=settings.strategy == "nsga2")
    run_study(study, objective, settings, describe_trial)
    if not settings.run_final:  # a cluster worker: search only; the command without it trains the winner
        return search_only_result(study, settings, "vit", device.name)
    best = confirmed_best(setup, study)
    if best is None:
        raise UserError(f"no trained candidate met budget_ms={budget_ms:.2f}; raise search.n_trials or the budget")
    arch = arch_from_dict(best.user_attrs["arch"])
    print(f"best: trial #{best.number}, keep rates {arch.keep_rates}; fine-tuning with task.final "
          f"({setup.cfg.final.steps} steps)", flush=True)
    result = finish_vit(setup, arch, best.user_attrs["latency_ms"], f"trial #{best.number}", study)
    result["best"]["trial"] = best.number
    return result


def confirmed_best(setup: ViTSetup, study: Any, max_checks: int = 8, rounds: int = 5) -> Any:
    """The best feasible trial that still meets the budget when timed again with the final
    statistic (least of ``rounds`` interleaved round medians).

    One timing per trial lets noise pick winners: of many candidates near the budget, those timed
    low pass (measured here: a winner timed within 16.11 ms ran 18.12 ms after fine-tuning). The
    best ``max_checks`` feasible trials are re-timed in order of quality (if none holds, the
    fastest feasible trial is taken); modelled latencies (a predictor) need no second look. Where
    the budget is a fraction of the unpruned model's latency, the unpruned model is timed beside
    each candidate and the fraction is checked: the host's speed moves between setting the budget
    and the end of a run (25% within one run here), a ratio timed side by side does not.
    ``task.confirm_margin`` (a fraction) must be left free in this check: the best of several
    candidates that pass one noisy timing tends to have been timed low (measured: a ratio of 0.690
    here, 0.723 in the final measurement minutes later).
    """
    feasible = sorted((t for t in study.get_trials(deepcopy=False) if is_feasible(t)),
                      key=lambda t: (-t.values[0], t.number))
    if not feasible or not setup.estimator.measured:
        return feasible[0] if feasible else None
    fraction = None if setup.settings.budget_given else setup.cfg.budget_fraction
    keep = 1.0 - setup.cfg.confirm_margin
    for trial in feasible[:max_checks]:
        arch = arch_from_dict(trial.user_attrs["arch"])
        models = {"candidate": pruned(setup.teacher, arch)}
        if fraction is not None:
            models["unpruned"] = setup.teacher
        ms = _measure_all(models, setup.shape, setup.device, rounds)
        ok = meets_budget(ms["candidate"], ms.get("unpruned"), setup.budget_ms * keep,
                          None if fraction is None else fraction * keep)
        beside = f", {ms['candidate'] / ms['unpruned']:.3f} x unpruned ({ms['unpruned']:.2f} ms)" if fraction else ""
        print(f"re-timing trial #{trial.number} keep {arch.keep_rates}: {ms['candidate']:.2f} ms{beside} "
              f"({'confirmed' if ok else 'over budget when re-timed, next'})", flush=True)
        if ok:
            return trial
    fastest = min(feasible, key=lambda t: (t.user_attrs["latency_ms"], -t.values[0]))
    print(f"no re-timed candidate met the budget; taking the fastest feasible trial #{fastest.number} "
          "(the report shows its measured latency)", flush=True)
    return fastest


def meets_budget(ms: float, unpruned_ms: float | None, budget_ms: float, fraction: float | None) -> bool:
    """Within budget: ``ms / unpruned_ms <= fraction`` when the budget is that fraction of the
    unpruned model (both timed side by side), else ``ms <= budget_ms``."""
    if fraction is not None and unpruned_ms:
        return ms / unpruned_ms <= fraction
    return ms <= budget_ms


def finish_vit(setup: ViTSetup, arch: Any, latency_ms: float, chosen_by: str,
               study: Any = None, search: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fine-tune ``arch``'s selectors and backbone (task.final, distilled from the teacher), measure
    it against EViT at the same keep rates and the teacher, export, write the report and the plot."""
    cfg, device, data, teacher, settings = setup.cfg, setup.device, setup.data, setup.teacher, setup.settings
    budget_ms, shape = setup.budget_ms, setup.shape
    student = pruned(teacher, arch)
    log = vit.train_selectors(student, copy.deepcopy(teacher), data.train, cfg.final)
    evit = vit.evit_baseline(copy.deepcopy(teacher), arch.keep_rates, arch.stages).eval()
    measured = _measure_all({"searched": student, "evit": evit, "unpruned": teacher}, shape, device, rounds=5)
    top1 = {name: 100.0 * vit.evaluate_top1(model, data.test) for name, model in
            (("searched", student), ("evit", evit), ("unpruned", teacher))}
    val = {name: 100.0 * vit.evaluate_top1(model, data.val) for name, model in
           (("searched", student), ("evit", evit), ("unpruned", teacher))}

    run_dir = settings.run_dir
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save(student.state_dict(), tmp)
    save_arch(arch, run_dir / "arch.json", latency_ms=latency_ms)
    onnx_check = _export(student, run_dir / "model.onnx", shape, data)
    baselines = {
        "evit": {"latency_ms": measured["evit"], "test_top1": top1["evit"], "val_top1": val["evit"],
                 "keep_rates": list(arch.keep_rates), "training": "none (EViT-style, class-token attention)"},
        "unpruned": {"latency_ms": measured["unpruned"], "test_top1": top1["unpruned"],
                     "val_top1": val["unpruned"], "teacher": setup.teacher_info},
    }
    result = {
        "task": "vit",
        "device": {"name": device.name, "description": device.description, "threads": device.threads},
        "budget_ms": budget_ms,
        "budget_rule": "given" if settings.budget_given else f"{cfg.budget_fraction:g} x unpruned latency",
        "best": {"arch": arch.to_dict(), "arch_key": arch.key, "chosen_by": chosen_by,
                 "latency_ms": latency_ms, "measured_latency_ms": measured["searched"],
                 "latency_source": setup.estimator.describe(), "test_top1": top1["searched"],
                 "val_top1": val["searched"], "top1_drop_vs_teacher": top1["unpruned"] - top1["searched"],
                 # timed side by side with the unpruned model at the end: immune to the host's speed
                 # moving between setting the budget and the final measurement
                 "latency_ratio_to_unpruned": measured["searched"] / measured["unpruned"],
                 "meets_budget": meets_budget(measured["searched"], measured["unpruned"], budget_ms,
                                              None if settings.budget_given else cfg.budget_fraction),
                 "finetune": {"steps": log.steps, "seconds": round(log.seconds, 1)},
                 "onnx_max_abs_diff": onnx_check["max_abs_diff"], "onnx_check": onnx_check},
        "baselines": baselines,
        "study": {"name": settings.study_name, "storage": redact(settings.storage), "strategy": settings.strategy},
    }
    title = f"ViT token pruning on {device.name}: validation top-1 vs latency"
    if study is not None:
        result["trials"] = report.trial_summary(study)
        report.write_pareto(study, budget_ms, baselines, run_dir / "pareto.png", title=title,
                            quality_key="val_top1", quality_label="top-1 (%)")
    else:
        result["search"] = search or {}
        _plot_final(result, run_dir / "pareto.png", title)
    _write_report(result, run_dir / "report.md")
    return result


def _plot_final(result: dict[str, Any], path: Path, title: str) -> None:
    """No population to draw (dnas): the chosen model against the baselines and the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = result["best"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([best["measured_latency_ms"]], [best["val_top1"]], c="tab:red", s=60, label="searched (fine-tuned)")
    ax.axvline(result["budget_ms"], ls="--", c="tab:red", lw=1, label=f"budget {result['budget_ms']:.1f} ms")
    report.mark_baselines(ax, result["baselines"], "val_top1", best["measured_latency_ms"])
    report.finish_plot(fig, ax, path, title, "measured latency (ms)", "top-1 (%)")


def _with_budget(settings: SearchSettings, budget_ms: float) -> SearchSettings:
    from dataclasses import replace

    return replace(settings, budget_ms=budget_ms)


def _measure_all(models: dict[str, torch.nn.Module], shape: tuple[int, ...], device: DeviceProfile,
                 rounds: int = 3) -> dict[str, float]:
    """Measured ms of each model: ``rounds`` rounds, the models alternating (order reversed every
    round), the least of each model's round medians: the statistic the budget's reference uses."""
    import latency_models

    names = list(models)
    seen: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            seen[name].append(latency_models.measure(models[name].eval(), shape, backend="torch-cpu",
                                                     threads=device.threads or 1).median_ms)
    return {n: min(v) for n, v in seen.items()}


def _export(model: torch.nn.Module, path: Path, shape: tuple[int, ...], data: Any) -> dict[str, Any]:
    """Export to ONNX and compare with PyTorch on a batch of held-out images (logits, per image).

    Top-k token selection is a hard decision: where two tokens score within float rounding of
    each other, onnxruntime and PyTorch may keep different ones and that image's logits move by
    ~1e-3 (seen once in a smoke run with a near-untrained selector). One such image in a batch is
    reported; more than that fails the export.
    """
    images = next(iter(vit.data.iter_batches(data.test, shape[0])))[0][: shape[0]]
    vit.export_onnx(model, path, shape)
    with torch.inference_mode():
        expected = model.eval()(images).numpy()
    got = vit.run_onnx(path, images)
    per_image = np.abs(got - expected).reshape(len(images), -1).max(axis=1)
    off = int((per_image > 1e-3).sum())
    if off > 1:
        raise UserError(f"ONNX export of the pruned ViT differs from PyTorch on {off} of {len(images)} images "
                        f"(max {per_image.max():.2e})")
    return {"max_abs_diff": float(per_image.max()), "median_abs_diff": float(np.median(per_image)),
            "images": len(images), "images_over_1e-3": off}


def _search_line(result: dict[str, Any]) -> str:
    if "trials" in result:
        t = result["trials"]
        return f"Trials: {t['n_total']} in total, {t['n_trained']} trained, {t['n_feasible']} within budget. See pareto.png."
    return f"No trials ({result['study']['strategy']}): {result['search'].get('summary', '')} See pareto.png."


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
    meets = best["meets_budget"]
    lines = [
        f"# ViT token-pruning search on {result['device']['name']}",
        "",
        f"Budget: {result['budget_ms']:.2f} ms ({result['budget_rule']}); "
        f"latency source: {best['latency_source']['source']}.",
        f"Searched keep rates {best['arch']['keep_rates']} at stages {best['arch']['stages']} "
        f"({best['chosen_by']}, {result['study']['strategy']}).",
        f"Measured after fine-tuning: {best['measured_latency_ms']:.2f} ms "
        f"({best['latency_ratio_to_unpruned']:.2f} x the unpruned model timed beside it), "
        f"{'within' if meets else 'OVER'} the budget"
        f"{'' if result['budget_rule'] == 'given' else ' (judged by that ratio)'}; top-1 drop vs teacher "
        f"{best['top1_drop_vs_teacher']:.2f} points.",
        "",
        *rows,
        "",
        _search_line(result),
        "",
    ]
    write_text_atomic(path, "\n".join(lines))
