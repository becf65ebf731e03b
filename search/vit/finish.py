"""What every ViT strategy ends with, whatever chose the keep rates: fine-tuning (``task.final``,
distilled from the teacher), the EViT baseline at the same keep rates and the teacher timed and
scored beside it, ``model.pt``, ``arch.json``, ``model.onnx``, ``pareto.png``, ``report.md``,
``latency_predictor.png`` where a fitted predictor constrained the trials, and the typed result."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch

import tasks.vit as vit
from latency_models.interleave import InterleavedTiming, paired_ratio
from search import report
from search.file_timing import file_calls, record_file_timings
from search.result import Result, device_info, study_info
from search.vit.latency_check import FINAL
from search.vit.prepare import ViTSetup
from search.vit.report import plot_final, write_vit_report
from search.vit.ship import export_files, say_files
from search.vit.task import ViTData, pruned
from spaces import save_arch
from spaces.atomic import atomic_path
from spaces.vit import TokenPruneArch

# Interleaved rounds of the final timing (searched, EViT, unpruned, the shipped files), about 0.6 s
# each at the default size. The host's neighbours only ever add time, so the least round median is
# the figure another harness can reproduce, and more rounds catch more of the host's quiet moments:
# with 10 rounds in a noisy phase one run read 16.75 ms where an independent harness read 14.49 ms
# a minute later.
FINAL_ROUNDS = 30


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
    scores = {name: _top1(model, setup.data) for name, model in models.items()}
    files, shipped = _write_model(setup, student, found)
    timed = _final_timing(setup, models, files, shipped)
    measured = {name: timing.ms for name, timing in timed.items()}
    ratio = paired_ratio(timed["searched"], timed["unpruned"])
    onnx_check = files["model.onnx"]["check"]
    baselines = {
        "evit": {"latency_ms": measured["evit"], **scores["evit"], "keep_rates": list(arch.keep_rates),
                 "training": "none (EViT-style, class-token attention)"},
        "unpruned": {"latency_ms": measured["unpruned"], **scores["unpruned"], "teacher": setup.teacher_info},
    }
    best = {"arch": arch.to_dict(), "arch_key": arch.key, "chosen_by": found.chosen_by, **found.info,
            "latency_ms": found.latency_ms, "measured_latency_ms": measured["searched"],
            "measured_latency_spread": timed["searched"].spread, "measured_as": _measured_as(setup),
            "latency_source": setup.estimator.describe(), "runtime": setup.runtime_info(), **scores["searched"],
            "top1_drop_vs_teacher": scores["unpruned"]["test_top1"] - scores["searched"]["test_top1"],
            # timed side by side with the unpruned model at the end, paired round by round: immune
            # to the host's speed moving between setting the budget and the final measurement, and
            # within it (a final timing here had rounds 1.86x apart)
            "latency_ratio_to_unpruned": ratio, "meets_budget": setup.meets_budget(measured["searched"], ratio),
            "round_ms": {name: list(timing.round_ms) for name, timing in timed.items()},
            "finetune": {"steps": log.steps, "seconds": round(log.seconds, 1)},
            "onnx_max_abs_diff": onnx_check["max_abs_diff"], "onnx_check": onnx_check, "export": files}
    _check_predictor(setup, arch, student, best)
    result = _result(setup, found, best, baselines)
    _draw(setup, found, result)
    write_vit_report(result, setup.ctx.run_dir / "report.md")
    return result


def _check_predictor(setup: ViTSetup, arch: TokenPruneArch, student: torch.nn.Module, best: dict[str, Any]) -> None:
    """The fitted predictor against the final ratio too: ``best.latency_check`` and its picture."""
    setup.check_latency(FINAL, arch, student, best["latency_ratio_to_unpruned"])
    if setup.check is not None:
        best["latency_check"] = setup.check.summary()
        setup.check.draw(setup.ctx.run_dir / "latency_predictor.png",
                         f"ViT latency predictor on {setup.ctx.device.name}: predicted vs timed")


def _final_timing(setup: ViTSetup, models: dict[str, torch.nn.Module], files: dict[str, dict[str, Any]],
                  shipped: dict[str, torch.nn.Module]) -> dict[str, InterleavedTiming]:
    """The models and the shipped files in the same interleaved rounds. In onnxruntime the searched
    model's figure is the shipped ``model.onnx`` itself (what a user deploys and times), not a
    second export of it; the files' ``latency_ms_here`` come from the same rounds."""
    own_file = setup.cfg.runtime == "onnxruntime"
    timed = setup.timed({n: m for n, m in models.items() if not (own_file and n == "searched")}, FINAL_ROUNDS,
                        calls=dict(zip(shipped, file_calls(shipped, setup.shape))))
    record_file_timings(files, {name: timed[name].round_ms for name in shipped}, setup.shape,
                        setup.ctx.device.measure_threads)
    say_files(files)
    if own_file:
        timed["searched"] = timed["model.onnx"]
    return timed


def _measured_as(setup: ViTSetup) -> str:
    what = ("the shipped model.onnx in onnxruntime" if setup.cfg.runtime == "onnxruntime"
            else "the fine-tuned model in eager torch")
    return f"{what}, {FINAL_ROUNDS} rounds interleaved with EViT and the unpruned model"


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


def _write_model(setup: ViTSetup, student: torch.nn.Module, found: Found
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, torch.nn.Module]]:
    """``model.pt`` (state dict), ``arch.json`` and the exported files (:mod:`search.vit.ship`)."""
    run_dir = setup.ctx.run_dir
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save(student.state_dict(), tmp)
    save_arch(found.arch, run_dir / "arch.json", latency_ms=found.latency_ms)
    return export_files(setup, student, found.arch)
