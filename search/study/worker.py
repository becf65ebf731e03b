"""The result of a cluster worker's run (``search.run_final=false``): the study's best candidate
so far (proxy-trained) and every trial; no final training, no exports."""

from __future__ import annotations

import optuna

from search import report
from search.result import Result, budget_rule, device_info, study_info
from search.settings import RunContext
from search.study.progress import best_feasible
from spaces import arch_from_dict

SKIPPED = "skipped (search.run_final=false): run the command without it to train the winner"


def search_only_result(study: optuna.Study, ctx: RunContext, quality_key: str,
                       budget: tuple[float, str] | None = None) -> Result:
    """``budget``: ``(ms, rule)`` where the task sets its own (ViT: a fraction of the unpruned
    model's measured latency); else the run's budget and how it was given."""
    best = best_feasible(study)
    settings = ctx.settings
    budget_ms, rule = budget or (settings.budget_ms, budget_rule(settings, ctx.device))
    return Result(
        task=ctx.task["name"], strategy=settings.strategy, device=device_info(ctx.device),
        budget_ms=budget_ms, budget_rule=rule,
        best=None if best is None else {
            "trial": best.number,
            "arch": best.user_attrs["arch"],
            "arch_key": arch_from_dict(best.user_attrs["arch"]).key,
            "latency_ms": best.user_attrs.get("latency_ms"),
            f"{quality_key}_proxy": best.user_attrs.get(quality_key),
            "values": list(best.values),
        },
        study=study_info(settings), trials=report.trial_summary(study, quality_key), final=SKIPPED,
    )
