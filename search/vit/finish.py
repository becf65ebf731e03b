"""What every ViT strategy ends with, whatever chose the keep rates: fine-tuning (``task.final``,
distilled from the teacher), the EViT baseline at the same keep rates and the teacher timed and
scored beside it, ``model.pt``, ``arch.json``, ``model.onnx``, ``pareto.png``, ``report.md`` and
the typed result."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch

import tasks.vit as vit
from search import report
from search.result import Result, device_info, study_info
from search.vit.prepare import ViTSetup
from search.vit.report import plot_final, write_vit_report
from search.vit.ship import export_files
from search.vit.task import ViTData, pruned
from spaces import save_arch
from spaces.atomic import atomic_path
from spaces.vit import TokenPruneArch

FINAL_ROUNDS = 5  # interleaved rounds of the final timing (searched, EViT, unpruned)


@dataclass(frozen=True)
class Found:
    """What a strategy chose: the architecture, its latency during the search (ms), how it was
    chosen (words), further ``best`` entries (``info``: e.g. ``trial``), and either the study it
    came from (Optuna: summarised and drawn) or the search's own record (``search``)."""

    arch: TokenPruneArch
    latency_ms: float
    chosen_by: str
    info: dict[str, Any] = field(default_factory=dict)
    study: optuna.Study | None = None
    search: dict[str, Any] | None = None


def finish_vit(setup: ViTSetup, found: Found) -> Result:
    """Fine-tune ``found.arch``'s selectors and backbone, measure it against EViT and the teacher,
    export, write the report and the plot; the run's :class:`Result`."""
    arch, teacher = found.arch, setup.teacher
    student = pruned(teacher, arch)
    log = vit.train_selectors(student, copy.deepcopy(teacher), setup.data.train, setup.cfg.final)
    evit = vit.evit_baseline(copy.deepcopy(teacher), arch.keep_rates, arch.stages).eval()
    models = {"searched": student, "evit": evit, "unpruned": teacher}
    measured = setup.timed_ms(models, FINAL_ROUNDS)
    scores = {name: _top1(model, setup.data) for name, model in models.items()}
    files = _write_model(setup, student, found)
    onnx_check = files["model.onnx"]["check"]
    baselines = {
        "evit": {"latency_ms": measured["evit"], **scores["evit"], "keep_rates": list(arch.keep_rates),
                 "training": "none (EViT-style, class-token attention)"},
        "unpruned": {"latency_ms": measured["unpruned"], **scores["unpruned"], "teacher": setup.teacher_info},
    }
    best = {"arch": arch.to_dict(), "arch_key": arch.key, "chosen_by": found.chosen_by, **found.info,
            "latency_ms": found.latency_ms, "measured_latency_ms": measured["searched"],
            "latency_source": setup.estimator.describe(), "runtime": setup.runtime_info(), **scores["searched"],
            "top1_drop_vs_teacher": scores["unpruned"]["test_top1"] - scores["searched"]["test_top1"],
            # timed side by side with the unpruned model at the end: immune to the host's speed
            # moving between setting the budget and the final measurement
            "latency_ratio_to_unpruned": measured["searched"] / measured["unpruned"],
            "meets_budget": setup.meets_budget(measured["searched"], measured["unpruned"]),
            "finetune": {"steps": log.steps, "seconds": round(log.seconds, 1)},
            "onnx_max_abs_diff": onnx_check["max_abs_diff"], "onnx_check": onnx_check, "export": files}
    result = _result(setup, found, best, baselines)
    _draw(setup, found, result)
    write_vit_report(result, setup.ctx.run_dir / "report.md")
    return result


def _result(setup: ViTSetup, found: Found, best: dict[str, Any], baselines: dict[str, Any]) -> Result:
    ctx = setup.ctx
    extras: dict[str, Any] = {"baselines": baselines}
    if found.study is None:
        extras["search"] = found.search or {}
    return Result(task="vit", strategy=ctx.settings.strategy, device=device_info(ctx.device),
                  budget_ms=setup.budget_ms, budget_rule=setup.budget_rule, best=best,
                  study=study_info(ctx.settings),
                  trials=None if found.study is None else report.trial_summary(found.study, "val_top1"), extras=extras)


def _draw(setup: ViTSetup, found: Found, result: Result) -> None:
    """``pareto.png``: every trial where there is a study, else the chosen model alone."""
    path = setup.ctx.run_dir / "pareto.png"
    title = f"ViT token pruning on {setup.ctx.device.name}: validation top-1 vs latency"
    if found.study is None:
        plot_final(result, path, title)
    else:
        report.write_pareto(found.study, setup.budget_ms, result.extras["baselines"], path, title=title,
                            quality_key="val_top1", quality_label="top-1 (%)")


def _top1(model: torch.nn.Module, data: ViTData) -> dict[str, float]:
    """Top-1 in percent on the held-out test images and on the validation split."""
    return {"test_top1": 100.0 * vit.evaluate_top1(model, data.test),
            "val_top1": 100.0 * vit.evaluate_top1(model, data.val)}


def _write_model(setup: ViTSetup, student: torch.nn.Module, found: Found) -> dict[str, dict[str, Any]]:
    """``model.pt`` (state dict), ``arch.json`` and the exported files (:mod:`search.vit.ship`)."""
    run_dir = setup.ctx.run_dir
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save(student.state_dict(), tmp)
    save_arch(found.arch, run_dir / "arch.json", latency_ms=found.latency_ms)
    return export_files(setup, student, found.arch)
