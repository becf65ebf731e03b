"""Kernel-level predictor: per-op latency (lookup table of measured kernels, else a per-kind
gradient-boosting regressor on log ms), summed per model, with a model-level linear correction.

How per-op latencies are learned (the crux): every distinct op of the fitting models is run
alone (:mod:`latency_models.opbench`, as nn-Meter measures kernels) and becomes a training
row; whole-model timings then fit only the small correction
``latency = b_conv*S_conv + b_gemm*S_gemm + b_other*S_other + b_ops*n_ops + b_0 + b_mb*MB``
(``S_*`` sums of predicted op ms by category, ``MB`` activation bytes read + written; non-negative
least squares on relative error), which absorbs framework overhead per op and the cold caches
between ops of a network (an op timed alone reuses a hot input: probed 1.23-1.44x in networks).

Regressors are held as ONNX (skl2onnx) and always evaluated with onnxruntime, fitted or
loaded alike, so a saved predictor gives the same numbers without scikit-learn.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from latency_models.artifact import npz_arrays, npz_bytes, register_kind
from latency_models.features import memory_bytes
from latency_models.predictors.base import LatencyPredictor
from latency_models.predictors.opfeatures import (
    COMPUTE_KINDS,
    FEATURE_NAMES,
    GEMM_KINDS,
    canonical,
    op_key,
    op_matrix,
)
from spaces.ops import Op

POOLED = "_pooled"
MIN_ROWS_PER_KIND = 15
CORRECTION_TERMS = ("S_conv_ms", "S_gemm_ms", "S_other_ms", "n_ops", "intercept", "activation_MB")


def arch_ops(arch: Any, input_hw: tuple[int, int] | None) -> list[Op]:
    """``arch.ops(input_hw)`` for image-size dependent archs (first parameter ``lr_hw`` /
    ``input_hw``), ``arch.ops()`` for fixed-size ones (e.g. ``TokenPruneArch.ops(batch=1)``)."""
    import inspect

    params = list(inspect.signature(arch.ops).parameters)
    if params and params[0] in ("lr_hw", "input_hw", "hw"):
        if input_hw is None:
            raise ValueError(f"{getattr(arch, 'family', arch)} needs input_hw (height, width) to list its ops")
        return list(arch.ops(tuple(input_hw)))
    return list(arch.ops())


class _OnnxRegressor:
    def __init__(self, onnx_bytes: bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.blob = onnx_bytes
        self.session = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x.astype(np.float32)})[0].reshape(-1).astype(np.float64)


@register_kind("opwise_gb")
class OpwisePredictor(LatencyPredictor):
    """Per-op lookup/regression summed with a model-level correction (ms, on one host/threads)."""

    def __init__(self, manifest: dict[str, Any], regressors: dict[str, bytes], lut: dict[str, float],
                 correction: np.ndarray) -> None:
        super().__init__(manifest)
        self.regressors = {g: _OnnxRegressor(b) for g, b in regressors.items()}
        self.lut = dict(lut)
        self.correction = np.asarray(correction, dtype=np.float64)
        self.groups: dict[str, str] = dict(manifest.get("predictor", {}).get("groups", {}))

    # ---- per op --------------------------------------------------------------------------
    def op_latency(self, ops: Sequence[Op]) -> np.ndarray:
        """Uncorrected ms of each (canonical) op: measured value if tabulated, else regressed."""
        out = np.empty(len(ops))
        todo: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            hit = self.lut.get(op_key(op))
            if hit is not None:
                out[i] = hit
            else:
                group = self.groups.get(op.kind, POOLED)
                todo.setdefault(group, []).append(i)
        for group, idx in todo.items():
            if group not in self.regressors:
                raise ValueError(f"no regressor for op group {group!r}; the predictor file is incomplete")
            if group == POOLED and any(ops[i].kind not in self.groups for i in idx):
                unseen = sorted({ops[i].kind for i in idx} - set(self.groups))
                warnings.warn(f"op kinds {unseen} were never measured for this predictor; estimated by the pooled "
                              "regressor (extrapolation)", stacklevel=3)
            out[idx] = np.exp(self.regressors[group](op_matrix([ops[i] for i in idx])))
        return out

    # ---- per model -----------------------------------------------------------------------
    def model_terms(self, op_lists: Sequence[Sequence[Op]]) -> np.ndarray:
        """Correction inputs per model, ``(n_models, len(CORRECTION_TERMS))``."""
        index: dict[Op, int] = {}
        owners, slots = [], []
        for m, ops in enumerate(op_lists):
            for op in ops:
                op = canonical(op)
                slots.append(index.setdefault(op, len(index)))
                owners.append(m)
        uniq = list(index)
        ms = self.op_latency(uniq)
        category = np.array([0 if o.kind in COMPUTE_KINDS else 1 if o.kind in GEMM_KINDS else 2 for o in uniq])
        mb = np.array([(lambda b: (b["in"] + b["out"]) / 1e6)(memory_bytes(o)) for o in uniq])
        terms = np.zeros((len(op_lists), len(self.correction)))
        if slots:
            slots_a, owners_a = np.asarray(slots), np.asarray(owners)
            np.add.at(terms, (owners_a, category[slots_a]), ms[slots_a])
            np.add.at(terms, (owners_a, 3), 1.0)
            if terms.shape[1] > 5:  # activation traffic: cold caches between ops in a network
                np.add.at(terms, (owners_a, 5), mb[slots_a])
        terms[:, 4] = 1.0
        return terms

    def predict_op_lists(self, op_lists: Sequence[Sequence[Op]]) -> np.ndarray:
        return np.maximum(self.model_terms(op_lists) @ self.correction, 1e-3)

    def predict_archs(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> np.ndarray:
        """ms per architecture from its analytic ``arch.ops(input_hw)``; identical ops across
        archs are predicted once.

        Block-structured archs (WDSR-B: ``channels`` + ``blocks``) take a fast path that is
        exact because the model is additive over ops: terms of the block-less network plus,
        per distinct block, terms(one block) - terms(no block), each from ``arch.ops``.
        """
        if archs and all(type(a).__name__ == "WDSRBArch" for a in archs):
            return np.maximum(self._block_terms(archs, input_hw) @ self.correction, 1e-3)
        return self.predict_op_lists([arch_ops(a, input_hw) for a in archs])

    def _block_terms(self, archs: Sequence[Any], input_hw: tuple[int, int] | None) -> np.ndarray:
        import dataclasses

        bases = {(a.scale, a.channels): dataclasses.replace(a, blocks=()) for a in archs}
        blocks = {(a.scale, a.channels, b): None for a in archs for b in a.blocks}
        base_keys, block_keys = list(bases), list(blocks)
        ones = [dataclasses.replace(bases[(s, c)], blocks=(b,)) for s, c, b in block_keys]
        terms = self.model_terms([arch_ops(a, input_hw) for a in [*bases.values(), *ones]])
        base_terms = dict(zip(base_keys, terms[: len(base_keys)], strict=True))
        block_terms = {k: t - base_terms[k[:2]] for k, t in zip(block_keys, terms[len(base_keys):], strict=True)}
        out = np.stack([base_terms[(a.scale, a.channels)] for a in archs])
        index = {k: i for i, k in enumerate(block_keys)}
        table = np.stack([block_terms[k] for k in block_keys]) if block_keys else np.zeros((0, out.shape[1]))
        rows = [index[(a.scale, a.channels, b)] for a in archs for b in a.blocks]
        owners = np.repeat(np.arange(len(archs)), [len(a.blocks) for a in archs])
        np.add.at(out, owners, table[rows])
        return out

    def predict(self, module: Any, input_shape: Sequence[int]) -> float:
        """ms of ``module`` on ``input_shape``, from its traced kernels (runs it once)."""
        from latency_models.features import trace_ops

        return float(self.predict_op_lists([trace_ops(module, input_shape)])[0])

    # ---- file format ---------------------------------------------------------------------
    def _payload(self) -> dict[str, bytes]:
        members = {f"regressors/{g}.onnx": r.blob for g, r in self.regressors.items()}
        keys = np.array(list(self.lut), dtype=np.str_)
        members["lut.npz"] = npz_bytes({"keys": keys, "ms": np.array(list(self.lut.values()), dtype=np.float64)})
        members["correction.npz"] = npz_bytes({"coef": self.correction})
        return members

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], members: dict[str, bytes]) -> OpwisePredictor:
        regs = {n[len("regressors/"):-len(".onnx")]: b for n, b in members.items() if n.startswith("regressors/")}
        lut = npz_arrays(members["lut.npz"])
        coef = npz_arrays(members["correction.npz"])["coef"]
        return cls(manifest, regs, dict(zip(lut["keys"].tolist(), lut["ms"].tolist(), strict=True)), coef)


# ---- fitting -------------------------------------------------------------------------------
def _to_onnx(model: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, len(FEATURE_NAMES)]))], target_opset=17)
    return onx.SerializeToString()


def fit_op_regressors(kernels: dict[Op, float], seed: int = 0) -> tuple[dict[str, bytes], dict[str, str]]:
    """Per-kind GradientBoosting on log ms (kinds with < MIN_ROWS_PER_KIND rows share a pooled one)."""
    from sklearn.ensemble import GradientBoostingRegressor

    ops = list(kernels)
    x, y = op_matrix(ops), np.log(np.maximum([kernels[o] for o in ops], 1e-4))
    kinds = np.array([o.kind for o in ops])
    groups = {k: (k if (kinds == k).sum() >= MIN_ROWS_PER_KIND else POOLED) for k in sorted(set(kinds))}
    out = {}
    for group in sorted(set(groups.values()) | {POOLED}):
        mask = np.ones(len(ops), bool) if group == POOLED else kinds == group
        gb = GradientBoostingRegressor(n_estimators=300, max_depth=4, learning_rate=0.05, subsample=0.9,
                                       random_state=seed).fit(x[mask], y[mask])
        out[group] = _to_onnx(gb)
    return out, groups


def fit_correction(terms: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error: min sum(((terms @ c) - y) / y)^2, c >= 0."""
    from scipy.optimize import nnls

    y = np.asarray(latency_ms, dtype=np.float64)
    coef, _ = nnls(terms / y[:, None], np.ones_like(y))
    return coef


