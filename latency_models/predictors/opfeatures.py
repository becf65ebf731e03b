"""Fixed-length numeric features of one :class:`spaces.ops.Op` (the per-op regressors' input),
and the canonical form that makes traced and analytic ops of the same kernel equal."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from latency_models.features import flops, memory_bytes
from spaces.ops import OP_KINDS, Op, make_op

# Part of the artefact format (manifest "feature_schema"): append, never reorder.
FEATURE_NAMES = (
    "log2_flops", "log2_bytes_in", "log2_bytes_out", "log2_bytes_weights", "kernel_area", "stride",
    "log2_groups", "depthwise", "log2_c_in", "log2_c_out", "log2_spatial_out", "log2_rows", "log2_k",
    "log2_n", "n_inputs", "c_in_mod8", "c_out_mod8", "c_in_mod16", "c_out_mod16", "kind_index",
)
KIND_INDEX = {k: i for i, k in enumerate(OP_KINDS)}
COMPUTE_KINDS = ("conv2d", "conv_transpose2d")
GEMM_KINDS = ("linear", "matmul", "sdpa")


def canonical(op: Op) -> Op:
    """Same kernel, same record: linear layers as 2-D (rows, in) -> (rows, out); the ``aten``
    provenance attr of fallback copies dropped."""
    if op.kind == "linear" and len(op.inputs[0]) != 2:
        rows = math.prod(op.inputs[0][:-1])
        return make_op("linear", [(rows, op.inputs[0][-1])], (rows, op.output[-1]))
    if op.attr("aten") is not None:
        return make_op(op.kind, list(op.inputs), op.output, **{k: v for k, v in op.attrs if k != "aten"})
    return op


def op_key(op: Op) -> str:
    """Stable text key of a (canonical) op, for lookup tables stored in ``.npz``."""
    return json.dumps(op.to_dict(), sort_keys=True, separators=(",", ":"))


def _l2(v: float) -> float:
    return math.log2(max(float(v), 1.0))


def op_vector(op: Op) -> list[float]:
    x = op.inputs[0] if op.inputs else op.output
    mem = memory_bytes(op)
    conv = op.kind in COMPUTE_KINDS
    c_in = x[1] if conv or len(x) == 4 else x[-1]
    c_out = op.output[1] if conv or len(op.output) == 4 else op.output[-1]
    spatial = math.prod(op.output[2:]) if len(op.output) == 4 else 1
    rows = math.prod(op.output[:-1]) if op.output else 1
    k_dim = x[-1] if op.kind in GEMM_KINDS else c_in
    n_dim = (op.inputs[1][-2] if op.kind == "sdpa" else op.output[-1]) if op.output else 1
    groups = op.attr("groups", 1) if conv else 1
    return [
        _l2(flops(op)), _l2(mem["in"]), _l2(mem["out"]), _l2(mem["weights"]),
        float(op.attr("kernel_h", 0) * op.attr("kernel_w", 0) or op.attr("kernel", 0) ** 2),
        float(op.attr("stride_h", op.attr("stride", op.attr("factor", 1)))),
        _l2(groups), float(conv and groups > 1 and groups == c_in), _l2(c_in), _l2(c_out), _l2(spatial),
        _l2(rows), _l2(k_dim), _l2(n_dim), float(len(op.inputs)),
        float(c_in % 8), float(c_out % 8), float(c_in % 16), float(c_out % 16), float(KIND_INDEX[op.kind]),
    ]


def op_matrix(ops: Sequence[Op]) -> np.ndarray:
    """``(len(ops), len(FEATURE_NAMES))`` float32 features."""
    if not ops:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return np.asarray([op_vector(op) for op in ops], dtype=np.float32)
