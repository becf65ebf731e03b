"""Held-out accuracy of a latency predictor, always beside the FLOPs-linear baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

METRIC_NAMES = ("within_5pct", "within_10pct", "within_15pct", "mape_pct", "rmse_ms", "spearman_rho", "n")


def metrics(measured_ms: Sequence[float], predicted_ms: Sequence[float]) -> dict[str, float]:
    """Share of models within +-5/10/15 % (0..1), MAPE (%), RMSE (ms), Spearman rho, n."""
    from scipy.stats import spearmanr

    y, p = np.asarray(measured_ms, float), np.asarray(predicted_ms, float)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need equal, non-empty measured/predicted arrays, got {y.shape} and {p.shape}")
    rel = np.abs(p - y) / y
    rho = float(spearmanr(y, p).statistic) if y.size > 2 else float("nan")
    return {
        "within_5pct": float(np.mean(rel <= 0.05)), "within_10pct": float(np.mean(rel <= 0.10)),
        "within_15pct": float(np.mean(rel <= 0.15)), "mape_pct": float(100 * rel.mean()),
        "rmse_ms": float(np.sqrt(np.mean((p - y) ** 2))), "spearman_rho": rho, "n": int(y.size),
    }


class FlopsLinear:
    """Baseline: ``latency_ms = a * GFLOPs + b``, least squares on relative error."""

    def __init__(self) -> None:
        self.coef = np.zeros(2)

    def fit(self, gflops: Sequence[float], latency_ms: Sequence[float]) -> FlopsLinear:
        x, y = np.asarray(gflops, float), np.asarray(latency_ms, float)
        a = np.stack([x, np.ones_like(x)], 1) / y[:, None]
        self.coef = np.linalg.lstsq(a, np.ones_like(y), rcond=None)[0]
        return self

    def predict(self, gflops: Sequence[float]) -> np.ndarray:
        return np.maximum(np.asarray(gflops, float) * self.coef[0] + self.coef[1], 1e-3)


def model_gflops(module: Any, input_shape: Sequence[int]) -> float:
    from latency_models.features import total_flops, trace_ops

    return total_flops(trace_ops(module, input_shape)) / 1e9


def compare(measured_ms: Sequence[float], predicted_ms: Sequence[float], baseline_ms: Sequence[float]) -> dict[str, Any]:
    """Metrics of the predictor and of the FLOPs-linear baseline on the same held-out models."""
    return {"predictor": metrics(measured_ms, predicted_ms), "flops_linear": metrics(measured_ms, baseline_ms)}


def format_row(name: str, m: dict[str, float]) -> str:
    return (f"{name:<34} {m['n']:>4} {100 * m['within_5pct']:>7.1f} {100 * m['within_10pct']:>7.1f} "
            f"{m['mape_pct']:>7.2f} {m['rmse_ms']:>8.2f} {m['spearman_rho']:>6.3f}")


HEADER = f"{'model set / predictor':<34} {'n':>4} {'<=5%':>7} {'<=10%':>7} {'MAPE%':>7} {'RMSE ms':>8} {'rho':>6}"
