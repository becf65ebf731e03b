"""``strategy=dnas`` for ``task=sr``: one supernet, depth and widths learned with the predicted
latency in the loss (Wu, Gong et al., ECCV 2022), then the derived network goes through exactly
the outputs of the Optuna path (:func:`search.sr_run.train_and_write`).

Design choices (see conf/strategy/dnas.yaml for the knobs):
- The supernet is the space's largest WDSR-B; per-block keep gates and per-layer prefix width
  masks on the space's grids (trunk C searched too unless ``search_channels=false``).
- Differentiable latency: the device's published block MLP (``device=s21``), scaled to the
  estimator's figure for the largest net (1.0 at the published resolution); otherwise a torch
  surrogate (``torch_block_latency``), distilled from the device's predictor when none is given.
- The derived net is thresholded, checked with the non-differentiable model and fitted to the
  budget (:mod:`search.dnas_derive`), then trained from scratch with ``task.final`` like the
  baselines, so its scores are comparable with them and with the Optuna strategies.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import tasks.sr as sr  # noqa: E402
from search.dnas_derive import fit_to_budget  # noqa: E402
from search.dnas_select import best, candidate_fits, score_candidates  # noqa: E402
from search.dnas_train import PHASES, LatencyTerm, SupernetPlan, train_supernet  # noqa: E402
from search.errors import UserError  # noqa: E402
from search.latency import LatencyEstimator, make_estimator  # noqa: E402
from search.report import finish_plot, mark_baselines  # noqa: E402
from search.settings import DeviceProfile, SearchSettings  # noqa: E402
from search.sr_task import SRSettings, check_budget, load_data  # noqa: E402
from tasks.sr.supernet import SRSupernet  # noqa: E402

PLAN_KEYS = ("warmup_steps", "width_steps", "joint_steps", "batch_size", "patch_hr", "lr", "lr_final", "arch_lr",
             "arch_optimizer", "arch_from", "latency_lambda", "tau_start", "tau_end", "calibrate_steps",
             "checkpoint_every", "eval_every")
OTHER_KEYS = ("search_channels", "derive", "threshold", "tolerance", "select", "select_steps", "select_lr",
              "select_share", "final_init", "profile", "smoke")


def dnas_options(strategy_options: dict[str, Any]) -> dict[str, Any]:
    """The strategy's options, with its ``smoke`` block merged in under ``profile: smoke``."""
    opts = dict(strategy_options)
    smoke = opts.pop("smoke", None) or {}
    if opts.get("profile") == "smoke":
        opts.update(smoke)
    unknown = sorted(set(opts) - set(PLAN_KEYS) - set(OTHER_KEYS))
    if unknown:
        raise UserError(f"strategy=dnas does not know {unknown}; settings: {sorted(PLAN_KEYS + OTHER_KEYS)}")
    return opts


def make_plan(opts: dict[str, Any], timeout_s: float, threads: int) -> SupernetPlan:
    kwargs = {k: opts[k] for k in PLAN_KEYS if k in opts}
    try:
        return SupernetPlan(**kwargs, timeout_s=timeout_s, threads=threads)
    except (TypeError, ValueError) as err:
        raise UserError(f"strategy=dnas: {err}") from None


def differentiable_latency(estimator: LatencyEstimator, device: DeviceProfile, space: Any,
                           run_dir: Path) -> tuple[Any, Any, str, Any]:
    """``(block_ms, fixed_ms, description, check_ms)``: torch callables for the supernet's
    expected latency, and the non-differentiable ``archs -> [ms]`` used to fit the derived net
    (the estimator itself, or, when it measures on this host, the predictor the surrogate was
    distilled from: fitting tries hundreds of candidates)."""
    predictor = getattr(estimator, "predictor", None)
    check_ms = estimator.latencies_ms
    if predictor is None or not hasattr(predictor, "torch_block_latency"):
        predictor, teacher = _surrogate(estimator, device, space, run_dir)
        if estimator.measured:
            def check_ms(archs: Any) -> list[float]:
                return [float(v) for v in teacher.predict_archs(list(archs), tuple(device.lr_hw))]
    largest = space.largest()
    rows = torch.tensor(largest.block_vectors(), dtype=torch.float32)
    with torch.no_grad():
        raw = float(predictor.torch_block_latency(rows).sum())
        if hasattr(predictor, "torch_arch_latency"):
            raw = float(_fixed(predictor)(torch.tensor(float(largest.channels)))) + raw
    factor = estimator.latency_ms(largest) / raw  # 1.0 for the published model at its resolution

    def block_ms(x: torch.Tensor) -> torch.Tensor:
        return predictor.torch_block_latency(x) * factor

    fixed = _fixed(predictor) if hasattr(predictor, "torch_arch_latency") else None

    def fixed_ms(c: torch.Tensor) -> torch.Tensor:
        return fixed(c) * factor  # type: ignore[misc]

    kind = predictor.manifest.get("kind", type(predictor).__name__)
    desc = f"{kind} (torch), x{factor:.3f} to the estimator's scale"
    return block_ms, (fixed_ms if fixed else None), desc, check_ms


