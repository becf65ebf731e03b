"""Per-kernel corrections learned end to end: the nn-Meter lookup table, without timing kernels.

A cost curve per op group cannot know that one runtime runs one particular shape on a slow path
(a 5x5 depthwise conv at some width on a Xeon's oneDNN build; on the public FBNet timings of a
Xeon Gold 6226 the largest corrections go to the 1104- and 552-channel layers at 4x4, most of which
the per-channel basis now carries: curves alone fit 300 networks to ~90% within +-10%, 61% without
it). So after the curves, each distinct compute
kernel that recurs in the fitting networks may get its own correction (ms, either sign), fitted
by ridge least squares on the curves' relative residuals. A kernel never fitted gets none: the
curves alone, so extrapolation to unseen shapes is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spaces.ops import Op

TABLE_GROUPS = ("conv_kxk", "conv_1x1", "conv_dw", "conv_grouped", "conv_transpose", "gemm", "attention", "pool")
MIN_NETWORKS = 3  # a correction needs this many fitting networks that run the kernel


def table_kernels(op_lists: Sequence[Sequence[Op]]) -> list[Op]:
    """Compute kernels that some but not all fitting networks run, in at least MIN_NETWORKS."""
    from latency_models.predictors.basis import op_group

    seen: dict[Op, int] = {}
    for ops in op_lists:
        for op in set(ops):
            if not op.attr("fused") and op_group(op) in TABLE_GROUPS:
                seen[op] = seen.get(op, 0) + 1
    return [op for op, n in seen.items() if MIN_NETWORKS <= n < len(op_lists)]


def count_matrix(op_lists: Sequence[Sequence[Op]], kernels: Sequence[Op]) -> np.ndarray:
    """``(len(op_lists), len(kernels))``: how often each network runs each kernel."""
    index = {op: j for j, op in enumerate(kernels)}
    out = np.zeros((len(op_lists), len(kernels)))
    for i, ops in enumerate(op_lists):
        for op in ops:
            j = index.get(op)
            if j is not None:
                out[i, j] += 1
    return out


def fit_corrections(counts: np.ndarray, y: np.ndarray, base_pred: np.ndarray, ridge: float) -> np.ndarray:
    """ms per kernel minimising ||(base + counts t - y) / y||^2 + ridge * n * ||s t||^2."""
    if counts.shape[1] == 0:
        return np.zeros(0)
    a = counts / y[:, None]
    scale = np.sqrt((a ** 2).mean(axis=0))
    scale[scale == 0] = 1.0
    z = a / scale
    k = z.shape[1]
    aug = np.vstack([z, np.sqrt(ridge * len(y)) * np.eye(k)])
    target = np.concatenate([1.0 - base_pred / y, np.zeros(k)])
    return np.linalg.lstsq(aug, target, rcond=None)[0] / scale
