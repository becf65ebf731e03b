"""Operator descriptions shared by architecture descriptions and latency models.

An :class:`Op` is one kernel-level operation with concrete tensor shapes. Architecture
descriptions emit them analytically (``arch.ops(...)``); ``latency_models`` traces any
``torch.nn.Module`` into the same records, so one predictor serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]

# Registry of op kinds. Names appear in measured datasets and exported predictors, so they
# are part of the file format: add, never rename.
OP_KINDS: dict[str, str] = {
    "conv2d": "2-D convolution; attrs kernel_h/_w, stride_h/_w, padding_h/_w, dilation_h/_w, groups",
    "conv_transpose2d": "2-D transposed convolution; same attrs as conv2d",
    "linear": "fully connected layer over the last dim; input (..., in), output (..., out)",
    "matmul": "batched matrix product; inputs (..., n, k) and (..., k, m)",
    "sdpa": "scaled-dot-product attention; inputs q, k, v as (B, heads, N, head_dim)",
    "layer_norm": "layer norm over the last dim",
    "batch_norm": "batch norm (inference) over channels",
    "group_norm": "group norm over channel groups",
    "relu": "elementwise ReLU",
    "gelu": "elementwise GELU",
    "silu": "elementwise SiLU",
    "prelu": "elementwise PReLU (per-channel slope)",
    "leaky_relu": "elementwise leaky ReLU",
    "sigmoid": "elementwise sigmoid",
    "tanh": "elementwise tanh",
    "hardswish": "elementwise hard swish",
    "softmax": "softmax over the last dim",
    "add": "elementwise add (with broadcast)",
    "mul": "elementwise multiply (with broadcast)",
    "pixel_shuffle": "depth-to-space; attrs factor",
    "max_pool2d": "max pooling; attrs kernel, stride",
    "avg_pool2d": "average pooling; attrs kernel, stride",
    "adaptive_avg_pool2d": "adaptive average pooling to attrs out_h, out_w",
    "concat": "concatenation of the inputs",
    "slice": "slicing, gather or index_select of the input",
    "interpolate": "resize; attrs mode (0 nearest, 1 bilinear, 2 bicubic)",
    "reduce": "mean/sum/max over some dims",
    "topk": "top-k selection along the last dim",
    "copy": "layout change that moves data (permute+contiguous, reshape copies)",
}


@dataclass(frozen=True)
class Op:
    """One operation with concrete shapes.

    ``inputs`` are the shapes of the tensor operands (weights excluded), ``output`` the shape
    of the result, ``attrs`` a sorted tuple of integer/string attributes (kernel size, stride,
    groups, ...). Shapes are in elements, batch dim first.
    """

    kind: str
    inputs: tuple[Shape, ...]
    output: Shape
    attrs: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(
                f"unknown op kind {self.kind!r}; known kinds: {sorted(OP_KINDS)}. "
                "Register new kinds in spaces/ops.py::OP_KINDS."
            )

    def attr(self, name: str, default: Any = None) -> Any:
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "inputs": [list(s) for s in self.inputs],
            "output": list(self.output),
            "attrs": dict(self.attrs),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Op:
        return Op(
            kind=data["kind"],
            inputs=tuple(tuple(int(d) for d in s) for s in data["inputs"]),
            output=tuple(int(d) for d in data["output"]),
            attrs=tuple(sorted(data.get("attrs", {}).items())),
        )


def make_op(kind: str, inputs: list[Shape] | tuple[Shape, ...], output: Shape, **attrs: Any) -> Op:
    """Build an :class:`Op` with attrs sorted by name (so equal ops compare equal)."""
    return Op(kind, tuple(tuple(s) for s in inputs), tuple(output), tuple(sorted(attrs.items())))


def conv2d(
    batch: int, c_in: int, c_out: int, h: int, w: int, kernel: int,
    stride: int = 1, groups: int = 1, padding: int | None = None,
) -> Op:
    """A square conv with 'same'-style padding unless given; output spatial size follows torch."""
    pad = kernel // 2 if padding is None else padding
    h_out = (h + 2 * pad - kernel) // stride + 1
    w_out = (w + 2 * pad - kernel) // stride + 1
    return make_op(
        "conv2d", [(batch, c_in, h, w)], (batch, c_out, h_out, w_out),
        kernel_h=kernel, kernel_w=kernel, stride_h=stride, stride_w=stride,
        padding_h=pad, padding_w=pad, dilation_h=1, dilation_w=1, groups=groups,
    )


def elementwise(kind: str, shape: Shape, n_inputs: int = 1) -> Op:
    return make_op(kind, [shape] * n_inputs, shape)
