"""The SR task end to end: search the WDSR-B space under a latency budget, train the winner
and the baselines with one recipe, evaluate on every eval set, export."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

import tasks.sr as sr
from search.console import step_progress
from search.errors import UserError
from search.fidelity import NO_RUNGS, Fidelity, Reporter
from search.latency import LatencyEstimator
from search.study.objective import ConstrainedObjective
from search.train_settings import TrainSettings
from spaces import ArchError, BicubicArch, ESPCNArch, FSRCNNArch, SRSpace, WDSRBArch
from tasks.sr.evaluate import evaluate
from tasks.sr.train import train as train_model

BASELINES = {"bicubic": BicubicArch, "fsrcnn": FSRCNNArch, "espcn": ESPCNArch}


def train_roots(value: Any) -> tuple[Path, ...]:
    """``task.data.train_root``: null (the shipped T91), a folder, or a list of folders; a shipped
    set's name (``T91``, ``BSDS200``) stands for the copy in the package."""
    items = [sr.data.DEFAULT_TRAIN_ROOT] if value is None else value if isinstance(value, list | tuple) else [value]
    if not items or not all(isinstance(v, str | Path) for v in items):
        raise UserError(f"task.data.train_root={value!r}: give a folder or a list of folders, e.g. "
                        "'task.data.train_root=[T91,BSDS200]'")
    return tuple(sr.data.SHIPPED_TRAIN_SETS.get(str(v), Path(v)) for v in items)


@dataclass(frozen=True)
class SRSettings:
    space: SRSpace
    train_root: tuple[Path, ...]   # one folder, or several pooled (T91 + BSDS200)
    eval_roots: dict[str, Path]
    val_images: int
    proxy: sr.TrainRecipe
    final: sr.TrainRecipe
    baselines: tuple[str, ...]
    baseline_cache: bool

    @staticmethod
    def from_task(task: dict[str, Any], seed: int, train: TrainSettings) -> SRSettings:
        scale = int(task["scale"])
        space_cfg = task["space"]
        try:
            space = SRSpace(
                scale=scale,
                min_blocks=int(space_cfg["min_blocks"]),
                max_blocks=int(space_cfg["max_blocks"]),
                channels=tuple(int(c) for c in space_cfg["channels"]),
                m1=tuple(int(v) for v in space_cfg["m1"]),  # type: ignore[arg-type]
                m2=tuple(int(v) for v in space_cfg["m2"]),  # type: ignore[arg-type]
            )
        except (ArchError, TypeError, ValueError) as err:
            raise UserError(f"task.space: {err}") from None
        data = task["data"]
        eval_roots = data["eval_roots"] or sr.data.DEFAULT_EVAL_ROOTS
        if not isinstance(eval_roots, dict):
            raise UserError("data.eval_roots must map names to folders, e.g. "
                            "'task.data.eval_roots={set5: /data/Set5, urban100: /data/Urban100}'")
        unknown = [b for b in task["baselines"] if b not in BASELINES]
        if unknown:
            raise UserError(f"unknown baselines {unknown}; choose from {sorted(BASELINES)}")

        def recipe(section: str, seed_offset: int) -> sr.TrainRecipe:
            r = task[section]
            try:
                return sr.TrainRecipe(
                    steps=int(r["steps"]), batch_size=int(r["batch_size"]),
                    patch_hr=int(r["patch_hr"]), lr=float(r["lr"]),
                    seed=seed + seed_offset, threads=train.threads, placement=train.placement,
                )
            except (KeyError, TypeError, ValueError) as err:
                raise UserError(f"task.{section} is malformed ({err}); it needs steps, batch_size, "
                                "patch_hr, lr") from None

        return SRSettings(
            space=space,
            train_root=train_roots(data["train_root"]),
            eval_roots={str(k).lower(): Path(v) for k, v in eval_roots.items()},
            val_images=_val_images(data["val_images"]),
            proxy=recipe("proxy", 1),
            final=recipe("final", 2),
            baselines=tuple(task["baselines"]),
            baseline_cache=bool(task["baseline_cache"]),
        )


@dataclass(frozen=True)
class SRData:
    """Train patches for the proxy and final trainings, a held-out validation split of the
    training folder (scores candidates; the benchmarks stay untouched), and the eval sets."""

    proxy_patches: Any
    final_patches: Any
    val: list[Any]
    evals: dict[str, list[Any]]


def load_data(settings: SRSettings, seed: int) -> SRData:
    scale = settings.space.scale
    try:
        proxy_patches = sr.TrainPatches(settings.train_root, scale, settings.proxy.patch_hr,
                                        seed=seed, val_images=settings.val_images)
        val = proxy_patches.val_set()
        final_patches = sr.TrainPatches(settings.train_root, scale, settings.final.patch_hr, seed=seed + 1)
        evals = {name: sr.load_eval_set(root, scale) for name, root in settings.eval_roots.items()}
    except sr.DataError as err:
        raise UserError(str(err)) from None
    return SRData(proxy_patches, final_patches, val, evals)


