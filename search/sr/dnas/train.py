"""Supernet training for ``strategy=dnas``: warm-up, width search, joint depth and width search,
with the predicted latency inside the loss, resumable from a checkpoint.

Loss in the search phases (Wu, Gong et al., ECCV 2022)::

    L1(net(lr), hr) + lambda * max(0, (latency - target) / (latency_supernet - target))

where ``latency`` is the supernet's expected latency (ms) from a differentiable latency model.
Weights (Adam, cosine decay) and architecture logits (``arch_optimizer``: shared-scale Adam by
default, see :mod:`search.sr.dnas.arch_optim`) step on the same batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from search.console import say
from search.sr.dnas.arch_optim import SharedScaleAdam
from search.sr.dnas.checkpoint import PHASES, SupernetState, load_checkpoint, save_checkpoint
from search.study.progress import fmt_s
from tasks.distributed import agree_min, is_main
from tasks.placement import CPU, Placement, Stepper
from tasks.sr.data import TrainPatches
from tasks.sr.evaluate import evaluate
from tasks.sr.supernet import BlockLatencyFn, FixedLatencyFn, SRSupernet
from tasks.sr.train import placed

ARCH_OPTIMIZERS = ("shared", "adam")  # search.sr.dnas.arch_optim.SharedScaleAdam, or torch's Adam


@dataclass(frozen=True)
class SupernetPlan:
    """Steps per phase (warm-up, width search, joint search) and the optimisation settings.

    ``timeout_s``: wall-clock cap on the three phases; after ``calibrate_steps`` steps, and again
    at every trajectory point, what is left of the phases shrinks in proportion when the measured
    rate would overrun it (kept in the checkpoint; phases never grow back). ``tau`` anneals geometrically from ``tau_start`` to ``tau_end`` over the
    search phases. ``eval_every``: steps between trajectory points (validation PSNR of the
    currently derived network, expected and derived latency).
    """

    warmup_steps: int
    width_steps: int
    joint_steps: int
    batch_size: int = 16
    patch_hr: int = 48
    lr: float = 1e-3
    lr_final: float = 1e-4
    arch_lr: float = 0.05
    arch_optimizer: str = "shared"
    arch_from: str = "joint"
    latency_lambda: float = 1.0
    tau_start: float = 2.0
    tau_end: float = 0.3
    timeout_s: float = math.inf
    calibrate_steps: int = 6
    checkpoint_every: int = 50
    eval_every: int = 100
    threads: int = 2
    placement: Placement = CPU  # device and mixed precision (tasks.placement)

    def __post_init__(self) -> None:
        if min(self.warmup_steps, self.width_steps, self.joint_steps) < 0 or self.total < 1:
            raise ValueError(f"phase steps must be >= 0 with a positive total, got {self}")
        if not (self.lr > 0 and self.arch_lr > 0 and self.latency_lambda >= 0 and self.tau_end > 0
                and self.tau_start >= self.tau_end):
            raise ValueError(f"need lr, arch_lr > 0, latency_lambda >= 0, tau_start >= tau_end > 0: {self}")
        if self.arch_optimizer not in ARCH_OPTIMIZERS:
            raise ValueError(f"arch_optimizer must be one of {ARCH_OPTIMIZERS}, got {self.arch_optimizer!r}")
        if self.arch_from not in PHASES[1:]:
            raise ValueError(f"arch_from must be one of {PHASES[1:]}, got {self.arch_from!r}")
        if self.checkpoint_every < 1 or self.eval_every < 1 or self.batch_size < 1:
            raise ValueError(f"checkpoint_every, eval_every and batch_size must be >= 1: {self}")

    @property
    def total(self) -> int:
        return self.warmup_steps + self.width_steps + self.joint_steps


@dataclass(frozen=True)
class LatencyTerm:
    """The differentiable latency model and the loss constants (ms)."""

    block_ms: BlockLatencyFn
    fixed_ms: FixedLatencyFn | None
    target_ms: float
    supernet_ms: float

    def penalty(self, latency_ms: torch.Tensor) -> torch.Tensor:
        """``max(0, (latency - target) / (latency_supernet - target))``; zero when the supernet
        itself fits the target (the budget does not bind)."""
        span = self.supernet_ms - self.target_ms
        if span <= 0:
            return latency_ms * 0.0
        return F.relu((latency_ms - self.target_ms) / span)


def _arch_optimizer(plan: SupernetPlan, net: SRSupernet) -> torch.optim.Optimizer:
    if plan.arch_optimizer == "adam":
        return torch.optim.Adam(net.arch_parameters(), lr=plan.arch_lr, betas=(0.5, 0.999))
    return SharedScaleAdam(net.arch_parameters(), lr=plan.arch_lr, betas=(0.5, 0.999))


def _tau(plan: SupernetPlan, state: SupernetState, step: int) -> float:
    search = state.phases[1] + state.phases[2]
    t = min(max(step - state.phases[0], 0) / max(search - 1, 1), 1.0)
    return plan.tau_start * (plan.tau_end / plan.tau_start) ** t


def _lr(plan: SupernetPlan, state: SupernetState, step: int) -> float:
    t = min(step / max(state.total - 1, 1), 1.0)
    return plan.lr_final + 0.5 * (plan.lr - plan.lr_final) * (1 + math.cos(math.pi * t))


def _fit_to_time(plan: SupernetPlan, state: SupernetState, seconds_per_step: float) -> None:
    """Shrink what is left of each phase in proportion so the plan ends by ``plan.timeout_s``
    (of supernet training, summed over resumed runs). Called after the calibration steps and
    again at every trajectory point, so a machine that slows down mid-run still ends on time."""
    left_steps = state.total - state.step
    affordable = agree_min(max((plan.timeout_s - state.elapsed_s) / max(seconds_per_step, 1e-9), 3.0))
    state.calibrated = True
    if left_steps <= 1.05 * affordable:
        return
    f, edge, phases = affordable / left_steps, 0, []
    for n in state.phases:
        done = min(max(state.step - edge, 0), n)
        rest = n - done
        phases.append(done + (max(1, round(rest * f)) if rest else 0))
        edge += n
    state.phases = phases
    say(f"  [supernet] {seconds_per_step:.2f} s/step: phases now {state.phases} (warm-up, width, joint) "
        f"to end within {plan.timeout_s:.0f} s")


TrajectoryFn = Callable[[SRSupernet, SupernetState, dict[str, Any]], None]


@dataclass
class _Session:
    """One process's share of the training (a resumed run starts a new session): its clock, the
    step it started at, and the supernet's pieces each step uses."""

    net: SRSupernet
    patches: TrainPatches
    val: list[Any]
    plan: SupernetPlan
    latency: LatencyTerm
    opts: dict[str, torch.optim.Optimizer]
    stepper: Stepper
    start_step: int
    base_elapsed_s: float
    started: float = field(default_factory=time.monotonic)
    last_print: float = field(default_factory=time.monotonic)


