"""The typed, versioned result every runner returns and ``result.json`` holds.

Top-level keys, the same for every (task, strategy): ``schema``, ``schema_version``, ``task``,
``strategy``, ``device``, ``budget`` (``ms``, ``rule``), ``best`` (the chosen architecture and its
figures; null only for a search-only worker that found nothing feasible), ``study`` (name, redacted
storage, strategy), ``trials`` (null where the strategy runs none), ``final`` (``trained`` or why
not), ``wall_s`` and ``config``; a runner's further sections (``baselines``, ``operating_points``,
``supernet``, ...) sit beside them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from search.errors import UserError

SCHEMA = "hwnas.result"
SCHEMA_VERSION = 1
TRAINED = "trained"
CORE_KEYS = ("schema", "schema_version", "task", "strategy", "device", "budget", "best", "study", "trials",
             "final", "wall_s", "config")


@dataclass(frozen=True)
class Result:
    task: str
    strategy: str
    device: dict[str, Any]
    budget_ms: float
    budget_rule: str
    best: dict[str, Any] | None
    study: dict[str, Any]
    trials: dict[str, Any] | None = None
    final: str = TRAINED
    extras: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    config: dict[str, Any] | None = None

    @property
    def final_trained(self) -> bool:
        return self.final == TRAINED

    def with_run(self, wall_s: float, config: dict[str, Any], training: dict[str, Any] | None = None) -> Result:
        """The run's wall time, config and where it trained (``training``: device, amp, threads)."""
        extras = self.extras if training is None else {**self.extras, "training": training}
        return replace(self, wall_s=wall_s, config=config, extras=extras)

    def to_dict(self) -> dict[str, Any]:
        clash = sorted(set(self.extras) & set(CORE_KEYS))
        if clash:
            raise ValueError(f"result extras may not reuse the top-level keys {clash}")
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "task": self.task, "strategy": self.strategy,
                "device": self.device, "budget": {"ms": self.budget_ms, "rule": self.budget_rule},
                "best": self.best, "study": self.study, "trials": self.trials, "final": self.final,
                **self.extras, "wall_s": self.wall_s, "config": self.config}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    @staticmethod
    def from_dict(data: Any, where: str = "result") -> Result:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise UserError(f"{where} is not a {SCHEMA} file (schema {_schema(data)!r})")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise UserError(f"{where} has {SCHEMA} version {data.get('schema_version')!r}; this package reads "
                            f"version {SCHEMA_VERSION}: re-run the search, or use the package that wrote it")
        budget = data.get("budget") or {}
        extras = {k: v for k, v in data.items() if k not in CORE_KEYS}
        return Result(task=data["task"], strategy=data["strategy"], device=data["device"],
                      budget_ms=budget.get("ms"), budget_rule=budget.get("rule", ""), best=data.get("best"),
                      study=data.get("study") or {}, trials=data.get("trials"), final=data["final"],
                      extras=extras, wall_s=data.get("wall_s"), config=data.get("config"))

    @staticmethod
    def read(path: Path) -> Result:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read {path}: {err}") from None
        return Result.from_dict(data, str(path))


def _schema(data: Any) -> Any:
    return data.get("schema") if isinstance(data, dict) else type(data).__name__


def study_info(settings: Any) -> dict[str, Any]:
    """The result's ``study`` section: the study's name, its storage (password masked), strategy."""
    from search.study.storage import redact

    return {"name": settings.study_name, "storage": redact(settings.storage), "strategy": settings.strategy}


def device_info(device: Any) -> dict[str, Any]:
    return {"name": device.name, "description": device.description, "lr_hw": list(device.lr_hw),
            "threads": device.threads}


def budget_rule(settings: Any, device: Any) -> str:
    """How the budget was set: given on the command line, or the device's own."""
    return "given (budget_ms)" if settings.budget_given else f"the device's ({device.name})"
