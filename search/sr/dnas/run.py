"""``strategy=dnas`` for ``task=sr``: one supernet, depth and widths learned with the predicted
latency in the loss (Wu, Gong et al., ECCV 2022), then the derived network goes through the
shared finish of every SR strategy (:func:`search.sr.finish.finish_sr`).

Design choices (see conf/strategy/dnas.yaml for the knobs):
- The supernet is the space's largest WDSR-B; per-block keep gates and per-layer prefix width
  masks on the space's grids (trunk C searched too unless ``search_channels=false``).
- Differentiable latency (:mod:`search.sr.dnas.latency`): the estimator's model in torch form
  (the published block MLP, ``device=s21``), scaled to the estimator's figure for the largest net
  (1.0 at the published resolution); otherwise a torch surrogate distilled from its predictor.
- The derived net is thresholded, checked with the non-differentiable model and fitted to the
  budget (:mod:`search.sr.dnas.derive`), then trained with ``task.final`` like the baselines
  (from the supernet's weights unless ``final_init=scratch``), so its scores are comparable with
  them and with the Optuna strategies.

Phases: :func:`_search` (the supernet), :func:`_choose` (the derived net), :func:`_within_budget`
(its latency, checked), :func:`_finish` (the final training and outputs).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import tasks.sr as sr  # noqa: E402
from search.console import say
from search.errors import UserError  # noqa: E402
from search.report import finish_plot, mark_baselines  # noqa: E402
from search.result import Result, study_info  # noqa: E402
from search.settings import RunContext  # noqa: E402
from search.sr.dnas.derive import Fitted, fit_to_budget  # noqa: E402
from search.sr.dnas.latency import DnasLatency, differentiable_latency  # noqa: E402
from search.sr.dnas.options import DnasOptions  # noqa: E402
from search.sr.dnas.select import best, candidate_fits, score_candidates  # noqa: E402
from search.sr.dnas.train import PHASES, LatencyTerm, SupernetState, train_supernet  # noqa: E402
from search.sr.finish import Found, SRJob, finish_sr  # noqa: E402
from tasks.sr.supernet import SRSupernet  # noqa: E402


@dataclass(frozen=True)
class Searched:
    """The trained supernet and what its search used."""

    net: SRSupernet
    state: SupernetState
    patches: sr.TrainPatches   # the supernet's own patch stream (candidates fine-tune on it too)
    latency: DnasLatency
    supernet_ms: float         # the estimator's figure for the space's largest net


def run_dnas(ctx: RunContext) -> Result:
    started = time.monotonic()
    options = DnasOptions.parse(ctx.settings.strategy_options, ctx.settings.timeout_s, ctx.train.threads,
                                ctx.train.placement)
    job = SRJob.prepare(ctx)
    searched = _search(job, options)
    deadline = started + ctx.settings.timeout_s if options.selecting else None
    fitted, candidates = _choose(job, options, searched, deadline)
    return _finish(job, options, searched, _within_budget(job, fitted), candidates)


def _search(job: SRJob, options: DnasOptions) -> Searched:
    """Train (or resume) the supernet with the differentiable latency in its loss."""
    settings, space, plan = job.ctx.settings, job.sr.space, options.plan
    patches = sr.TrainPatches(job.sr.train_root, space.scale, plan.patch_hr, seed=settings.seed + 3,
                              val_images=job.sr.val_images)
    latency = differentiable_latency(job.estimator, job.ctx.device, space, settings.run_dir)
    supernet_ms = job.estimator.latency_ms(space.largest())
    say(f"task=sr x{space.scale} device={job.ctx.device.name} budget {settings.budget_ms:g} ms (smallest "
        f"{job.floor_ms:.2f} ms, supernet {supernet_ms:.1f} ms); latency: {job.estimator.source}")
    say(f"search: dnas, supernet phases {[plan.warmup_steps, plan.width_steps, plan.joint_steps]} steps "
        f"(warm-up, width, joint), lambda {plan.latency_lambda:g}, cap {settings.timeout_s:g} s; "
        f"differentiable latency: {latency.description}")
    torch.manual_seed(settings.seed)
    net = SRSupernet(space, search_channels=options.search_channels, seed=settings.seed)
    net.derive_mode = options.derive
    term = LatencyTerm(latency.block_ms, latency.fixed_ms, settings.budget_ms, supernet_ms)

    def trajectory_point(net: SRSupernet, state: Any, point: dict[str, Any]) -> None:
        arch, _ = net.derive(options.threshold, options.derive)
        point["derived_ms"] = latency.check_ms([arch])[0]
        point["derived_depth"] = arch.depth

    state = train_supernet(net, patches, job.data.val, plan, term, settings.run_dir / "supernet_checkpoint.pt",
                           trajectory_point)
    say(f"supernet: {state.step} steps done (phases {state.phases}, {state.elapsed_s:.0f} s of training)")
    return Searched(net, state, patches, latency, supernet_ms)


def _choose(job: SRJob, options: DnasOptions, searched: Searched,
            deadline: float | None) -> tuple[Fitted, list[dict[str, Any]]]:
    """The fitted derivation, or (``deadline`` given: select by validation) the best of one
    candidate per trunk width, each fine-tuned from the supernet's weights until the deadline."""
    net, check_ms, budget_ms, val = searched.net, searched.latency.check_ms, job.ctx.settings.budget_ms, job.data.val
    fit_args = (budget_ms, options.tolerance, options.threshold, options.derive)
    if deadline is None or not val:
        return fit_to_budget(net, check_ms, *fit_args), []
    cands = candidate_fits(net, check_ms, *fit_args)
    plan = options.plan
    recipe = sr.TrainRecipe(steps=options.select_steps, batch_size=plan.batch_size, patch_hr=plan.patch_hr,
                            lr=options.select_lr, lr_final=1e-5, seed=job.ctx.settings.seed + 5, threads=plan.threads,
                            placement=plan.placement)
    say(f"dnas: choosing among {len(cands)} candidates (one per trunk width C) by validation PSNR after up to "
        f"{recipe.steps} fine-tuning steps each from the supernet's weights")
    scored = score_candidates(net, cands, searched.patches, val, recipe, deadline)
    chosen = best(scored)
    table = [{"arch": s.fitted.arch.to_dict(), "latency_ms": s.fitted.latency_ms, "steps": s.steps,
              "val_psnr": s.val_psnr, "channels_fixed": s.channels_fixed, "chosen": s is chosen} for s in scored]
    return chosen.fitted, table


