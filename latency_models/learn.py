"""``latency_models.fit``: an :class:`AdditivePredictor` from measured networks.

    fit(samples)                                  # whole-network timings only; nothing is timed
    fit(samples, kernels="adb", kernel_options={"serial": ...})   # + kernels profiled on the target
    fit(samples, kernels={op: ms, ...})           # + kernels measured elsewhere, on the target
    fit(samples, prior=[p_gpu, p_xeon])           # adapt other devices' predictors to few samples

``samples``: ``(module, input_shape, latency_ms)``, ``module`` a ``torch.nn.Module``, an
already traced :class:`~latency_models.graph.OpGraph`, or a list of ops (a dataset row). See
:mod:`latency_models.predictors.additive_fit` for how each way learns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from latency_models.graph import GRAPH_MODES, OpGraph, trace_graph
from latency_models.predictors import additive_fit as af
from latency_models.predictors.additive import BASIS_VERSION, AdditivePredictor
from latency_models.predictors.basis import BASES, FEATURES, GROUPS, Designer, group_columns
from spaces.ops import Op

MIN_SAMPLES = 5
ENSEMBLE = 16
# Kernel profiling times what the named runtime executes: eager torch runs every launched kernel,
# the exported-graph runtimes drop dead ops and fold BN/activations into convs first.
EAGER_BACKENDS = ("torch-cpu", "torch-cuda")


def read_samples(samples: Iterable[tuple[Any, Sequence[int], float]]) -> tuple[list[OpGraph], np.ndarray]:
    """Trace each sample (one at a time: the iterable may build modules lazily), check its timing."""
    graphs, ys = [], []
    for i, (module, shape, ms) in enumerate(samples):
        value = float(ms)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"sample {i}: latency_ms={ms!r} is not a positive finite number of milliseconds; "
                             "drop or re-measure that network")
        if isinstance(module, (list, tuple)):
            module = OpGraph.from_ops(module)
        graphs.append(module if isinstance(module, OpGraph) else trace_graph(module, tuple(shape)))
        ys.append(value)
    if len(ys) < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} measured networks to fit a predictor, got {len(ys)}")
    return graphs, np.asarray(ys)


def _kernel_graph(graph: str, kernels: Any) -> str:
    if graph != "auto":
        return graph
    name = kernels if isinstance(kernels, str) else getattr(kernels, "name", None)
    return "eager" if name in EAGER_BACKENDS else "compiled"


def _kernel_base(kernels: Any, op_lists: list[list[Op]], threads: int, options: Mapping[str, Any] | None,
                 max_kernels: int, scales: Sequence[int], seed: int, progress: bool
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    from latency_models.kernels import choose_kernels, distinct_kernels, profile_kernels, swept_kernels

    if isinstance(kernels, Mapping):
        table, record = dict(kernels), {"backend": "given", "n_kernels": len(kernels)}
    else:
        ops = swept_kernels(choose_kernels(distinct_kernels(op_lists), max_kernels, seed), scales, seed)
        table, record = profile_kernels(ops, kernels, threads, backend_options=options, max_kernels=len(ops),
                                        seed=seed, progress=progress)
        record["scales"] = sorted({int(s) for s in scales})
    ops = [op for op in table if not op.attr("fused")]
    if not ops:
        raise ValueError("kernel profiling gave no kernels; the fitting networks have no ops to time")
    base = af.fit_kernel_costs(Designer().op_matrix(ops), np.array([table[o] for o in ops]))
    return base, record


def _priors(prior: Any) -> list[AdditivePredictor]:
    priors = [] if prior is None else list(prior) if isinstance(prior, (list, tuple)) else [prior]
    for p in priors:
        if not isinstance(p, AdditivePredictor):
            raise TypeError(f"prior must be a predictor from latency_models.fit (kind 'additive'), got "
                            f"{type(p).__name__}; refit the other device with latency_models.fit")
    return priors


def fit(samples: Iterable[tuple[Any, Sequence[int], float]], *, kernels: Any = None, prior: Any = None,
        graph: str = "auto", threads: int = 1, device: str = "unknown", backend: str | None = None,
        kernel_options: Mapping[str, Any] | None = None, max_kernels: int = 3000, kernel_scales: Sequence[int] = (1,),
        ensemble: int = ENSEMBLE,
        kernel_table: bool = True, seed: int = 0, progress: bool = False) -> AdditivePredictor:
    """Fit an additive predictor (see the module docstring).

    ``graph``: ``"eager"``, ``"compiled"`` or ``"auto"`` (cross-validated; with kernel profiling,
    what the kernels' backend runs). ``kernel_table``: also try per-kernel corrections of the
    group curves (:mod:`latency_models.predictors.kernel_table`; cross-validation decides).
    ``kernel_scales``: with kernel profiling, also time a sample of the image kernels on images
    that many times taller and wider (e.g. ``(1, 2, 4)``), for predictions beyond the fitting sizes.
    ``device``/``backend``/``threads`` describe where the timings were measured and go into the manifest.
    """
    if graph not in (*GRAPH_MODES, "auto"):
        raise ValueError(f"graph={graph!r}: use 'eager', 'compiled' or 'auto'")
    graphs, y = read_samples(samples)
    priors = _priors(prior)
    modes = list(GRAPH_MODES) if graph == "auto" else [graph]
    kernel_record = None
    tables: dict[str, list[Op]] = {}
    if kernels is not None:
        modes = [_kernel_graph(graph, kernels)]
    lists = {m: [g.ops(m) for g in graphs] for m in modes}
    designer = Designer()
    xs = {m: designer.matrix(lists[m]) for m in modes}
    if kernels is not None:
        base, kernel_record = _kernel_base(kernels, lists[modes[0]], threads, kernel_options, max_kernels,
                                           kernel_scales, seed, progress)
        candidates = af.base_candidates("kernels", modes[0], base)
    else:
        # a prior's per-op costs were learned on its own op lists: adapt it on those only
        candidates = [c for i, p in enumerate(priors) if p.graph in modes
                      for c in af.base_candidates(f"prior[{i}]({p.manifest.get('device')})", p.graph, p.coef)]
        candidates += af.scratch_candidates(modes)
        tables = _with_kernel_tables(xs, lists, modes) if kernel_table else {}
        candidates += af.table_candidates(list(tables), len(FEATURES))
    chosen, oof, table = af.select(xs, y, candidates, seed)
    full = xs[chosen.graph]
    coef_all = chosen.fit(full, y)
    members = af.bootstrap(full, y, chosen.fit, ensemble, seed)[:, :len(FEATURES)] if ensemble > 1 else None
    mode = chosen.graph.split("+")[0]
    x, coef = full[:, :len(FEATURES)], coef_all[:len(FEATURES)]
    kernel_ms = dict(zip(tables[mode], coef_all[len(FEATURES):].tolist())) if "+kernels" in chosen.graph else {}
    kernel_ms = {op: ms for op, ms in kernel_ms.items() if ms != 0.0}
    learned = "kernels" if kernels is not None else "prior" if chosen.name.startswith("prior") else "networks"
    manifest = _manifest(device, backend, threads, chosen, learned, len(y), x, coef, table, y, oof, kernel_record)
    manifest["predictor"]["graph"] = mode
    manifest["predictor"]["kernel_table_size"] = len(kernel_ms)
    return AdditivePredictor(manifest, coef, members, af.RESIDUAL_Q, af.residual_quantiles(y, oof), x.max(axis=0),
                             kernel_ms)


def _with_kernel_tables(xs: dict[str, np.ndarray], lists: dict[str, list[list[Op]]], modes: list[str]
                        ) -> dict[str, list[Op]]:
    """Add ``<mode>+kernels`` designs (features plus recurring-kernel counts) to ``xs``; returns the
    kernels of each mode that has any."""
    from latency_models.predictors.kernel_table import count_matrix, table_kernels

    out = {}
    for m in modes:
        kernels = table_kernels(lists[m])
        if kernels:
            xs[f"{m}+kernels"] = np.hstack([xs[m], count_matrix(lists[m], kernels)])
            out[m] = kernels
    return out


def _manifest(device: str, backend: str | None, threads: int, chosen: af.Candidate, learned: str, n: int,
              x: np.ndarray, coef: np.ndarray, table: list[dict], y: np.ndarray, oof: np.ndarray,
              kernel_record: dict[str, Any] | None) -> dict[str, Any]:
    from latency_models.artifact import library_versions
    from latency_models.evaluate import metrics

    how = {"networks": f"per-op costs learned end to end from {n} whole-network timings (nothing timed)",
           "kernels": f"per-op costs from kernels profiled alone on {kernel_record and kernel_record['backend']}, "
                      f"rescaled per op group on {n} whole-network timings",
           "prior": f"a prior device's per-op costs rescaled per op group on {n} whole-network timings"}[learned]
    return {
        "kind": "additive",
        "predictor": {"kind": "additive", "graph": chosen.graph, "learned_from": learned, "candidate": chosen.name,
                      "basis_version": BASIS_VERSION, "features": list(FEATURES), "groups": list(GROUPS),
                      "bases": list(BASES), "time_share": af.group_share(x, coef), "selection": table,
                      "groups_fitted": [g for g in GROUPS if x[:, group_columns(g).start].any()]},
        "device": device, "backend": backend, "threads": threads, "kernels": kernel_record,
        "host": None if kernel_record is None else kernel_record.get("host"),  # the machine timings came from
        "library_versions": library_versions(),
        "feature_schema": {"basis_version": BASIS_VERSION, "unit": "ms per network (float32, batch as traced)"},
        "n_samples": {"models": n, "kernels": None if kernel_record is None else kernel_record["n_kernels"]},
        "cv_metrics": metrics(y, oof), "held_out_metrics": None,
        "provenance": {"text": how, "citation": None},
        "not_modelled": ["dtypes other than float32", "thread counts and batch sizes other than the fitted ones",
                         "op groups absent from the fitting networks (warned when predicted)"],
    }
