"""Learning the additive predictor's coefficients, three ways, chosen explicitly:

1. *Whole-network timings only* (default): per-op costs learned end to end. The network design
   matrix (summed op bases, :mod:`basis`) is regressed on the timings by non-negative least squares
   on relative error with a ridge penalty on column-scaled coefficients; the ridge strength and the
   graph mode (eager: every launched kernel; compiled: dead, constant and identity ops dropped, BN
   and activations after a conv marked fused) are chosen by k-fold cross-validation.
2. *Kernels profiled on the target* (``kernels=`` a backend name or measured ``{Op: ms}``): the
   per-op coefficients are fitted on the kernels timed alone, then a few per-group scale factors,
   a per-op overhead and an intercept are fitted on the whole networks (in a network, kernels run
   with colder caches and framework overhead between them than alone).
3. *A prior device adapted* (``prior=`` predictor(s) of other devices): the prior's per-op costs
   are kept in shape and only rescaled per group on the new device's few timings, the same
   second stage as 2. With several priors (and the from-scratch fit) cross-validation picks.

Intervals: a bootstrap ensemble of the chosen fit, plus the out-of-fold residual quantiles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from latency_models.predictors.basis import FEATURES, GROUPS, INTERCEPT, group_columns

RIDGE_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
RESIDUAL_Q = np.array([0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99])
CV_FOLDS = 5
CV_REPEATS = 3
CV_CLIP = 0.25
HUBER_DELTA = 0.2  # relative error beyond which a network's weight falls as 1 / error: past the +-10 % band a
# prediction is judged by, so drifted timings lose pull while the band itself is fitted in full
HUBER_ROUNDS = 3  # relative errors are clipped in the CV score so one outlier does not pick the model


def nnls_relative(a: np.ndarray, y: np.ndarray, ridge: float, rounds: int = HUBER_ROUNDS) -> np.ndarray:
    """argmin_{c >= 0} sum_i huber((a_i c - y_i) / y_i) + ridge * n * ||s c||^2, ``s`` the column
    RMS of a / y, by iteratively reweighted least squares (``rounds`` re-weightings).

    Relative error weights a network by 1 / latency, so a few near-zero timings (a network a
    compiler folded away, a 1 ms-resolution phone reading 1) would dominate plain least squares;
    the Huber weights cap each network's pull at :data:`HUBER_DELTA` relative error.
    Columns that are zero on every row get a zero coefficient.
    """
    weights = np.ones(len(y))
    coef = np.zeros(a.shape[1])
    for _ in range(rounds + 1):
        coef = _nnls_weighted(a, y, ridge, weights)
        r = np.abs(a @ coef - y) / y
        weights = np.minimum(1.0, HUBER_DELTA / np.maximum(r, 1e-12))
    return coef


def _nnls_weighted(a: np.ndarray, y: np.ndarray, ridge: float, weights: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    rel = a / y[:, None]
    scale = np.sqrt((rel ** 2).mean(axis=0))
    used = scale > 0
    coef = np.zeros(a.shape[1])
    if not used.any():
        return coef
    root_w = np.sqrt(weights)
    z = rel[:, used] / scale[used] * root_w[:, None]
    k = int(used.sum())
    aug = np.vstack([z, np.sqrt(ridge * weights.sum()) * np.eye(k)])
    target = np.concatenate([root_w, np.zeros(k)])
    sol, _ = nnls(aug, target, maxiter=50 * aug.shape[1])
    coef[used] = sol / scale[used]
    return coef


def rescale_design(x: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Stage-2 design: per group its predicted ms under ``base``, the op count, an intercept."""
    cols, names = [], []
    for g in GROUPS:
        s = group_columns(g)
        col = x[:, s] @ base[s]
        if np.any(col > 0):
            cols.append(col)
            names.append(g)
    cols.append(x[:, [group_columns(g).start for g in GROUPS]].sum(axis=1))  # count bases
    cols.append(np.ones(len(x)))
    return np.stack(cols, axis=1), [*names, "_per_op", "_intercept"]


def rescaled(base: np.ndarray, names: Sequence[str], factors: np.ndarray) -> np.ndarray:
    """The single coefficient vector equal to ``rescale_design(x, base) @ factors``."""
    coef = np.zeros_like(base)
    for name, f in zip(names, factors):
        if name == "_per_op":
            for g in GROUPS:
                coef[group_columns(g).start] += f
        elif name == "_intercept":
            coef[INTERCEPT] += f
        else:
            s = group_columns(name)
            coef[s] += base[s] * f
    return coef


def fit_rescale(x: np.ndarray, y: np.ndarray, base: np.ndarray, ridge: float = 1e-4) -> np.ndarray:
    d, names = rescale_design(x, base)
    return rescaled(base, names, nnls_relative(d, y, ridge))


def fit_kernel_costs(op_x: np.ndarray, kernel_ms: np.ndarray, ridge: float = 1e-4) -> np.ndarray:
    """Per-op coefficients from kernels timed alone (rows: one op each, no intercept)."""
    coef = np.zeros(len(FEATURES))
    for g in GROUPS:
        s = group_columns(g)
        rows = op_x[:, s.start] > 0  # the op's count basis is 1 in its own group
        if rows.any():
            coef[s] = nnls_relative(op_x[rows][:, s], kernel_ms[rows], ridge)
    return coef