def _fixed(predictor: Any) -> Any:
    empty = torch.zeros(0)
    return lambda c: predictor.torch_arch_latency(c, empty, empty)


def _surrogate(estimator: LatencyEstimator, device: DeviceProfile, space: Any, run_dir: Path) -> tuple[Any, Any]:
    """``(surrogate, teacher)``: a torch surrogate distilled from the device's fitted predictor
    (cached in the run dir), and that predictor."""
    import latency_models
    from latency_models.predictors.surrogate import distill

    path = run_dir / "latency_surrogate.hwlat"
    try:
        teacher = latency_models.for_device(device.name, threads=device.threads or 1, scale=space.scale)
    except latency_models.NoLatencyDataError as err:
        raise UserError(f"strategy=dnas needs a differentiable latency model: {err}") from None
    if path.exists():
        return latency_models.load(path), teacher
    print("dnas: distilling a differentiable latency surrogate from the device's predictor "
          "(first use of this run directory)", flush=True)
    surrogate = distill(teacher, space, tuple(device.lr_hw))
    surrogate.save(path)
    estimator.notes.append("dnas: the search used a torch surrogate distilled from the device predictor "
                           f"(fidelity {surrogate.manifest.get('teacher_fidelity')})")
    return surrogate, teacher


def run_dnas(task: dict[str, Any], device: DeviceProfile, settings: SearchSettings,
             latency_cfg: dict[str, Any]) -> dict[str, Any]:
    from search.sr_run import train_and_write  # the Optuna path's outputs, shared

    threads = device.threads or 2
    started = time.monotonic()
    opts = dnas_options(settings.strategy_options)
    sr_settings = SRSettings.from_task(task, settings.seed, threads)
    space, scale, run_dir = sr_settings.space, sr_settings.space.scale, settings.run_dir
    estimator = make_estimator(device, latency_cfg, scale, sr.build_model)
    floor_ms = check_budget(space, estimator, settings.budget_ms)
    select = str(opts.get("select", "validation"))
    if select not in ("validation", "none"):
        raise UserError(f"strategy.select={select!r}: choose validation or none")
    final_init = str(opts.get("final_init", "supernet"))
    if final_init not in ("supernet", "scratch"):
        raise UserError(f"strategy.final_init={final_init!r}: choose supernet or scratch")
    search_channels = bool(opts.get("search_channels", True))
    selecting = select == "validation" and search_channels
    share = float(opts.get("select_share", 0.2)) if selecting else 0.0
    if not 0 <= share < 1:
        raise UserError(f"strategy.select_share={share:g}: give a fraction in [0, 1)")
    plan = make_plan(opts, settings.timeout_s * (1 - share), threads)
    _, final_patches, val, evals = load_data(sr_settings, settings.seed)
    patches = sr.TrainPatches(sr_settings.train_root, scale, plan.patch_hr, seed=settings.seed + 3,
                              val_images=sr_settings.val_images)
    block_ms, fixed_ms, lat_desc, check_ms = differentiable_latency(estimator, device, space, run_dir)
    supernet_ms = estimator.latency_ms(space.largest())
    print(f"task=sr x{scale} device={device.name} budget {settings.budget_ms:g} ms (smallest {floor_ms:.2f} ms, "
          f"supernet {supernet_ms:.1f} ms); latency: {estimator.source}")
    print(f"search: dnas, supernet phases {[plan.warmup_steps, plan.width_steps, plan.joint_steps]} steps "
          f"(warm-up, width, joint), lambda {plan.latency_lambda:g}, cap {settings.timeout_s:g} s; "
          f"differentiable latency: {lat_desc}", flush=True)

    torch.manual_seed(settings.seed)
    net = SRSupernet(space, search_channels=search_channels, seed=settings.seed)
    threshold, tolerance = float(opts.get("threshold", 0.5)), float(opts.get("tolerance", 0.05))
    mode = str(opts.get("derive", "expected"))
    if mode not in ("expected", "threshold"):
        raise UserError(f"strategy.derive={mode!r}: choose expected or threshold")
    net.derive_mode = mode
    term = LatencyTerm(block_ms, fixed_ms, settings.budget_ms, supernet_ms)

    def trajectory_point(net: SRSupernet, state: Any, point: dict[str, Any]) -> None:
        arch, _ = net.derive(threshold, mode)
        point["derived_ms"] = check_ms([arch])[0]
        point["derived_depth"] = arch.depth

    state = train_supernet(net, patches, val, plan, term, run_dir / "supernet_checkpoint.pt", trajectory_point)
    print(f"supernet: {state.step} steps done (phases {state.phases}, {state.elapsed_s:.0f} s of training)", flush=True)
    fitted, candidates = _choose(net, check_ms, settings, opts, plan, patches, val, threshold, tolerance, mode,
                                 deadline=started + settings.timeout_s if selecting else None)
    if estimator.measured:  # the result reports the host's own timing of the chosen net
        print(f"fitted with the predictor at {fitted.latency_ms:.2f} ms; measuring it on this host", flush=True)
        fitted = dataclasses.replace(fitted, latency_ms=estimator.latency_ms(fitted.arch))
    if fitted.latency_ms > settings.budget_ms:
        raise UserError(f"the derived network needs {fitted.latency_ms:.2f} ms > budget_ms={settings.budget_ms:g} "
                        "even after shrinking; raise the budget")
    arch = fitted.arch
    derived_model = sr.build_model(arch)
    inherited = net.subnet_state_dict(arch, list(fitted.kept))
    derived_model.load_state_dict(inherited)
    val_proxy = sr.evaluate.evaluate(derived_model, val, scale)["psnr"] if val else math.nan
    print(f"derived: {arch.depth} blocks, C={arch.channels}, blocks {[[b.m1, b.m2] for b in arch.blocks]}, "
          f"{fitted.latency_ms:.2f} ms (read off {fitted.thresholded_ms:.2f} ms, {fitted.moves} greedy moves); "
          f"training it with task.final ({sr_settings.final.steps} steps, from "
          f"{'the supernet' if final_init == 'supernet' else 'scratch'})", flush=True)
    supernet = {
        "steps": state.step, "phases": dict(zip(PHASES, state.phases)), "train_s": round(state.elapsed_s, 1),
        "latency_lambda": plan.latency_lambda, "differentiable_latency": lat_desc, "supernet_ms": supernet_ms,
        "read_off_arch": fitted.thresholded.to_dict(), "read_off_ms": fitted.thresholded_ms,
        "greedy_moves": fitted.moves, "kept_blocks": list(fitted.kept), "trajectory": state.trajectory,
        "select": select, "candidates": candidates, "final_init": final_init,
        "search_channels": search_channels,
    }

    def plot(baselines: dict[str, Any], best: dict[str, Any], path: Path) -> None:
        write_trajectory_plot(state.trajectory, best, settings.budget_ms, baselines, path,
                              title=f"SR x{scale} on {device.name} (dnas): validation PSNR-Y vs latency")

    return train_and_write(
        arch, fitted.latency_ms, {"trial": None, "val_psnr_proxy": val_proxy},
        sr_settings, estimator, device, settings, final_patches, val, evals,
        trials={"n_total": 0, "n_complete": 0, "n_trained": 0, "n_feasible": 0, "n_failed": 0, "n_pruned": 0,
                "trials": []},
        study={"name": None, "storage": None, "strategy": "dnas"}, plot=plot, extra={"supernet": supernet},
        init_state=inherited if final_init == "supernet" else None,
    )


