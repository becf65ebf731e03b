"""The fitted ViT latency predictor checked against timings made in the same run: the members it
was fitted on (in sample), the candidates re-timed beside the unpruned model and the final model
(both held out). Written as ``best.latency_check`` in result.json and drawn as
``latency_predictor.png``.

Every timed figure is in the unpruned model's reference units (a ratio timed beside the unpruned
model, times the reference latency the budget was set from): the units the predictor was fitted
and the budget judged in, whatever the host's speed did meanwhile.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.report import finish_plot

MEMBER = "member"      # fitted on (in sample)
RETIMED = "re-timed"   # a candidate confirmed after the search (held out)
FINAL = "final"        # the fine-tuned winner in the final rounds (held out)


@dataclass
class LatencyCheck:
    """Predicted (point and the constraint's bound) against timed figures, in reference units."""

    reference_ms: float
    bound: str  # what the bound is, in words (e.g. "upper 75% bound")
    points: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, keep_rates: Any, ratio: float, point_ms: float, bound_ms: float) -> None:
        self.points.append({"kind": kind, "keep_rates": list(keep_rates), "measured_ms": ratio * self.reference_ms,
                            "predicted_ms": float(point_ms), "bound_ms": float(bound_ms)})

    def summary(self) -> dict[str, Any]:
        """Errors of the point prediction (percent of the timed figure) in and out of sample, and
        how often the bound the constraint used was at or above the timed figure out of sample."""
        held = [p for p in self.points if p["kind"] != MEMBER]
        members = [p for p in self.points if p["kind"] == MEMBER]
        return {"reference_ms": self.reference_ms, "bound": self.bound,
                "members_in_sample": _errors(members), "held_out": _errors(held),
                "held_out_under_bound": (sum(p["measured_ms"] <= p["bound_ms"] for p in held) / len(held)
                                         if held else None),
                "points": self.points}

    def draw(self, path: Path, title: str) -> None:
        import matplotlib.pyplot as plt  # search.report chose the Agg backend on import

        fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120)
        styles = {MEMBER: dict(marker="o", facecolors="none", edgecolors="tab:blue", label="fitting member (in sample)"),
                  RETIMED: dict(marker="s", c="tab:orange", label="candidate re-timed (held out)"),
                  FINAL: dict(marker="*", s=120, c="tab:red", label="final model (held out)")}
        for kind, style in styles.items():
            pts = [p for p in self.points if p["kind"] == kind]
            if pts:
                ax.scatter([p["measured_ms"] for p in pts], [p["predicted_ms"] for p in pts], **style)
        held = [p for p in self.points if p["kind"] != MEMBER]
        if held:
            ax.scatter([p["measured_ms"] for p in held], [p["bound_ms"] for p in held], marker="_", s=120,
                       c="0.3", label=f"the constraint's {self.bound}")
        values = [v for p in self.points for v in (p["measured_ms"], p["predicted_ms"], p["bound_ms"])]
        lo, hi = 0.95 * min(values), 1.05 * max(values)
        ax.plot([lo, hi], [lo, hi], c="0.5", lw=1)
        ax.fill_between([lo, hi], [0.9 * lo, 0.9 * hi], [1.1 * lo, 1.1 * hi], color="0.85", alpha=0.5,
                        label="within 10%")
        finish_plot(fig, ax, path, title, f"timed beside the unpruned model (ms, units of its {self.reference_ms:.2f} ms)",
                    "predicted (ms)")


def _errors(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not points:
        return None
    err = [100.0 * (p["predicted_ms"] / p["measured_ms"] - 1.0) for p in points]
    return {"n": len(err), "median_abs_error_pct": statistics.median(abs(e) for e in err),
            "worst_error_pct": max(err, key=abs), "within_10pct": sum(abs(e) <= 10 for e in err) / len(err)}
