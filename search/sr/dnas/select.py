"""Choosing the derived network by validation: one fitted candidate per trunk width C, each
fine-tuned briefly from the supernet's weights and scored on the held-out validation images.

Why: the trunk width C, which every block's latency depends on, collapses to its narrowest
choice in the supernet search (measured: C=8 at 16, 33.3 and 66 ms on s21, with per-logit Adam
and with the shared-scale optimizer alike, while the Optuna strategies' best nets used C=16-24). The depth gates and the per-block
width masks still say which blocks and channels matter; reading them off at each C and letting
validation decide keeps what the supernet learned without trusting its C.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tasks.sr as sr
from search.sr.dnas.derive import Fitted, PredictFn, fit_to_budget
from tasks.sr.evaluate import evaluate
from tasks.sr.supernet import SRSupernet
from tasks.sr.train import TrainRecipe
from tasks.sr.train import train as train_model


@dataclass(frozen=True)
class Scored:
    fitted: Fitted
    channels_fixed: bool    # False: the supernet's own C (the plain derivation)
    steps: int              # fine-tuning steps done from the supernet's weights
    val_psnr: float


def candidate_fits(net: SRSupernet, predict: PredictFn, budget_ms: float, tolerance: float,
                   threshold: float, mode: str) -> list[tuple[Fitted, bool]]:
    """The plain derivation first, then one fitted architecture per other trunk width, without
    duplicates, each within the budget and (when the budget binds) within ``tolerance`` under it,
    as the plain one aims to be. ``(fitted, channels_fixed)`` each."""
    plain = fit_to_budget(net, predict, budget_ms, tolerance, threshold, mode)
    out, seen = [(plain, False)], {plain.arch}
    binds = predict([net.space.largest()])[0] > budget_ms
    floor_ms = (1 - tolerance) * budget_ms if binds else 0.0
    if net.search_channels:
        for c in sorted(net.space.channels, reverse=True):
            fitted = fit_to_budget(net, predict, budget_ms, tolerance, threshold, mode, channels=c)
            if floor_ms <= fitted.latency_ms <= budget_ms and fitted.arch not in seen:
                seen.add(fitted.arch)
                out.append((fitted, True))
    return out


def score_candidates(net: SRSupernet, candidates: list[tuple[Fitted, bool]], patches: Any, val: list[Any],
                     recipe: TrainRecipe, deadline: float = math.inf,
                     log: Callable[[str], None] = print) -> list[Scored]:
    """Fine-tune each candidate from the supernet's weights for ``recipe.steps`` steps (fewer when
    the ``time.monotonic()`` ``deadline`` would pass: the time left is split evenly) and score
    PSNR-Y on ``val``."""
    scored = []
    for i, (fitted, fixed) in enumerate(candidates):
        model = sr.build_model(fitted.arch)
        model.load_state_dict(net.subnet_state_dict(fitted.arch, list(fitted.kept)))
        share = (deadline - time.monotonic()) / (len(candidates) - i)
        stop_at = time.monotonic() + share
        stats = train_model(model, patches, recipe, should_stop=lambda t=stop_at: time.monotonic() > t)
        psnr = evaluate(model, val, fitted.arch.scale)["psnr"]
        scored.append(Scored(fitted, fixed, stats.steps, psnr))
        log(f"  [select] C={fitted.arch.channels} {fitted.arch.depth} blocks {fitted.latency_ms:.2f} ms: "
            f"{stats.steps} steps from the supernet's weights, val PSNR-Y {psnr:.3f}")
    return scored


def best(scored: list[Scored]) -> Scored:
    """Highest validation PSNR; ties go to the plain derivation (listed first)."""
    return max(scored, key=lambda s: s.val_psnr)