def _choose(net: SRSupernet, check_ms: Any, settings: SearchSettings, opts: dict[str, Any], plan: SupernetPlan,
            patches: Any, val: list[Any], threshold: float, tolerance: float, mode: str,
            deadline: float | None) -> tuple[Any, list[dict[str, Any]]]:
    """The fitted derivation, or (``deadline`` given: select by validation) the best of one
    candidate per trunk width, each fine-tuned from the supernet's weights until the deadline."""
    if deadline is None or not val:
        return fit_to_budget(net, check_ms, settings.budget_ms, tolerance, threshold, mode), []
    cands = candidate_fits(net, check_ms, settings.budget_ms, tolerance, threshold, mode)
    recipe = sr.TrainRecipe(steps=int(opts.get("select_steps", 150)), batch_size=plan.batch_size,
                            patch_hr=plan.patch_hr, lr=float(opts.get("select_lr", 5e-4)), lr_final=1e-5,
                            seed=settings.seed + 5, threads=plan.threads)
    print(f"dnas: choosing among {len(cands)} candidates (one per trunk width C) by validation PSNR after up to "
          f"{recipe.steps} fine-tuning steps each from the supernet's weights", flush=True)
    scored = score_candidates(net, cands, patches, val, recipe, deadline)
    chosen = best(scored)
    table = [{"arch": s.fitted.arch.to_dict(), "latency_ms": s.fitted.latency_ms, "steps": s.steps,
              "val_psnr": s.val_psnr, "channels_fixed": s.channels_fixed, "chosen": s is chosen} for s in scored]
    return chosen.fitted, table


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
