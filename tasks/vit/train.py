"""Computation-aware selector training (SPViT / DynamicViT objective).

loss = CE(student, label)
       + kl_weight    * KL(teacher || student) on logits (temperature ``kl_temperature``)
       + token_weight * MSE(student, teacher) over the final tokens the student kept
       + keep_weight  * sum over stages of (mean keep ratio - target)^2
The teacher is the unpruned model; the student runs the Gumbel + straight-through path.

The last ``hard_steps`` steps run the inference path instead (top-k, exactly the kept count,
dropped tokens fused into the package token) with CE + KL only: the soft path masks tokens out
of attention and keeps a varying count per image, so a backbone tuned only there meets a
different token set at inference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tasks.placement import CPU, Placement
from tasks.vit.data import Data, endless_batches
from tasks.vit.errors import TokenPruneError
from tasks.vit.patch import TokenPrunedViT


@dataclass(frozen=True)
class SelectorRecipe:
    """``backbone_lr`` 0 freezes the ViT (only selectors learn, backbone in eval mode)."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    backbone_lr: float = 0.0
    weight_decay: float = 0.0
    kl_weight: float = 0.5
    kl_temperature: float = 1.0
    token_weight: float = 0.5
    keep_weight: float = 2.0
    hard_steps: int = 0  # the last this many steps on the inference path (top-k), CE + KL only
    seed: int = 0
    time_budget_s: float | None = None
    placement: Placement = CPU  # device and mixed precision (tasks.placement)


@dataclass
class SelectorLog:
    steps: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)  # total loss per step
    parts: dict[str, float] = field(default_factory=dict)  # mean of each term over the last 20 steps


