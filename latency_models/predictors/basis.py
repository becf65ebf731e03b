"""Per-op cost basis of the additive predictor: an op's latency is a non-negative mix of a few
functions of its work, so it stays monotone and extrapolates linearly past the fitted sizes.

Each op falls in one cost group (dense 3x3 convs, depthwise convs, GEMMs, activations, ...). Its
row has, in that group's columns only (units: GFLOP and MB, so coefficients are ms/GFLOP, ms/MB):

- ``count``: a fixed cost per launch (dispatch, kernel launch, thread wake-up);
- ``gflop``, ``mb``: time per unit of compute and of memory traffic (a roofline's two slopes, summed);
- ``gflop_sat_*``: ``min(flops, knot)``: extra time per FLOP that stops growing above the knot,
  i.e. small ops run below peak efficiency and efficiency saturates with size;
- ``mb_spill_*``: ``max(bytes - knot, 0)``: extra time per byte once the working set passes a
  cache size, the penalty that makes a 4x larger activation more than 4x slower on a CPU;
- ``mb_fresh``: MB of an output too large for the allocator to reuse (at least
  :data:`FRESH_BYTES`, glibc's largest mmap threshold): each such output is new pages, faulted in
  on first write. On this project's VM a ReLU with a 127 MiB output takes 52 ms into a fresh tensor
  and 20 ms into a reused one, so a network at 360x640 pays more per pixel than at 180x320;
- ``kchannel``: input channels / 1000, a fixed cost per channel whatever the spatial size (the
  per-channel loop set-up of CPU kernels: a Xeon Gold 6226 runs a 1104-channel conv at 4x4 in
  milliseconds; on the public FBNet timings, 50 networks fit 86 % within +-10 % with it, 59 % without).

With non-negative coefficients the cost of an op is piecewise linear and increasing in both
flops and bytes; beyond the largest knot it grows at the last fitted slope, which is what lets a
network 4x larger in pixels than anything fitted be predicted from the same coefficients.
A network's feature vector is the sum of its ops' rows plus an intercept (per-run overhead).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latency_models.features import flops, memory_bytes
from spaces.ops import Op

# Part of the artefact format (manifest "basis"): append, never reorder.
GROUPS = (
    "conv_kxk", "conv_1x1", "conv_dw", "conv_grouped", "conv_transpose", "gemm", "attention", "norm",
    "activation", "binary", "softmax", "pool", "reduce", "data_movement", "fused",
)
FLOP_KNOTS = (1e6, 1e7)  # FLOPs: below ~1 MFLOP kernels are launch-bound on every device seen
BYTE_KNOTS = (1e6, 8e6)  # bytes: around per-core L2 and a typical L3 slice
FRESH_BYTES = 32 * 2**20  # glibc never raises its mmap threshold past this: larger blocks are always fresh pages
BASES = ("count", "gflop", "mb", *(f"gflop_sat_{k:.0e}" for k in FLOP_KNOTS),
         *(f"mb_spill_{k:.0e}" for k in BYTE_KNOTS), "mb_fresh", "kchannel")
N_BASES = len(BASES)
FEATURES = tuple(f"{g}.{b}" for g in GROUPS for b in BASES) + ("intercept",)
INTERCEPT = len(FEATURES) - 1

_ACTIVATIONS = {"relu", "gelu", "silu", "prelu", "leaky_relu", "sigmoid", "tanh", "hardswish"}
_GROUP_OF_KIND = {
    "conv_transpose2d": "conv_transpose", "linear": "gemm", "matmul": "gemm", "sdpa": "attention",
    "layer_norm": "norm", "batch_norm": "norm", "group_norm": "norm", "add": "binary", "mul": "binary",
    "softmax": "softmax", "max_pool2d": "pool", "avg_pool2d": "pool", "adaptive_avg_pool2d": "reduce",
    "reduce": "reduce", **{k: "activation" for k in _ACTIVATIONS},
}


def op_group(op: Op) -> str:
    """The cost group of one op (see :data:`GROUPS`); unknown kinds move data."""
    if op.attr("fused"):
        return "fused"
    if op.kind == "conv2d":
        groups, c_in = op.attr("groups", 1), op.inputs[0][1]
        if groups > 1:
            return "conv_dw" if groups == c_in else "conv_grouped"
        return "conv_1x1" if op.attr("kernel_h", 1) * op.attr("kernel_w", 1) == 1 else "conv_kxk"
    return _GROUP_OF_KIND.get(op.kind, "data_movement")


def op_bases(op: Op) -> np.ndarray:
    """The ``(N_BASES,)`` values of one op (see the module docstring)."""
    f = flops(op)
    mem = memory_bytes(op)
    b = float(mem["in"] + mem["weights"] + mem["out"])
    sat = [min(f, k) / 1e9 for k in FLOP_KNOTS]
    spill = [max(b - k, 0.0) / 1e6 for k in BYTE_KNOTS]
    fresh = mem["out"] / 1e6 if mem["out"] >= FRESH_BYTES else 0.0
    return np.array([1.0, f / 1e9, b / 1e6, *sat, *spill, fresh, channels(op) / 1e3])


def channels(op: Op) -> int:
    """Channels of the op's first input: dim 1 of an image tensor, the last dim of a token one."""
    shape = op.inputs[0] if op.inputs else op.output
    return int(shape[1] if len(shape) == 4 else shape[-1]) if shape else 1


_GROUP_INDEX = {g: i for i, g in enumerate(GROUPS)}


def op_row(op: Op) -> tuple[int, np.ndarray]:
    """(first column of the op's group, its bases)."""
    return _GROUP_INDEX[op_group(op)] * N_BASES, op_bases(op)


class Designer:
    """Network feature vectors (sum of op rows + intercept), each distinct op computed once."""

    def __init__(self) -> None:
        self._rows: dict[Op, tuple[int, np.ndarray]] = {}

    def row(self, op: Op) -> tuple[int, np.ndarray]:
        hit = self._rows.get(op)
        if hit is None:
            hit = self._rows[op] = op_row(op)
        return hit

    def network(self, ops: Sequence[Op], intercept: float = 1.0) -> np.ndarray:
        x = np.zeros(len(FEATURES))
        for op in ops:
            start, values = self.row(op)
            x[start:start + N_BASES] += values
        x[INTERCEPT] = intercept
        return x

    def matrix(self, op_lists: Sequence[Sequence[Op]]) -> np.ndarray:
        """``(len(op_lists), len(FEATURES))`` network features."""
        if not op_lists:
            return np.zeros((0, len(FEATURES)))
        return np.stack([self.network(ops) for ops in op_lists])

    def op_matrix(self, ops: Sequence[Op]) -> np.ndarray:
        """One row per op (no intercept): the per-kernel design of kernel profiling."""
        return self.matrix([[op] for op in ops]) - np.eye(1, len(FEATURES), INTERCEPT)


def group_columns(group: str) -> slice:
    start = _GROUP_INDEX[group] * N_BASES
    return slice(start, start + N_BASES)