def _within_budget(job: SRJob, fitted: Fitted) -> Fitted:
    """``fitted`` with the estimator's own latency where it times on this host (the fit used the
    predictor), refused when over the budget."""
    budget_ms = job.ctx.settings.budget_ms
    if job.estimator.measured:  # the result reports the host's own timing of the chosen net
        say(f"fitted with the predictor at {fitted.latency_ms:.2f} ms; measuring it on this host")
        fitted = dataclasses.replace(fitted, latency_ms=job.estimator.latency_ms(fitted.arch))
    if fitted.latency_ms > budget_ms:
        raise UserError(f"the derived network needs {fitted.latency_ms:.2f} ms > budget_ms={budget_ms:g} "
                        "even after shrinking; raise the budget")
    return fitted


def _finish(job: SRJob, options: DnasOptions, searched: Searched, fitted: Fitted,
            candidates: list[dict[str, Any]]) -> Result:
    """The derived net with the supernet's weights (its validation PSNR is the proxy score), then
    the shared final training and outputs."""
    arch, settings, state = fitted.arch, job.ctx.settings, searched.state
    inherited = searched.net.subnet_state_dict(arch, list(fitted.kept))
    derived_model = sr.build_model(arch)
    derived_model.load_state_dict(inherited)
    val_proxy = sr.evaluate.evaluate(derived_model, job.data.val, arch.scale)["psnr"] if job.data.val else math.nan
    say(f"derived: {arch.depth} blocks, C={arch.channels}, blocks {[[b.m1, b.m2] for b in arch.blocks]}, "
        f"{fitted.latency_ms:.2f} ms (read off {fitted.thresholded_ms:.2f} ms, {fitted.moves} greedy moves); "
        f"training it with task.final ({job.sr.final.steps} steps, from "
        f"{'the supernet' if options.final_init == 'supernet' else 'scratch'})")

    def plot(baselines: dict[str, Any], best_entry: dict[str, Any], path: Path) -> None:
        write_trajectory_plot(state.trajectory, best_entry, settings.budget_ms, baselines, path,
                              title=f"SR x{arch.scale} on {job.ctx.device.name} (dnas): validation PSNR-Y vs latency")

    found = Found(arch, fitted.latency_ms, {"trial": None, "val_psnr_proxy": val_proxy}, plot,
                  study=study_info(settings), trials=None,
                  extras={"supernet": _supernet_section(options, searched, fitted, candidates)},
                  init_state=inherited if options.final_init == "supernet" else None)
    return finish_sr(job, found)


def _supernet_section(options: DnasOptions, searched: Searched, fitted: Fitted,
                      candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The result's ``supernet`` section: how the search went and what it read off."""
    state = searched.state
    return {
        "steps": state.step, "phases": dict(zip(PHASES, state.phases)), "train_s": round(state.elapsed_s, 1),
        "latency_lambda": options.plan.latency_lambda, "differentiable_latency": searched.latency.description,
        "supernet_ms": searched.supernet_ms, "read_off_arch": fitted.thresholded.to_dict(),
        "read_off_ms": fitted.thresholded_ms, "greedy_moves": fitted.moves, "kept_blocks": list(fitted.kept),
        "trajectory": state.trajectory, "select": options.select, "candidates": candidates,
        "final_init": options.final_init, "search_channels": options.search_channels,
    }


def write_trajectory_plot(trajectory: list[dict[str, Any]], best: dict[str, Any], budget_ms: float,
                          baselines: dict[str, Any], path: Path, title: str) -> None:
    """The supernet's path (expected latency vs validation PSNR of the currently derived net with
    supernet weights, per phase), the derived net after final training, budget and baselines."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colours = {"warmup": "0.6", "width": "tab:blue", "joint": "tab:green"}
    xs = [p["expected_ms"] for p in trajectory]
    ys = [p["val_psnr"] for p in trajectory]
    if trajectory:
        ax.plot(xs, ys, c="0.75", lw=0.8, zorder=1)
    for phase, colour in colours.items():
        pts = [(p["expected_ms"], p["val_psnr"]) for p in trajectory if p["phase"] == phase]
        if pts:
            ax.scatter(*zip(*pts), s=16, c=colour, zorder=2, label=f"supernet, {phase} (expected latency)")
    if best.get("val_psnr") is not None:
        ax.scatter([best["latency_ms"]], [best["val_psnr"]], marker="D", s=50, c="tab:purple", zorder=3,
                   label="derived net, final training")
    ax.axvline(budget_ms, c="tab:red", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    mark_baselines(ax, baselines, "val_psnr", text_x=budget_ms)
    ax.set_xscale("log")
    finish_plot(fig, ax, path, title, "latency (ms, log scale)", "PSNR-Y (dB) on held-out validation")
