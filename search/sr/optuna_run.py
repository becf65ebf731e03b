"""``task=sr`` with an Optuna strategy (``tpe``, ``nsga2``, ``random``): the study, then the
shared finish (:func:`search.sr.finish.finish_sr`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna

import tasks.sr as sr
from search import report
from search.console import say
from search.errors import UserError
from search.fidelity import Fidelity
from search.result import Result, study_info
from search.settings import RunContext, run_storage
from search.sr.finish import Found, SRJob, finish_sr
from search.sr.startup import feasible_design
from search.sr.task import SRSettings, describe_trial, objective
from search.study.engine import claim_final, open_study, run_study
from search.study.progress import best_feasible
from search.study.storage import redact
from search.study.worker import search_only_result
from spaces import ArchError, arch_from_dict


def run_sr(ctx: RunContext) -> Result:
    job = SRJob.prepare(ctx)
    settings, space = ctx.settings, job.sr.space
    say(f"task=sr x{space.scale} device={ctx.device.name} budget {settings.budget_ms:g} ms "
        f"(smallest architecture {job.floor_ms:.2f} ms); latency: {job.estimator.source}")
    say(f"search: {settings.strategy}, {settings.n_trials} trials, study {settings.study_name} "
        f"in {redact(settings.storage)}")
    study = open_study(settings, trial_meaning(job.sr, job.estimator, settings.fidelity), max_steps=job.sr.proxy.steps)
    if not study.get_trials(deepcopy=False):
        _enqueue_start(study, job)
    run_study(study, objective(job.sr, job.estimator, settings.budget_ms, settings.near_budget,
                               job.data.proxy_patches, job.data.val, two_objectives=settings.strategy == "nsga2",
                               fidelity=settings.fidelity),
              settings, describe_trial, catch=(sr.DivergedError,))
    if not settings.run_final:  # a cluster worker: search only; the command without it trains the winner
        return search_only_result(study, ctx, "val_psnr")
    best, arch = winner(study, space, settings.budget_ms)
    claim_final(study, settings)
    say(f"best: trial #{best.number}, {arch.depth} blocks, C={arch.channels}, "
        f"{best.user_attrs['latency_ms']:.2f} ms; training it with task.final ({job.sr.final.steps} steps)")

    def plot(baselines: dict[str, Any], best_entry: dict[str, Any], path: Path) -> None:
        report.write_pareto(study, settings.budget_ms, baselines, path,
                            title=f"SR x{space.scale} on {ctx.device.name}: validation PSNR-Y vs latency")

    found = Found(arch, best.user_attrs["latency_ms"],
                  {"trial": best.number, "val_psnr_proxy": best.user_attrs["val_psnr"]}, plot,
                  study=study_info(settings), trials=report.trial_summary(study))
    return finish_sr(job, found)


def _enqueue_start(study: optuna.Study, job: SRJob) -> None:
    """A known-feasible first candidate (the cheapest member; check_budget proved it fits), so
    that even a tiny study ends with a trained architecture within the budget; then, on a
    study of this run directory alone and a cheap latency model, a feasible start-up design.
    Not on a shared study: workers starting together would each enqueue it, and the surplus
    would outlive n_trials as waiting trials. At most n_trials - 1 (the cheapest above)."""
    settings, space = job.ctx.settings, job.sr.space
    study.enqueue_trial(space.params_of(space.smallest()))
    local = settings.storage == run_storage(settings.run_dir)
    n_start = min(int(settings.strategy_options.get("feasible_startup") or 0), settings.n_trials - 1)  # random: none
    if n_start > 0 and local and not job.estimator.measured:  # see search.sr.startup: a cheap latency model only
        design = feasible_design(space, job.estimator.latencies_ms, settings.budget_ms, n_start, settings.seed)
        for arch in design:
            study.enqueue_trial(space.params_of(arch))
        say(f"start: {len(design)} feasible architectures, trunk widths in turn "
            f"({', '.join(f'C{a.channels} x{a.depth}' for a in design)})")


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


def trial_meaning(sr_settings: SRSettings, estimator: Any, fidelity: Fidelity) -> dict[str, Any]:
    """What changes the meaning of a trial's PSNR and latency: a study only holds one of these."""
    # where a trial trains does not change what its PSNR means (bf16 lands within 0.1 dB of fp32):
    # GPU and CPU workers share one study
    proxy = {k: v for k, v in dataclasses.asdict(sr_settings.proxy).items()
             if k not in ("threads", "checkpoint_every", "placement")}
    return {"space": dataclasses.asdict(sr_settings.space), "train_root": ", ".join(map(str, sr_settings.train_root)),
            "val_images": sr_settings.val_images, "proxy": proxy, "latency": estimator.source,
            **({"fidelity": dataclasses.asdict(fidelity)} if fidelity.staged else {})}
