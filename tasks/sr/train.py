"""L1 / Adam training of an SR model on random patches, on the CPU or a GPU, resumable."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from tasks.distributed import is_main
from tasks.placement import CPU, Placement, Stepper
from tasks.sr.data import TrainPatches

CHECKPOINT_FORMAT = "hwnas.sr.train_checkpoint"
CHECKPOINT_VERSION = 1


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; ``step`` is the 1-based step that produced it."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"training diverged at step {step}: loss {loss}; lower the learning rate")
        self.step = step
        self.loss = loss


@dataclass(frozen=True)
class TrainRecipe:
    """One training run. ``lr`` decays to ``lr_final`` on a cosine over ``steps``.

    ``threads`` sets torch's intra-op threads for the run (restored afterwards); ``placement`` is the
    device and mixed-precision mode (:mod:`tasks.placement`); ``checkpoint_every`` is in steps.
    """

    steps: int
    batch_size: int = 16
    patch_hr: int = 96
    lr: float = 1e-3
    lr_final: float = 1e-5
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 500
    placement: Placement = CPU

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.patch_hr < 1 or self.threads < 1:
            raise ValueError(f"invalid recipe {self}")
        if not (self.lr > 0 and 0 <= self.lr_final <= self.lr):
            raise ValueError(f"need lr > 0 and 0 <= lr_final <= lr, got {self.lr}, {self.lr_final}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")

    def lr_at(self, step: int) -> float:
        """Learning rate of 0-based ``step``."""
        if self.steps <= 1:
            return self.lr
        t = min(step, self.steps - 1) / (self.steps - 1)
        return self.lr_final + 0.5 * (self.lr - self.lr_final) * (1 + math.cos(math.pi * t))


@dataclass(frozen=True)
class TrainStats:
    """``steps``: steps done in total (including any resumed); ``seconds``: wall time of this call;
    ``final_loss``: mean L1 of the last (up to) 100 steps of this call (nan if none ran)."""

    steps: int
    seconds: float
    final_loss: float
    resumed_from: int = 0
    stopped: bool = False

    @property
    def steps_per_second(self) -> float:
        done = self.steps - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


def _save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int,
                     patches: TrainPatches) -> None:
    state = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": step,
        "model": model.state_dict(), "optimizer": opt.state_dict(), "patches": patches.state_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def _load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, patches: TrainPatches) -> int:
    """The step to resume from. A file that is no checkpoint of this model (a torn write, another
    format, or another architecture: a re-run whose winner changed) is set aside with a message,
    and training starts afresh; the model is only touched when everything matches."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an SR training checkpoint")
        own = model.state_dict()
        theirs = state["model"]
        if set(theirs) != set(own) or any(theirs[k].shape != own[k].shape for k in own):
            raise ValueError("saved for another architecture")
        model.load_state_dict(theirs)
        opt.load_state_dict(state["optimizer"])
        patches.load_state_dict(state["patches"])
        return int(state["step"])
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError) as err:
        aside = path.with_name(f"{path.stem}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
        os.replace(path, aside)
        print(f"{path}: {str(err)[:200]}; moved to {aside.name}, training from the start", flush=True)
        return 0


def _step(model: nn.Module, opt: torch.optim.Optimizer, stepper: Stepper, patches: TrainPatches,
          recipe: TrainRecipe, step: int) -> float:
    """One optimisation step at 0-based ``step``; returns the batch's L1 loss."""
    for group in opt.param_groups:
        group["lr"] = recipe.lr_at(step)
    lr, hr = (t.contiguous(memory_format=torch.channels_last) for t in patches.batch(recipe.batch_size))
    with recipe.placement.autocast():
        loss = F.l1_loss(model(lr).float(), hr)
    value = loss.item()
    if not math.isfinite(value):
        raise DivergedError(step + 1, value)
    opt.zero_grad(set_to_none=True)
    stepper.backward(loss)
    stepper.step(opt)
    return value


@contextlib.contextmanager
def placed(model: nn.Module, patches: TrainPatches, placement: Placement) -> Iterator[None]:
    """``model`` and the training images on the placement's device, in channels_last, for one
    training; back where they were (and contiguous) afterwards, since search and export run on the CPU.
    channels_last runs WDSR-B's small 1x1/3x3 convs ~1.5x faster on CPU (oneDNN); neutral for
    FSRCNN/ESPCN. Parameters are converted in place, so optimizers keep their references."""
    home = next(model.parameters()).device
    model.to(placement.torch_device, memory_format=torch.channels_last)
    patches.to(placement.torch_device)
    try:
        yield
    finally:
        model.to(home, memory_format=torch.contiguous_format)
        patches.to(home)


def train(
    model: nn.Module,
    patches: TrainPatches,
    recipe: TrainRecipe,
    progress: Callable[[int, float], None] | None = None,
    checkpoint_path: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainStats:
    """Train ``model`` in place with L1 loss and Adam for ``recipe.steps`` steps.

    ``patches`` must be built with the recipe's patch size (its ``patch_hr`` is used as is).
    ``progress(step, loss)`` is called after every step (1-based step, L1 loss of that batch).
    With ``checkpoint_path``, training resumes from that file if it exists and saves model,
    optimizer, sampler state and step there every ``recipe.checkpoint_every`` steps and at the end.
    ``should_stop()`` is polled every step; when true, training saves and returns early.
    Models without parameters (bicubic) return at once. Raises :class:`DivergedError`.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return TrainStats(steps=0, seconds=0.0, final_loss=math.nan)
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    with placed(model, patches, recipe.placement):
        opt = torch.optim.Adam(params, lr=recipe.lr)
        start = _load_checkpoint(ckpt, model, opt, patches) if ckpt is not None and ckpt.exists() else 0
        step, stopped, recent, t0 = _loop(model, opt, patches, recipe, start, progress, ckpt, should_stop)
    seconds = time.perf_counter() - t0
    final = sum(recent) / len(recent) if recent else math.nan
    return TrainStats(steps=step, seconds=seconds, final_loss=final, resumed_from=start, stopped=stopped)


def _loop(model: nn.Module, opt: torch.optim.Optimizer, patches: TrainPatches, recipe: TrainRecipe, start: int,
          progress: Callable[[int, float], None] | None, ckpt: Path | None,
          should_stop: Callable[[], bool] | None) -> tuple[int, bool, deque[float], float]:
    """Steps ``start`` .. ``recipe.steps`` (or until ``should_stop``); checkpoints from rank 0 only."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    recent: deque[float] = deque(maxlen=100)
    step, stopped, stepper = start, False, recipe.placement.stepper()
    save = ckpt is not None and is_main()
    was_training = model.training
    model.train()
    t0 = time.perf_counter()
    try:
        while step < recipe.steps:
            value = _step(model, opt, stepper, patches, recipe, step)
            step += 1
            recent.append(value)
            if progress is not None:
                progress(step, value)
            if save and step % recipe.checkpoint_every == 0:
                _save_checkpoint(ckpt, model, opt, step, patches)
            if should_stop is not None and step < recipe.steps and should_stop():
                stopped = True
                break
        if save and step > start:
            _save_checkpoint(ckpt, model, opt, step, patches)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    return step, stopped, recent, t0
