"""The ViT trials' latency on this host: the latency toolkit's additive predictor
(:func:`latency_models.fit`), fitted at the start of the run on members of the token-pruned
family timed in ``task.runtime``, each beside the unpruned model.

Timing every trial lets the host's phase decide feasibility: in one default run the trials were
timed high, 5 of 36 fitted and the winner was over-pruned. Here each sample's figure is its
ratio to the unpruned model timed in the same interleaved group, times the unpruned model's
reference latency (the budget's), so the fitted model reads in the budget's own units whatever the
host did while it was collected; the constraint takes its upper ``task.predictor.quantile``
bound (cross-validated residuals and a bootstrap ensemble), and the best candidates are then
re-timed beside the unpruned model (:func:`search.vit.optuna_run.confirmed_best`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

import latency_models
from latency_models.interleave import interleaved_in, paired_ratio
from latency_models.learn import MIN_SAMPLES
from search.console import say
from search.errors import UserError
from search.latency import LatencyEstimator
from search.settings import DeviceProfile
from search.vit.latency_check import MEMBER, LatencyCheck
from spaces.sampling import RandomSuggester
from spaces.vit import TokenPruneArch, TokenPruneSpace

GROUP = 4          # candidates per interleaved group, each group with the unpruned model in it
ROUNDS = 5         # interleaved rounds per group; a member's ratio is the median of its per-round ratios
RUNS, WARMUP = 10, 5
# untimed runs before each timing: a model timed right after another inherits its caches (the item
# at the turn of the reversed order is timed twice in a row and reads low otherwise)
SETTLE = 2


@dataclass(frozen=True)
class FamilyFit:
    """``task.predictor``: ``samples`` members timed to fit it (0: time every trial instead),
    ``quantile`` the constraint's upper bound (None: the point prediction)."""

    samples: int
    quantile: float | None

    @staticmethod
    def from_task(section: dict[str, Any]) -> FamilyFit:
        try:
            samples, quantile = int(section["samples"]), section["quantile"]
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"task.predictor is malformed ({err}): give samples (int) and quantile") from None
        if samples != 0 and samples < MIN_SAMPLES:
            raise UserError(f"task.predictor.samples={samples}: give 0 (time every trial) or at least "
                            f"{MIN_SAMPLES} members to fit the predictor on")
        if quantile is not None:
            q = float(quantile)
            if not 0.5 <= q < 1.0:  # nan fails too
                raise UserError(f"task.predictor.quantile={quantile!r}: give a level in [0.5, 1) or null")
            quantile = q
        return FamilyFit(samples, quantile)


def family_members(space: TokenPruneSpace, n: int, seed: int) -> list[TokenPruneArch]:
    """``n`` distinct members: the most pruned one (the range's floor) and seeded random ones."""
    members = {space.most_pruned().key: space.most_pruned()}
    rng = RandomSuggester(seed)
    for _ in range(50 * n):
        if len(members) >= n:
            break
        arch = space.sample(rng)
        members.setdefault(arch.key, arch)
    return list(members.values())


def timed_ratios(build: Callable[[Any], torch.nn.Module], archs: Sequence[TokenPruneArch],
                 unpruned: torch.nn.Module, shape: tuple[int, ...], backend: str, threads: int) -> list[float]:
    """Each member's latency over the unpruned model's, both timed in one interleaved group."""
    ratios: list[float] = []
    for start in range(0, len(archs), GROUP):
        group = [(build(a), shape) for a in archs[start:start + GROUP]]
        timed = interleaved_in(backend, [*group, (unpruned, shape)], threads, rounds=ROUNDS, runs=RUNS,
                               warmup=WARMUP, settle=SETTLE)
        ratios += [paired_ratio(t, timed[-1]) for t in timed[:-1]]
        say(f"latency predictor: {len(ratios)}/{len(archs)} members timed beside the unpruned model "
            f"(last ratio {ratios[-1]:.3f})")
    return ratios


def fitted_estimator(device: DeviceProfile, space: TokenPruneSpace, build: Callable[[Any], torch.nn.Module],
                     shape: tuple[int, ...], backend: str, reference_ms: float, fit: FamilyFit,
                     seed: int) -> tuple[LatencyEstimator, LatencyCheck]:
    """An estimator whose figures are the predictor's (upper bound) in the units of ``reference_ms``,
    the unpruned model's latency the budget was set from, and the check it starts with (its
    members, in sample)."""
    threads = device.measure_threads
    archs = family_members(space, fit.samples, seed)
    unpruned = build(space.unpruned())
    ratios = timed_ratios(build, archs, unpruned, shape, backend, threads)
    samples = [(build(a), shape, r * reference_ms) for a, r in zip(archs, ratios)]
    predictor = latency_models.fit(samples, threads=threads, device=device.name, backend=backend, seed=seed)
    cv = predictor.manifest.get("cv_metrics") or {}
    extra = {} if fit.quantile is None else {"quantile": fit.quantile}

    def predict(members: Sequence[Any]) -> list[float]:
        return [predictor.predict(build(a), shape, **extra) for a in members]

    bound = "point prediction" if fit.quantile is None else f"upper {fit.quantile:.0%} bound"
    check = LatencyCheck(reference_ms, bound)
    for arch, ratio, (model, _, _) in zip(archs, ratios, samples):
        check.add(MEMBER, arch.keep_rates, ratio, predictor.predict(model, shape),
                  predictor.predict(model, shape, **extra))
    source = (f"latency_models additive predictor fitted here on {len(archs)} token-pruned members timed in "
              f"{backend} ({threads} thread(s), input {shape}) beside the unpruned model, in units of its "
              f"{reference_ms:.2f} ms; {bound}")
    note = f"cross-validated on the members: {_metrics_text(cv)}"
    say(f"latency predictor: {note}")
    return LatencyEstimator("predictor", device, source, False, predict, [note], predictor=predictor), check


def _metrics_text(cv: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in cv.items()) or "no metrics"
