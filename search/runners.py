"""The one dispatch: ``RUNNERS[(task, strategy)]`` names the runner, ``run(ctx) -> Result``.

Runners are named as ``module:function`` and imported when chosen, so that one task's
dependencies (timm for ``task=vit``) load only when that task runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from search.errors import UserError
from search.result import Result
from search.settings import STRATEGIES, RunContext

Runner = Callable[[RunContext], Result]

_SR_OPTUNA = "search.sr.optuna_run:run_sr"
_VIT_OPTUNA = "search.vit.optuna_run:run_vit"
RUNNERS: dict[tuple[str, str], str] = {
    ("sr", "tpe"): _SR_OPTUNA,
    ("sr", "nsga2"): _SR_OPTUNA,
    ("sr", "random"): _SR_OPTUNA,
    ("sr", "dnas"): "search.sr.dnas.run:run_dnas",
    ("sr", "allinone"): "search.sr.allinone.run:run_allinone",
    ("vit", "tpe"): _VIT_OPTUNA,
    ("vit", "nsga2"): _VIT_OPTUNA,
    ("vit", "random"): _VIT_OPTUNA,
    ("vit", "dnas"): "search.vit.keep_schedule:run_keep_schedule",
}
TASKS = tuple(sorted({task for task, _ in RUNNERS}))


def runner_for(task: str, strategy: str) -> Runner:
    """The runner of ``(task, strategy)``; a pair that has none is a one-line error naming the ones that do."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose task=" + "|".join(TASKS))
    if (task, strategy) not in RUNNERS:
        if strategy not in STRATEGIES:
            raise UserError(f"unknown strategy {strategy!r}; choose strategy=" + "|".join(STRATEGIES))
        have = sorted(s for t, s in RUNNERS if t == task)
        built_for = sorted(t for t, s in RUNNERS if s == strategy)
        raise UserError(f"strategy={strategy} is built for task={'|'.join(built_for)} only, not task={task}; "
                        f"use strategy={'|'.join(have)}")
    module, name = RUNNERS[(task, strategy)].split(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
