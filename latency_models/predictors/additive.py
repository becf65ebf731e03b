"""Additive per-op predictor: a network's latency is the sum of its ops' costs, each cost a
non-negative mix of the work bases in :mod:`latency_models.predictors.basis`, plus an intercept.

One coefficient vector (ms per unit of each basis) is the whole model, however it was learned
(whole-network timings, kernels profiled on the target, or a prior device adapted; see
:mod:`latency_models.predictors.additive_fit`). A bootstrap ensemble of coefficient vectors and
the cross-validated residuals give intervals: ``predict(..., quantile=0.9)``.

File: ``coef.npz`` (``coef`` (F,), ``ensemble`` (K, F), ``residual_q`` / ``residual_log``,
``feature_max`` (F,): the fitted range)
beside the manifest; plain float arrays, no pickle, no scikit-learn needed to load.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from latency_models.artifact import npz_arrays, npz_bytes, register_kind
from latency_models.graph import GRAPH_MODES, OpGraph
from latency_models.predictors.base import LatencyPredictor
from latency_models.predictors.basis import FEATURES, GROUPS, Designer, group_columns
from spaces.ops import Op

BASIS_VERSION = 3  # bump when basis.py changes what a feature means
MIN_MS = 1e-3


def op_key(op: Op) -> str:
    """Stable text key of an op (kernel-table rows in ``.npz``)."""
    return json.dumps(op.to_dict(), sort_keys=True, separators=(",", ":"))


@register_kind("additive")
class AdditivePredictor(LatencyPredictor):
    """ms = features(ops) @ coef; features are summed per-op work bases (see the module docstring)."""

    def __init__(self, manifest: dict[str, Any], coef: np.ndarray, ensemble: np.ndarray | None = None,
                 residual_q: np.ndarray | None = None, residual_log: np.ndarray | None = None,
                 feature_max: np.ndarray | None = None, kernel_table: dict[Op, float] | None = None) -> None:
        super().__init__(manifest)
        self.kernel_table = dict(kernel_table or {})  # ms per recurring kernel, see kernel_table.py
        self.feature_max = None if feature_max is None else np.asarray(feature_max, np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        if self.coef.shape != (len(FEATURES),):
            raise ValueError(f"coefficient vector has shape {self.coef.shape}, expected ({len(FEATURES)},)")
        self.ensemble = np.zeros((0, len(FEATURES))) if ensemble is None else np.asarray(ensemble, np.float64)
        self.residual_q = np.array([0.5]) if residual_q is None else np.asarray(residual_q, np.float64)
        self.residual_log = np.zeros(len(self.residual_q)) if residual_log is None else np.asarray(residual_log)
        self.graph: str = manifest.get("predictor", {}).get("graph", "eager")
        if self.graph not in GRAPH_MODES:
            raise ValueError(f"graph mode {self.graph!r} is not one of {GRAPH_MODES}")
        self._designer = Designer()

    # ---- from features ----------------------------------------------------------------------
    def predict_features(self, x: np.ndarray, quantile: float | None = None,
                         table_ms: np.ndarray | None = None) -> np.ndarray:
        """ms of each network feature row ``x`` ``(n, F)`` (plus its kernel-table ms, ``(n,)``);
        with ``quantile`` the upper/lower bound at that level: cross-validated residual quantile,
        widened by the ensemble's spread."""
        extra = np.zeros(len(x)) if table_ms is None else table_ms
        point = np.maximum(x @ self.coef + extra, MIN_MS)
        if quantile is None:
            return point
        if not 0.0 < float(quantile) < 1.0:
            raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile!r}")
        r = float(np.interp(quantile, self.residual_q, self.residual_log))
        spread = 0.0
        if len(self.ensemble) > 1:
            members = np.log(np.maximum(x @ self.ensemble.T + extra[:, None], MIN_MS))
            lo, hi = np.quantile(members, [0.16, 0.84], axis=1)  # robust: a member may collapse to ~0
            spread = (hi - lo) / 2 * NormalDist().inv_cdf(float(quantile))
        width = np.sign(quantile - 0.5) * np.sqrt(r ** 2 + spread ** 2)
        return point * np.exp(width)

    def features(self, op_lists: Sequence[Sequence[Op]]) -> np.ndarray:
        return self._checked(self._designer.matrix(op_lists))

    def _checked(self, x: np.ndarray) -> np.ndarray:
        """Warn when ops of a group no fitting network had are predicted (their cost is unknown)."""
        fitted = self.manifest.get("predictor", {}).get("groups_fitted")
        if fitted is not None:
            unseen = [g for g in GROUPS if g not in fitted and x[:, group_columns(g).start].any()]
            if unseen:
                warnings.warn(f"op groups {unseen} were never measured for this predictor (no fitting network had "
                              "them): their cost is extrapolated as zero; fit on networks that contain them",
                              stacklevel=3)
        return x

    def table_ms(self, ops: Sequence[Op]) -> float:
        """The kernel-table corrections of one network's ops (0 without a table)."""
        return float(sum(self.kernel_table.get(op, 0.0) for op in ops)) if self.kernel_table else 0.0

    def predict_op_lists(self, op_lists: Sequence[Sequence[Op]], quantile: float | None = None) -> np.ndarray:
        extra = np.array([self.table_ms(ops) for ops in op_lists])
        return self.predict_features(self.features(op_lists), quantile, extra)

    # ---- from modules and architectures -----------------------------------------------------
    def ops_of(self, module: Any, input_shape: Sequence[int]) -> list[Op]:
        """The ops this predictor's device runs for ``module`` (a torch module or a traced
        :class:`OpGraph`): every launched kernel, or only live ones for a compiled runtime."""
        from latency_models.graph import trace_graph

        graph = module if isinstance(module, OpGraph) else trace_graph(module, input_shape)
        return graph.ops(self.graph)

    def predict(self, module: Any, input_shape: Sequence[int], quantile: float | None = None) -> float:
        """ms of ``module`` on ``input_shape`` (B, C, H, W), from its traced kernels (runs it once)."""
        return float(self.predict_op_lists([self.ops_of(module, input_shape)], quantile)[0])

    def predict_archs(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None,
                      quantile: float | None = None) -> np.ndarray:
        """ms per architecture from its analytic ``arch.ops``; WDSR-B archs are summed per block
        (exact: the model is additive over ops), so 10,000 archs take well under a second."""
        x, extra = self.arch_design(archs, input_hw)
        return self.predict_features(x, quantile, extra)

    def arch_features(self, archs: Sequence[Any], input_hw: tuple[int, int] | None) -> np.ndarray:
        return self.arch_design(archs, input_hw)[0]

    def _network(self, ops: Sequence[Op]) -> np.ndarray:
        """Features with the kernel-table ms appended (one vector, so blocks can be differenced)."""
        return np.append(self._designer.network(ops), self.table_ms(ops))

    def arch_ops(self, arch: Any, input_hw: tuple[int, int] | None) -> list[Op]:
        """The ops this predictor's device runs for ``arch``: its analytic list, fused as a
        compiled runtime fuses it when the predictor was fitted on compiled graphs."""
        from latency_models.predictors.base import arch_ops

        return OpGraph.from_chain(arch_ops(arch, input_hw)).ops(self.graph)

    def arch_design(self, archs: Sequence[Any], input_hw: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(features ``(n, F)``, kernel-table ms ``(n,)``) per architecture."""
        if not (archs and all(type(a).__name__ == "WDSRBArch" for a in archs)):
            op_lists = [self.arch_ops(a, input_hw) for a in archs]
            return self.features(op_lists), np.array([self.table_ms(ops) for ops in op_lists])
        bases = {(a.scale, a.channels): dataclasses.replace(a, blocks=()) for a in archs}
        base_x = {k: self._network(self.arch_ops(b, input_hw)) for k, b in bases.items()}
        block_x: dict[tuple, np.ndarray] = {}
        out = np.empty((len(archs), len(FEATURES) + 1))
        for i, a in enumerate(archs):
            key = (a.scale, a.channels)
            x = base_x[key].copy()
            for b in a.blocks:
                bk = (*key, b)
                if bk not in block_x:
                    one = dataclasses.replace(bases[key], blocks=(b,))
                    block_x[bk] = self._network(self.arch_ops(one, input_hw)) - base_x[key]
                x += block_x[bk]
            out[i] = x
        return self._checked(out[:, :-1]), out[:, -1]

    # ---- file format ------------------------------------------------------------------------
    def _payload(self) -> dict[str, bytes]:
        arrays = {"coef": self.coef, "ensemble": self.ensemble, "residual_q": self.residual_q,
                  "residual_log": self.residual_log}
        if self.feature_max is not None:
            arrays["feature_max"] = self.feature_max
        members = {"coef.npz": npz_bytes(arrays)}
        if self.kernel_table:
            keys = np.array([op_key(op) for op in self.kernel_table], dtype=np.str_)
            members["kernel_table.npz"] = npz_bytes({"keys": keys, "ms": np.array(list(self.kernel_table.values()))})
        return members

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], members: dict[str, bytes]) -> AdditivePredictor:
        spec = manifest.get("predictor", {})
        if spec.get("basis_version") != BASIS_VERSION or list(spec.get("features", [])) != list(FEATURES):
            raise ValueError(
                f"basis version {spec.get('basis_version')!r} with {len(spec.get('features', []))} features; "
                f"this package reads version {BASIS_VERSION} ({len(FEATURES)} features). Upgrade hwnas or refit")
        arrays = npz_arrays(members["coef.npz"])
        table = {}
        if "kernel_table.npz" in members:
            t = npz_arrays(members["kernel_table.npz"])
            table = {Op.from_dict(json.loads(k)): float(v) for k, v in zip(t["keys"].tolist(), t["ms"].tolist())}
        return cls(manifest, arrays["coef"], arrays["ensemble"], arrays["residual_q"], arrays["residual_log"],
                   arrays.get("feature_max"), table)

    def outside_range(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> list[str | None]:
        """Outside when a network needs more of some work basis (launches, GFLOP, MB of one op
        group) than every fitting network did, or an op group none of them had."""
        if self.feature_max is None:
            return [None] * len(archs)
        x = self.arch_features(archs, input_hw)
        ratio = np.where(self.feature_max > 0, x / np.maximum(self.feature_max, 1e-300), np.where(x > 0, np.inf, 0))
        return [self._why_outside(row) for row in ratio]

    def _why_outside(self, ratio: np.ndarray) -> str | None:
        j = int(np.argmax(ratio))
        if ratio[j] <= 1.0 + 1e-9:
            return None
        if np.isfinite(ratio[j]):
            return f"{FEATURES[j]} is {ratio[j]:.2f}x the largest among the fitting networks"
        group = FEATURES[j].split(".")[0]
        if self.feature_max[group_columns(group).start] > 0:
            return f"{FEATURES[j]} > 0 while it was 0 in every fitting network"
        return f"op group {group} absent from the fitting networks"

    def coefficients(self) -> dict[str, float]:
        """Non-zero coefficients by feature name (ms per unit), for reading a fitted model."""
        return {name: float(c) for name, c in zip(FEATURES, self.coef) if c > 0}