def train_supernet(
    net: SRSupernet, patches: TrainPatches, val: list[Any], plan: SupernetPlan, latency: LatencyTerm,
    checkpoint: Path, trajectory_point: TrajectoryFn,
) -> SupernetState:
    """Run (or resume) the three phases; returns the final state. ``trajectory_point(net, state,
    point)`` completes each trajectory point (e.g. with the derived net's predicted latency)."""
    opts = {"weights": torch.optim.Adam(net.weight_parameters(), lr=plan.lr),
            "arch": _arch_optimizer(plan, net)}
    state = SupernetState(phases=[plan.warmup_steps, plan.width_steps, plan.joint_steps])
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, net, opts, patches)
        say(f"resuming supernet from step {state.step} of {state.total}")
    if state.step >= state.total:  # searched already: the derivation is read off the loaded logits
        return state
    old_threads = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    session = _Session(net, patches, val, plan, latency, opts, plan.placement.stepper(), state.step, state.elapsed_s)
    try:
        with placed(net, patches, plan.placement):
            while state.step < state.total:
                phase = state.phase_at(state.step)
                l1, exp_ms = _step(session, state, phase)
                _after_step(session, state, phase, l1, exp_ms, checkpoint, trajectory_point)
    finally:
        torch.set_num_threads(old_threads)
    return state


