"""Sandwich training of an All-in-One network: every operating point in one set of weights.

Each step draws one batch and sums the L1 losses of the largest point, the smallest point and
``n_random`` points drawn from the ones in between (the sandwich rule of slimmable networks /
BigNAS), then takes one Adam step. With two or three points every point is trained every step.
The learning rate schedule, patches, batch size and threads come from the same
:class:`~tasks.sr.train.TrainRecipe` a network trained alone uses, so "trained alone" and
"trained together" differ only in the sharing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from tasks.sr.allinone import AllInOneWDSRB
from tasks.sr.data import TrainPatches
from tasks.sr.train import DivergedError, TrainRecipe, TrainStats, placed


def sandwich_points(names: tuple[str, ...], n_random: int, gen: torch.Generator) -> list[str]:
    """The points trained in one step: the first (largest), the last (smallest) and
    ``n_random`` distinct ones from between them, drawn with ``gen``."""
    if len(names) <= 2:
        return list(dict.fromkeys(names))
    middle = list(names[1:-1])
    k = min(n_random, len(middle))
    picks = torch.randperm(len(middle), generator=gen)[:k].tolist() if k else []
    return [names[0], *(middle[i] for i in sorted(picks)), names[-1]]


def train_allinone(
    model: AllInOneWDSRB,
    patches: TrainPatches,
    recipe: TrainRecipe,
    n_random: int = 1,
    progress: Callable[[int, float], None] | None = None,
    top_weight: float = 1.0,
) -> TrainStats:
    """Train every operating point of ``model`` in place for ``recipe.steps`` steps.

    ``top_weight`` multiplies the largest point's L1 in the sum (the others weigh 1).
    ``progress(step, loss)`` gets the 1-based step and the summed L1 of that step. The active
    operating point is restored afterwards. Raises :class:`~tasks.sr.train.DivergedError`.
    """
    if not top_weight > 0:
        raise ValueError(f"top_weight must be > 0, got {top_weight}")
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(recipe.seed)  # the same sub-networks on every rank (tasks.distributed)
    active, was_training = model.operating_point, model.training
    old_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    t0 = time.perf_counter()
    try:
        with placed(model, patches, recipe.placement):
            model.train()
            opt = torch.optim.Adam(params, lr=recipe.lr)
            step, recent = _loop(model, opt, patches, recipe, n_random, progress, top_weight, gen)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
        model.set_operating_point(active)
    final = sum(recent) / len(recent) if recent else math.nan
    return TrainStats(steps=step, seconds=time.perf_counter() - t0, final_loss=final)


def _loop(model: AllInOneWDSRB, opt: torch.optim.Optimizer, patches: TrainPatches, recipe: TrainRecipe,
          n_random: int, progress: Callable[[int, float], None] | None, top_weight: float,
          gen: torch.Generator) -> tuple[int, list[float]]:
    loss_fn, stepper, place = nn.L1Loss(), recipe.placement.stepper(), recipe.placement
    recent: list[float] = []
    step = 0
    while step < recipe.steps:
        for group in opt.param_groups:
            group["lr"] = recipe.lr_at(step)
        lr, hr = (t.contiguous(memory_format=torch.channels_last) for t in patches.batch(recipe.batch_size))
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for name in sandwich_points(model.point_names, n_random, gen):
            with place.autocast():
                loss = loss_fn(model.forward_point(lr, model._widths[name]).float(), hr)
            # one graph at a time: memory of one sub-network, same gradient sum
            stepper.backward(loss * top_weight if name == model.point_names[0] else loss)
            total += loss.item()
        if not math.isfinite(total):
            raise DivergedError(step + 1, total)
        stepper.step(opt)
        step += 1
        recent = (recent + [total])[-100:]
        if progress is not None:
            progress(step, total)
    return step, recent
