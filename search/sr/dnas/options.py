"""The settings of ``strategy=dnas``, checked: conf/strategy/dnas.yaml names every one and holds
its default (the only place), so a missing key is a configuration error, not a fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search.errors import UserError
from search.sr.dnas.train import SupernetPlan
from tasks.placement import CPU, Placement

PLAN_KEYS = ("warmup_steps", "width_steps", "joint_steps", "batch_size", "patch_hr", "lr", "lr_final", "arch_lr",
             "arch_optimizer", "arch_from", "latency_lambda", "tau_start", "tau_end", "calibrate_steps",
             "checkpoint_every", "eval_every")
OTHER_KEYS = ("search_channels", "derive", "threshold", "tolerance", "select", "select_steps", "select_lr",
              "select_share", "final_init")
CHOICES = {"select": ("none", "validation"), "final_init": ("supernet", "scratch"),
           "derive": ("expected", "threshold")}


def dnas_options(strategy_options: dict[str, Any]) -> dict[str, Any]:
    """The strategy's options as given (complete: experiment=smoke's block is merged in already),
    refusing unknown and missing keys and values outside their choices."""
    opts = dict(strategy_options)
    known = set(PLAN_KEYS) | set(OTHER_KEYS)
    unknown, missing = sorted(set(opts) - known), sorted(known - set(opts))
    if unknown:
        raise UserError(f"strategy=dnas does not know {unknown}; settings: {sorted(known)}")
    if missing:
        raise UserError(f"strategy=dnas misses the settings {missing}; conf/strategy/dnas.yaml should hold "
                        "every one (with its default)")
    for key, choices in CHOICES.items():
        if opts[key] not in choices:
            raise UserError(f"strategy.{key}={opts[key]!r}: choose {' or '.join(choices)}")
    return opts


def make_plan(opts: dict[str, Any], timeout_s: float, threads: int, placement: Placement = CPU) -> SupernetPlan:
    try:
        return SupernetPlan(**{k: opts[k] for k in PLAN_KEYS}, timeout_s=timeout_s, threads=threads,
                            placement=placement)
    except (TypeError, ValueError) as err:
        raise UserError(f"strategy=dnas: {err}") from None


@dataclass(frozen=True)
class DnasOptions:
    """The supernet's plan and how the derived network is read off, chosen and trained."""

    plan: SupernetPlan
    search_channels: bool     # False: trunk width C fixed at the space's maximum
    derive: str               # "expected" or "threshold" (see SRSupernet.derive)
    threshold: float
    tolerance: float          # the fitted net aims within this fraction under a binding budget
    select: str               # "validation": one candidate per trunk width, best on validation; "none"
    select_steps: int
    select_lr: float
    select_share: float       # of search.timeout_s kept for the candidates; 0 when not selecting
    final_init: str           # "supernet": the final training fine-tunes the supernet's weights; "scratch"

    @property
    def selecting(self) -> bool:
        """Candidates differ in C only, so with C fixed there is nothing to choose among."""
        return self.select == "validation" and self.search_channels

    @staticmethod
    def parse(strategy_options: dict[str, Any], timeout_s: float, threads: int,
              placement: Placement = CPU) -> DnasOptions:
        """``timeout_s`` (search.timeout_s) is shared: the supernet phases get what the candidates'
        ``select_share`` leaves."""
        opts = dnas_options(strategy_options)
        selecting = opts["select"] == "validation" and bool(opts["search_channels"])
        share = float(opts["select_share"]) if selecting else 0.0
        if not 0 <= share < 1:
            raise UserError(f"strategy.select_share={share:g}: give a fraction in [0, 1)")
        return DnasOptions(
            plan=make_plan(opts, timeout_s * (1 - share), threads, placement), search_channels=bool(opts["search_channels"]),
            derive=str(opts["derive"]), threshold=float(opts["threshold"]), tolerance=float(opts["tolerance"]),
            select=str(opts["select"]), select_steps=int(opts["select_steps"]), select_lr=float(opts["select_lr"]),
            select_share=share, final_init=str(opts["final_init"]),
        )