def _val_images(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"task.data.val_images={value!r} must be an integer of at least 1: candidates are scored on "
                        "that many held-out training images")
    return value


def check_budget(space: SRSpace, estimator: LatencyEstimator, budget_ms: float) -> float:
    """The smallest member's latency; a budget below it cannot be met by any architecture. A
    space whose extremes lie outside the latency model's fitted range is refused first."""
    estimator.check_range([space.smallest(), space.largest()], f"the SR space (channels {list(space.channels)})")
    floor_ms = estimator.latency_ms(space.smallest())
    if floor_ms > budget_ms:
        raise UserError(
            f"budget_ms={budget_ms:g} is below the smallest architecture in the space "
            f"({floor_ms:.2f} ms on {estimator.device.name}: 1 block, narrowest widths); "
            f"raise budget_ms above {floor_ms:.2f} or shrink the LR size (device.lr_hw)"
        )
    return floor_ms


def objective(settings: SRSettings, estimator: LatencyEstimator, budget_ms: float, near_budget: float,
              patches: Any, val: list[Any], two_objectives: bool, fidelity: Fidelity = NO_RUNGS) -> ConstrainedObjective:
    """One trial: sample, estimate latency, record the constraint, proxy-train only candidates
    within ``near_budget`` of the budget, score PSNR-Y on the held-out validation images, at each
    of ``fidelity``'s rungs (the pruner may stop it there) and at the end."""
    rungs = fidelity.rungs(settings.proxy.steps)

    def score(arch: WDSRBArch, report: Reporter) -> float:
        model = sr.build_model(arch)
        stop, scores = [False], {}

        def at_step(step: int, loss: float) -> None:
            if step in rungs[:-1]:
                scores[step] = evaluate(model, val, arch.scale)["psnr"]
                stop[0] = report(step, scores[step])

        # DivergedError: run_study fails this trial only
        stats = train_model(model, patches, settings.proxy, progress=at_step, should_stop=lambda: stop[0])
        psnr = scores[stats.steps] if stop[0] else evaluate(model, val, arch.scale)["psnr"]
        if not stop[0]:
            report.final(stats.steps, psnr)
        return psnr

    return ConstrainedObjective(
        sample=settings.space.sample, latency_ms=estimator.latency_ms, score=score, budget_ms=budget_ms,
        near_budget=near_budget, quality_key="val_psnr", two_objectives=two_objectives,
        attrs=lambda arch: {"params_count": sr.num_params(sr.build_model(arch))},
    )


def describe_trial(trial: optuna.trial.FrozenTrial) -> str:
    lat = trial.user_attrs.get("latency_ms")
    arch = trial.user_attrs.get("arch") or {}
    shape = f"{len(arch.get('blocks', []))}x C{arch.get('channels') or '?'}"
    if not trial.user_attrs.get("trained"):
        return f"#{trial.number} {shape} {lat:.1f} ms (over budget, not trained)" if lat else f"#{trial.number}"
    stopped = f" (stopped at step {trial.user_attrs['proxy_steps']})" if trial.state.name == "PRUNED" else ""
    return f"#{trial.number} {shape} {lat:.1f} ms {trial.user_attrs['val_psnr']:.2f} dB{stopped}"


def train_and_evaluate(arch: Any, recipe: sr.TrainRecipe, patches: Any, evals: dict[str, list[Any]],
                       label: str, checkpoint: Path | None = None,
                       init_state: dict[str, torch.Tensor] | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train ``arch`` with ``recipe`` (bicubic needs none) and evaluate it on every eval set.
    ``init_state``: weights to start from (fine-tuning) instead of a fresh initialisation."""
    model = sr.build_model(arch)
    if init_state is not None:
        model.load_state_dict(init_state)
    started = time.monotonic()
    progress = step_progress(label, recipe.steps)

    if sr.num_params(model) > 0:
        try:
            train_model(model, patches, recipe, progress=progress, checkpoint_path=checkpoint)
        except sr.DivergedError as err:
            raise UserError(f"training {label} diverged: {err}; lower task.final.lr") from None
    train_s = time.monotonic() - started
    scores = sr.evaluate_sets(model, evals, arch.scale)
    return model, {"train_s": round(train_s, 1), "steps": recipe.steps if train_s > 0.5 else 0,
                   "params": sr.num_params(model), "eval": scores}


def baseline_archs(names: tuple[str, ...], scale: int) -> dict[str, Any]:
    return {name: BASELINES[name](scale) for name in names}


def assert_in_space(space: SRSpace, arch: WDSRBArch) -> None:
    try:
        space.validate(arch)
    except ArchError as err:
        raise UserError(str(err)) from None