def selector_loss(student: TokenPrunedViT, teacher: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  keep_targets: Sequence[float], recipe: SelectorRecipe,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The training objective on one batch (student in training mode); returns (loss, terms)."""
    with torch.no_grad():
        t_tokens = teacher.forward_features(images)
        t_logits = teacher.forward_head(t_tokens)
    logits, aux = student.forward_with_aux(images, generator)
    if aux.mask is None:
        raise TokenPruneError("student is not on the training path: call student.train() first")
    ce = F.cross_entropy(logits, labels)
    temp = recipe.kl_temperature
    kl = F.kl_div(F.log_softmax(logits / temp, -1), F.log_softmax(t_logits / temp, -1),
                  reduction="batchmean", log_target=True) * temp * temp
    p, n = student.vit.num_prefix_tokens, aux.mask.shape[1]
    err = (aux.tokens[:, p:p + n] - t_tokens[:, p:p + n]).pow(2).mean(-1)
    tok = (err * aux.mask).sum() / aux.mask.sum().clamp_min(1.0)
    keep = sum((r.mean() - t) ** 2 for r, t in zip(aux.keep_ratios, keep_targets))
    loss = ce + recipe.kl_weight * kl + recipe.token_weight * tok + recipe.keep_weight * keep
    terms = {"ce": ce.item(), "kl": kl.item(), "token_mse": tok.item(), "keep": float(keep.detach()),
             "keep_ratio_last": aux.keep_ratios[-1].mean().item()}
    return loss, terms


def hard_loss(student: TokenPrunedViT, teacher: nn.Module, images: torch.Tensor, labels: torch.Tensor,
              recipe: SelectorRecipe) -> tuple[torch.Tensor, dict[str, float]]:
    """CE + KL on the inference path (top-k), the student in training mode."""
    with torch.no_grad():
        t_logits = teacher(images)
    logits, _ = student.forward_with_aux(images, hard=True)
    ce = F.cross_entropy(logits, labels)
    temp = recipe.kl_temperature
    kl = F.kl_div(F.log_softmax(logits / temp, -1), F.log_softmax(t_logits / temp, -1),
                  reduction="batchmean", log_target=True) * temp * temp
    return ce + recipe.kl_weight * kl, {"ce": ce.item(), "kl": kl.item()}


def train_selectors(student: TokenPrunedViT, teacher: nn.Module, data: Data,
                    recipe: SelectorRecipe = SelectorRecipe(),
                    keep_targets: Sequence[float] | None = None) -> SelectorLog:
    """Fine-tune ``student``'s selectors (and its backbone if ``recipe.backbone_lr`` > 0) in place.

    ``teacher``: the unpruned timm ViT (``forward_features`` / ``forward_head``), kept frozen and
    in eval mode; it must not share weights with a student whose backbone is trained.
    ``keep_targets`` default to the student's keep rates. Leaves the student in eval mode.
    """
    if not isinstance(student, TokenPrunedViT) or student.selectors is None:
        raise TokenPruneError("student must come from patch_token_selectors()")
    if not 0 <= recipe.hard_steps <= recipe.steps:
        raise TokenPruneError(f"hard_steps={recipe.hard_steps} must be within [0, steps={recipe.steps}]")
    targets = tuple(student.keep_rates if keep_targets is None else keep_targets)
    if len(targets) != len(student.stages):
        raise TokenPruneError(f"{len(targets)} keep targets for {len(student.stages)} stages")
    train_backbone = recipe.backbone_lr > 0
    if train_backbone and teacher is student.vit:
        raise TokenPruneError("teacher shares weights with the student's backbone; pass copy.deepcopy(model)")
    groups = [{"params": student.selector_parameters(), "lr": recipe.lr}]
    if train_backbone:
        groups.append({"params": list(student.vit.parameters()), "lr": recipe.backbone_lr})
    opt = torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)
    frozen = [q for q in student.vit.parameters() if q.requires_grad] if not train_backbone else []
    gen = torch.Generator().manual_seed(recipe.seed)
    place, home = recipe.placement, next(student.parameters()).device
    batches = endless_batches(data, recipe.batch_size, gen, for_gpu=place.is_cuda)
    log, history = SelectorLog(), []
    teacher.eval().to(place.torch_device)
    student.train().to(place.torch_device)
    if not train_backbone:
        student.vit.eval()  # no dropout / drop-path in a frozen backbone
    start = time.perf_counter()
    try:
        for q in frozen:
            q.requires_grad_(False)  # gradients still flow through it to earlier selectors
        _steps(student, teacher, opt, batches, recipe, targets, gen, log, history, start)
    finally:
        for q in frozen:
            q.requires_grad_(True)
        student.eval().to(home)
        teacher.to(home)
    log.seconds = time.perf_counter() - start
    last = [h for h in history[-20:] if h.keys() == history[-1].keys()]
    log.parts = {k: sum(h[k] for h in last) / len(last) for k in last[0]} if last else {}
    return log


def _steps(student: TokenPrunedViT, teacher: nn.Module, opt: torch.optim.Optimizer, batches: Any,
           recipe: SelectorRecipe, targets: Sequence[float], gen: torch.Generator, log: SelectorLog,
           history: list[dict[str, float]], start: float) -> None:
    """The optimisation steps (cosine-decayed lr; the last ``hard_steps`` on the inference path)."""
    place, stepper = recipe.placement, recipe.placement.stepper()
    base_lrs = [g["lr"] for g in opt.param_groups]
    for step in range(recipe.steps):
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / recipe.steps))
        images, labels = (t.to(place.torch_device, non_blocking=True) for t in next(batches))
        with place.autocast():
            if step >= recipe.steps - recipe.hard_steps:
                loss, terms = hard_loss(student, teacher, images, labels, recipe)
            else:
                loss, terms = selector_loss(student, teacher, images, labels, targets, recipe, gen)
        opt.zero_grad(set_to_none=True)
        stepper.backward(loss)
        stepper.step(opt)
        log.losses.append(loss.item())
        history.append(terms)
        log.steps = step + 1
        if recipe.time_budget_s is not None and time.perf_counter() - start > recipe.time_budget_s:
            break