Fitter = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Candidate:
    """One way to fit: a name, which feature matrix (graph mode) it reads, and the fitter."""

    name: str
    graph: str
    fit: Fitter


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(min(k, n))]


def out_of_fold(x: np.ndarray, y: np.ndarray, fitter: Fitter, seed: int) -> np.ndarray:
    """Predictions of each sample by a fit on the other folds, the geometric mean over
    :data:`CV_REPEATS` fold assignments: with one assignment, near-tied candidates swap places
    with the order the samples came in (the same 114 host timings in two orders chose ridge 0.01
    and 0.001, moving one prediction by 15 %)."""
    logs = np.zeros(len(y))
    for r in range(CV_REPEATS):
        pred = np.empty(len(y))
        for test in folds(len(y), CV_FOLDS, seed + 1000 * r):
            train = np.setdiff1d(np.arange(len(y)), test)
            pred[test] = np.maximum(x[test] @ fitter(x[train], y[train]), 1e-3)
        logs += np.log(pred)
    return np.exp(logs / CV_REPEATS)


def scratch_candidates(graphs: Sequence[str]) -> list[Candidate]:
    return [Candidate(f"networks(ridge={r:g})", g, lambda x, y, r=r: nnls_relative(x, y, r))
            for g in graphs for r in sorted(RIDGE_GRID, reverse=True)]


def fit_scale(x: np.ndarray, y: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``base`` times one factor, plus an intercept: two parameters, enough for a handful of timings."""
    factors = nnls_relative(np.stack([x @ base, np.ones(len(x))], axis=1), y, 1e-6)
    coef = base * factors[0]
    coef[INTERCEPT] += factors[1]
    return coef


KERNEL_RIDGE_GRID = (1e-2, 1e-1)


def table_candidates(graphs: Sequence[str], n_base: int) -> list[Candidate]:
    """The group curves (ridge 1e-4) plus per-kernel corrections: the design is ``[x | counts]``
    (graph key ``<mode>+kernels``) and the coefficients are ``[curves | corrections]``."""
    from latency_models.predictors.kernel_table import fit_corrections

    def fitter(xk: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
        x, k = xk[:, :n_base], xk[:, n_base:]
        base = nnls_relative(x, y, 1e-4)
        return np.concatenate([base, fit_corrections(k, y, x @ base, r)])

    return [Candidate(f"networks+kernel table(ridge={r:g})", f"{g}+kernels", lambda xk, y, r=r: fitter(xk, y, r))
            for g in graphs for r in sorted(KERNEL_RIDGE_GRID, reverse=True)]


def base_candidates(name: str, graph: str, base: np.ndarray) -> list[Candidate]:
    """A base's per-op costs (a prior device's, or kernels timed alone) scaled as a whole, or per group."""
    return [Candidate(f"{name}+scale", graph, lambda x, y, b=base: fit_scale(x, y, b)),
            Candidate(f"{name}+rescale", graph, lambda x, y, b=base: fit_rescale(x, y, b))]


def select(xs: dict[str, np.ndarray], y: np.ndarray, candidates: Sequence[Candidate], seed: int
           ) -> tuple[Candidate, np.ndarray, list[dict]]:
    """The simplest candidate whose out-of-fold score is within one standard error of the best
    (the one-standard-error rule), its out-of-fold predictions and the table. ``candidates``
    come simplest first (a scaled prior, a per-group rescaled one, then stronger ridge before
    weaker), so on few samples, where scores are noisy, the model with fewer free parameters
    is kept unless another is clearly better. The standard error is that of the per-network
    error difference to the best candidate (paired): all candidates err on the same hard
    networks, so the unpaired spread would keep a simpler model that is measurably worse."""
    table, scored = [], []
    for cand in candidates:
        pred = out_of_fold(xs[cand.graph], y, cand.fit, seed)
        errors = np.minimum(np.abs(pred - y) / y, CV_CLIP)
        table.append({"candidate": cand.name, "graph": cand.graph, "cv_score": float(errors.mean()),
                      "cv_within_10pct": float(np.mean(np.abs(pred - y) / y <= 0.10))})
        scored.append((errors, cand, pred))
    best = min(scored, key=lambda item: item[0].mean())[0]
    for errors, cand, pred in scored:
        diff = errors - best
        if diff.mean() <= diff.std() / np.sqrt(len(y)):
            return cand, pred, table
    raise AssertionError("the best candidate is within its own standard error")


def bootstrap(x: np.ndarray, y: np.ndarray, fitter: Fitter, n: int, seed: int) -> np.ndarray:
    """``(n, F)`` coefficient vectors fitted on bootstrap resamples of the networks."""
    rng = np.random.default_rng(seed + 1)
    return np.stack([fitter(x[idx], y[idx]) for idx in (rng.integers(0, len(y), len(y)) for _ in range(n))])


def residual_quantiles(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Quantiles of log(measured / predicted) at :data:`RESIDUAL_Q`."""
    return np.quantile(np.log(y / pred), RESIDUAL_Q)


def group_share(x: np.ndarray, coef: np.ndarray) -> dict[str, float]:
    """Share of predicted time per group over the fitting networks (for the manifest)."""
    total = float((x @ coef).sum()) or 1.0
    out = {g: float((x[:, group_columns(g)] @ coef[group_columns(g)]).sum()) / total for g in GROUPS}
    out["intercept"] = float(x[:, INTERCEPT].sum() * coef[INTERCEPT]) / total
    return {k: round(v, 4) for k, v in out.items() if v > 0}