def fit(samples: Iterable[tuple[Any, Sequence[int], float]], *, threads: int = 1,
        kernels: dict[Op, float] | None = None, max_kernels: int = 3000, seed: int = 0, progress: bool = False,
        device: str = "cpu", backend: str = "torch-cpu", clock: str = "wall") -> OpwisePredictor:
    """Fit on ``(module, input_shape, latency_ms)`` samples measured at ``threads`` threads.

    Modules are traced one at a time (the iterable may build them lazily). Distinct ops are
    measured alone on this host (at most ``max_kernels``, a seeded random subset) unless
    ``kernels`` (op -> ms) is given. Host, versions and sample count go into the manifest.
    """
    from latency_models.features import trace_ops

    op_lists, ys = [], []
    for module, shape, ms in samples:
        op_lists.append(trace_ops(module, tuple(shape)))
        ys.append(float(ms))
    return fit_op_lists(op_lists, ys, threads=threads, kernels=kernels, max_kernels=max_kernels, seed=seed,
                        progress=progress, device=device, backend=backend, clock=clock)


def fit_op_lists(op_lists: Sequence[Sequence[Op]], latency_ms: Sequence[float], *, threads: int = 1,
                 kernels: dict[Op, float] | None = None, max_kernels: int = 3000, seed: int = 0,
                 progress: bool = False, device: str = "cpu", backend: str = "torch-cpu",
                 clock: str = "wall") -> OpwisePredictor:
    """:func:`fit` from already traced (or analytic) op lists, e.g. a dataset collected with
    ``featurize=trace_ops``. ``clock`` times the kernels (see :func:`latency_models.opbench.time_module`)
    and must match how ``latency_ms`` was measured."""
    from latency_models.artifact import library_versions

    op_lists = [[canonical(o) for o in ops] for ops in op_lists]
    ys = [float(v) for v in latency_ms]
    if len(ys) < 5 or len(ys) != len(op_lists):
        raise ValueError(f"need at least 5 measured models (with op lists) to fit, got {len(ys)} / {len(op_lists)}")
    if kernels is None:
        kernels = measure_kernels(op_lists, threads, max_kernels=max_kernels, seed=seed, progress=progress,
                                  clock=clock)
    kernels = {canonical(o): ms for o, ms in kernels.items()}
    regressors, groups = fit_op_regressors(kernels, seed)
    manifest = _manifest(device, backend, threads, len(ys), len(kernels), groups, library_versions())
    manifest["clock"] = clock
    lut = {op_key(o): ms for o, ms in kernels.items()}
    predictor = OpwisePredictor(manifest, regressors, lut, np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    predictor.correction = fit_correction(predictor.model_terms(op_lists), np.asarray(ys))
    manifest["predictor"]["correction"] = dict(zip(CORRECTION_TERMS, predictor.correction.tolist(), strict=True))
    return predictor


def measure_kernels(op_lists: Sequence[Sequence[Op]], threads: int, *, max_kernels: int = 3000, seed: int = 0,
                    progress: bool = False, known: dict[Op, float] | None = None,
                    clock: str = "wall") -> dict[Op, float]:
    """Time (alone) up to ``max_kernels`` distinct canonical ops of ``op_lists`` not in ``known``."""
    from latency_models.opbench import measure_ops

    known = dict(known or {})
    uniq = [o for o in dict.fromkeys(canonical(o) for ops in op_lists for o in ops) if o not in known]
    random.Random(seed).shuffle(uniq)
    # Stratified: every kind gets its first few ops before the random remainder, so no kind
    # present in the models is left to the pooled regressor by chance.
    have = {o.kind for o in known}
    first, rest, per_kind = [], [], {}
    for op in uniq:
        n = per_kind.get(op.kind, 0)
        (first if n < 3 and op.kind not in have else rest).append(op)
        per_kind[op.kind] = n + 1
    chosen = (first + rest)[:max(0, max_kernels)]
    known.update(measure_ops(chosen, threads, seed=seed, progress=progress, clock=clock))
    return known


def _manifest(device: str, backend: str, threads: int, n_models: int, n_kernels: int, groups: dict[str, str],
              versions: dict[str, str]) -> dict[str, Any]:
    try:
        from latency_models.hostinfo import host_info

        host: Any = host_info()
    except Exception as err:  # the host description is informative only
        host = {"error": f"{type(err).__name__}: {err}"}
    return {
        "kind": "opwise_gb",
        "predictor": {"kind": "opwise_gb", "groups": groups, "regressor": "GradientBoostingRegressor on log ms",
                      "correction_terms": list(CORRECTION_TERMS)},
        "device": device, "backend": backend, "threads": threads, "host": host,
        "library_versions": versions,
        "feature_schema": {"op_features": list(FEATURE_NAMES), "unit": "ms per model (float32 input, batch as traced)"},
        "n_samples": {"models": n_models, "kernels": n_kernels},
        "held_out_metrics": None,
        "provenance": {"text": f"fitted on this host with latency_models.fit: {n_kernels} kernels measured alone, "
                               f"{n_models} whole models for the correction", "citation": None},
        "not_modelled": ["ops whose kind was never measured are estimated by a pooled regressor (warned)",
                         "batch sizes, dtypes and thread counts other than the fitted ones"],
    }