def _on_cpu(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A latency model (fitted on the CPU) called with a supernet's rows on any device; autograd
    follows the copies, so the latency term's gradient reaches the logits on the GPU."""
    return lambda rows: fn(rows.cpu()).to(rows.device)


def _step(s: _Session, state: SupernetState, phase: str) -> tuple[float, float]:
    """One optimisation step of ``phase`` on one batch; returns its L1 and the expected latency (ms)."""
    net, plan, step = s.net, s.plan, state.step
    net.set_search(width=phase in ("width", "joint"), depth=phase == "joint")
    net.tau = _tau(plan, state, step)
    net.train()
    for group in s.opts["weights"].param_groups:
        group["lr"] = _lr(plan, state, step)
    lr_img, hr_img = s.patches.batch(plan.batch_size)
    lr_img = lr_img.contiguous(memory_format=torch.channels_last)
    with plan.placement.autocast():
        l1 = F.l1_loss(net(lr_img).float(), hr_img)
    if not math.isfinite(l1.item()):
        raise FloatingPointError(f"supernet L1 became {l1.item()} at step {step + 1}; lower the lr")
    loss = l1
    fixed = s.latency.fixed_ms
    exp_ms = net.expected_latency_ms(_on_cpu(s.latency.block_ms), fixed and _on_cpu(fixed))
    learn_arch = PHASES.index(phase) >= PHASES.index(plan.arch_from)
    if learn_arch:
        loss = loss + plan.latency_lambda * s.latency.penalty(exp_ms)
    for o in s.opts.values():
        o.zero_grad(set_to_none=True)
    s.stepper.backward(loss)
    s.stepper.step(*(s.opts.values() if learn_arch else [s.opts["weights"]]))
    state.step += 1
    state.elapsed_s = s.base_elapsed_s + time.monotonic() - s.started
    return l1.item(), exp_ms.item()


def _after_step(s: _Session, state: SupernetState, phase: str, l1: float, exp_ms: float, checkpoint: Path,
                trajectory_point: TrajectoryFn) -> None:
    """Refit the plan to the time cap, record a trajectory point, report, checkpoint: each when due."""
    plan, done_here = s.plan, state.step - s.start_step
    if math.isfinite(plan.timeout_s) and (done_here == plan.calibrate_steps + 1 or (
            state.calibrated and state.step % plan.eval_every == 0)):
        _fit_to_time(plan, state, (time.monotonic() - s.started) / done_here)
    boundary = state.phase_at(state.step) != phase or state.step == state.total
    if state.step % plan.eval_every == 0 or boundary:
        point = {"step": state.step, "phase": phase, "tau": round(s.net.tau, 4), "l1": l1, "expected_ms": exp_ms}
        s.net.eval()
        with torch.no_grad():
            point["val_psnr"] = evaluate(s.net, s.val, s.net.space.scale)["psnr"] if s.val else math.nan
        trajectory_point(s.net, state, point)
        state.trajectory.append(point)
    now = time.monotonic()
    if now - s.last_print > 20 or boundary:
        rate = done_here / max(now - s.started, 1e-9)
        left = (state.total - state.step) / max(rate, 1e-9)
        say(f"  [supernet {phase}] step {state.step}/{state.total} L1 {l1:.4f} "
            f"E[latency] {exp_ms:.1f} ms tau {s.net.tau:.2f} | {rate:.2f} steps/s, "
            f"left ~{fmt_s(left)}")
        s.last_print = now
    if (state.step % plan.checkpoint_every == 0 or boundary) and is_main():
        save_checkpoint(checkpoint, s.net, s.opts, s.patches, state)
