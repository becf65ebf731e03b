"""``task=vit strategy=dnas``: SPViT's computation-aware training, no trial-by-trial search and
no differentiable one either: a bisection over SPViT's geometric keep-rate schedule.

The latency budget implies the keep-ratio targets: on SPViT's geometric schedule, every stage
keeps the same fraction ``rho`` of the previous stage's tokens (``keep_rates = (rho, rho^2,
rho^3)``, floored at the space's ``min_keep``), and ``rho`` is the largest value of the space's
grid whose latency (the run's estimator: measured on this host, or a fitted predictor) fits the
budget, found by bisection. The selectors and the backbone are then trained once toward those
targets with the computation-aware loss (cross-entropy, distillation from the unpruned teacher,
keep-ratio term; ``task.final``) and the run ends with the same outputs as the Optuna path.
"""

from __future__ import annotations

from typing import Any

from search.console import say
from search.result import Result
from search.settings import RunContext
from search.study.bisection import last_within
from search.vit.finish import Found, finish_vit
from search.vit.prepare import ViTSetup, prepare_vit


def schedule(setup: ViTSetup, rho: float) -> Any:
    """The space's member that keeps ``rho`` of the previous stage's tokens at every stage."""
    space = setup.space
    n = len(space.stage_choices[0])
    return space.arch(tuple(round(max(rho ** (i + 1), space.min_keep), 4) for i in range(n)))


def keep_rates_for_budget(setup: ViTSetup, log: Any = print) -> tuple[Any, float, list[dict[str, Any]]]:
    """The largest ``rho`` on the grid whose schedule fits the budget: (arch, latency ms, probes).

    Candidates, most pruned first: the space's floor (``min_keep`` at every stage, which
    :func:`search.vit.prepare.prepare_vit` found within the budget), then the schedule of every ``rho``
    of the grid; latency grows along them, so bisection needs about log2(grid) evaluations."""
    space = setup.space
    low, high, step = space.ratio_range
    grid = [round(low + i * step, 4) for i in range(int(round((high - low) / step)) + 1)]
    candidates = [(None, space.most_pruned())] + [(rho, schedule(setup, rho)) for rho in grid]
    probes: list[dict[str, Any]] = []
    seen: dict[int, float] = {}

    def latency(i: int) -> float:
        if i not in seen:
            rho, arch = candidates[i]
            seen[i] = float(setup.estimator.latencies_ms([arch])[0])
            probes.append({"rho": rho, "keep_rates": list(arch.keep_rates), "latency_ms": seen[i]})
            log(f"  rho {'floor' if rho is None else f'{rho:.2f}'}: keep rates {arch.keep_rates}, {seen[i]:.2f} ms")
        return seen[i]

    # candidates[0] fits (prepare_vit checked the floor), so bisect over the rest.
    best = 1 + last_within(len(candidates) - 1, lambda i: latency(i + 1), setup.budget_ms)
    return candidates[best][1], latency(best), probes


def run_keep_schedule(ctx: RunContext) -> Result:
    """Keep-ratio targets from the budget (:func:`keep_rates_for_budget`), then the shared finish."""
    setup = prepare_vit(ctx)
    say(f"dnas (SPViT computation-aware): keep-ratio targets from the {setup.budget_ms:.2f} ms budget")
    arch, latency_ms, probes = keep_rates_for_budget(setup)
    say(f"targets: keep rates {arch.keep_rates} at stages {arch.stages} ({latency_ms:.2f} ms); training the "
        f"selectors and backbone toward them with task.final ({setup.cfg.final.steps} steps)")
    search = {"probes": probes, "summary": f"keep-ratio targets from the budget by bisection over rho "
                                           f"({len(probes)} latency evaluations), then one computation-aware training."}
    return finish_vit(setup, Found(arch, latency_ms, "budget-implied keep-ratio targets", search=search))
