"""Trace any ``torch.nn.Module`` into kernel-level :class:`spaces.ops.Op` records, and count
FLOPs and memory bytes per op.

How: one real forward pass under a :class:`torch.utils._python_dispatch.TorchDispatchMode`
that sees every ATen kernel with concrete shapes (the mechanism of torch's own
``FlopCounterMode``). Compared with ``torch.fx.symbolic_trace`` + ShapeProp: fx does trace timm
1.0.31 ``deit_tiny_patch16_224`` (timm's shape asserts are fx-wrapped), but it records module
calls, not kernels (``F.linear`` on 3-D input, a ``reshape`` that copies, SDPA's backend choice
are only visible at the ATen level), it cannot follow Python control flow on tensor values, and
it needs a ShapeProp pass anyway. The dispatch trace handles all of these, including top-k
token pruning, and records what actually runs for the given input shape.

Views (``view``, ``permute``, ``slice``, ``expand`` ...) launch no kernel and are skipped.
An ATen op with no mapping is kept as a ``copy`` of its output bytes with attr
``aten=<name>`` (documented fallback, never a silent zero); ``strict=True`` raises instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from spaces.ops import Op, make_op

BYTES_PER_ELEMENT = 4  # float32

# ATen ops that only re-describe memory (no kernel) or only read scalars: no Op.
_VIEWS = {
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "slice", "select",
    "unsqueeze", "squeeze", "split", "split_with_sizes", "unbind", "chunk", "detach", "alias",
    "as_strided", "narrow", "lift_fresh", "_local_scalar_dense", "empty", "empty_like",
    "empty_strided", "flatten", "unflatten", "view_as", "expand_as", "contiguous_view",
    "is_same_size", "sym_size", "sym_stride", "sym_numel", "_reshape_alias", "diagonal",
}
_UNARY = {
    "relu": "relu", "relu_": "relu", "gelu": "gelu", "silu": "silu", "silu_": "silu",
    "sigmoid": "sigmoid", "tanh": "tanh", "hardswish": "hardswish", "hardswish_": "hardswish",
    "leaky_relu": "leaky_relu", "leaky_relu_": "leaky_relu", "_prelu_kernel": "prelu",
    "hardtanh": "relu", "hardtanh_": "relu", "clamp": "relu", "clamp_": "relu",
    "exp": "sigmoid", "rsqrt": "sigmoid", "sqrt": "sigmoid", "neg": "mul", "abs": "relu",
}
_BINARY = {"add": "add", "add_": "add", "sub": "add", "sub_": "add", "rsub": "add",
           "mul": "mul", "mul_": "mul", "div": "mul", "div_": "mul", "where": "add"}
_COPIES = {"clone", "copy_", "_to_copy", "contiguous", "fill_", "zero_", "zeros", "ones", "full",
           "zeros_like", "ones_like", "full_like", "new_zeros", "new_empty", "arange", "cumsum"}
_REDUCE = {"mean", "sum", "amax", "amin", "max", "min", "argmax", "argmin", "norm", "var_mean",
           "var", "std"}
_GATHER = {"gather", "index", "index_select", "take_along_dim", "masked_select", "scatter",
           "index_put", "index_put_", "embedding"}


class UntraceableOpError(RuntimeError):
    """An ATen op has no Op mapping and ``strict=True`` was asked."""


def _shape(t: Any) -> tuple[int, ...] | None:
    return tuple(int(d) for d in t.shape) if isinstance(t, torch.Tensor) else None


def _tensors(args: Sequence[Any]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(x for x in a if isinstance(x, torch.Tensor))
    return out


def _pair(v: Any) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return (int(v[0]), int(v[-1]))


def _conv_op(args: Sequence[Any], o: tuple[int, ...]) -> Op:
    x, w = args[0], args[1]
    stride, pad, dil = _pair(args[3]), _pair(args[4]), _pair(args[5])
    kind = "conv_transpose2d" if args[6] else "conv2d"
    if x.dim() != 4:
        kind = "conv2d"  # 1-D/3-D convs are rare here; featurised as conv2d on their shapes
    return make_op(kind, [_shape(x)], o, kernel_h=int(w.shape[2]), kernel_w=int(w.shape[-1]),
                   stride_h=stride[0], stride_w=stride[1], padding_h=pad[0], padding_w=pad[1],
                   dilation_h=dil[0], dilation_w=dil[1], groups=int(args[8]))


def _pool_op(name: str, args: Sequence[Any], x: tuple[int, ...], o: tuple[int, ...]) -> Op:
    kind = "avg_pool2d" if name == "avg_pool2d" else "max_pool2d"
    k = _pair(args[1])
    s = _pair(args[2]) if len(args) > 2 and args[2] else k
    return make_op(kind, [x], o, kernel=k[0], stride=s[0])


def aten_to_op(name: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any, strict: bool = False) -> Op | None:
    """Map one ATen call (``name`` without overload) to an :class:`Op`, or None for views."""
    outs = _tensors(out if isinstance(out, (list, tuple)) else [out])
    if name in _VIEWS or not outs:
        return None
    o = _shape(outs[0])
    ins = [_shape(t) for t in _tensors(args)]
    if name == "convolution":
        return _conv_op(args, o)
    if name == "addmm":  # bias + x @ W^T: a linear layer on a 2-D view
        return make_op("linear", [_shape(args[1])], o)
    if name in ("mm", "bmm", "matmul", "baddbmm"):
        a, b = (args[1], args[2]) if name == "baddbmm" else (args[0], args[1])
        return make_op("matmul", [_shape(a), _shape(b)], o)
    if name.startswith("_scaled_dot_product") or name == "scaled_dot_product_attention":
        return make_op("sdpa", [_shape(t) for t in args[:3]], o)
    if name in ("native_layer_norm", "layer_norm"):
        return make_op("layer_norm", [ins[0]], o)
    if name in ("_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit",
                "batch_norm", "cudnn_batch_norm"):
        return make_op("batch_norm", [ins[0]], o)
    if name == "native_group_norm":
        return make_op("group_norm", [ins[0]], o, groups=int(args[6]))
    if name in _UNARY:
        return make_op(_UNARY[name], [ins[0]], o)
    if name in _BINARY:
        shapes = ins if len(ins) >= 2 else [ins[0], ()]
        return make_op(_BINARY[name], shapes[:2], o)
    if name in ("_softmax", "softmax", "_log_softmax"):
        return make_op("softmax", [ins[0]], o)
    if name == "pixel_shuffle":
        return make_op("pixel_shuffle", [ins[0]], o, factor=int(args[1]))
    if name in ("max_pool2d_with_indices", "max_pool2d", "avg_pool2d"):
        return _pool_op(name, args, ins[0], o)
    if name in ("_adaptive_avg_pool2d", "adaptive_avg_pool2d"):
        return make_op("adaptive_avg_pool2d", [ins[0]], o, out_h=o[-2], out_w=o[-1])
    if name in ("cat", "stack"):
        return make_op("concat", ins, o)
    if name.startswith("upsample_"):
        mode = 0 if "nearest" in name else (2 if "bicubic" in name else 1)
        return make_op("interpolate", [ins[0]], o, mode=mode)
    if name in ("topk", "sort", "argsort"):
        return make_op("topk", [ins[0]], o)
    if name in _GATHER:
        return make_op("slice", [ins[0]], o)
    if name in _REDUCE:
        return make_op("reduce", [ins[0]], o)
    if name in _COPIES:
        return make_op("copy", [ins[0]] if ins else [o], o)
    if strict:
        raise UntraceableOpError(
            f"aten.{name} has no latency feature mapping; add it to latency_models/features.py "
            "or trace with strict=False to count it as a copy of its output bytes"
        )
    return make_op("copy", [ins[0]] if ins else [o], o, aten=name)


class _Recorder(TorchDispatchMode):
    def __init__(self, strict: bool) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.strict = strict

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name.split("::")[-1]
        op = aten_to_op(name, args, kwargs, out, self.strict)
        if op is not None:
            self.ops.append(op)
        return out


def trace_ops(module: torch.nn.Module, input_shape: Sequence[int], *, strict: bool = False, seed: int = 0) -> list[Op]:
    """Kernel-level ops of ``module(x)`` for one float32 input of ``input_shape`` (B, C, H, W).

    Runs the module once (eval mode, no grad) on a seeded normal input.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(tuple(input_shape), generator=generator)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), _Recorder(strict) as rec:
            module(x)
    finally:
        module.train(was_training)
    return rec.ops


def _numel(shape: Sequence[int]) -> int:
    return int(math.prod(shape)) if shape else 1


def flops(op: Op) -> float:
    """Multiply-accumulates x 2 (FLOPs) of one op; elementwise ops count one per output element."""
    out = _numel(op.output)
    if op.kind in ("conv2d", "conv_transpose2d"):
        c_in = op.inputs[0][1]
        k = op.attr("kernel_h", 1) * op.attr("kernel_w", 1)
        groups = op.attr("groups", 1)
        spatial = _numel(op.inputs[0]) // op.inputs[0][1] if op.kind == "conv_transpose2d" else out // op.output[1]
        c_out = op.output[1]
        return 2.0 * spatial * c_out * (c_in // groups) * k
    if op.kind == "linear":
        return 2.0 * out * op.inputs[0][-1]
    if op.kind == "matmul":
        return 2.0 * out * op.inputs[0][-1]
    if op.kind == "sdpa":
        q, k = op.inputs[0], op.inputs[1]
        return 4.0 * _numel(q[:-1]) * k[-2] * q[-1]
    if op.kind in ("layer_norm", "batch_norm", "group_norm", "softmax"):
        return 5.0 * out
    if op.kind in ("max_pool2d", "avg_pool2d"):
        return float(out * op.attr("kernel", 1) ** 2)
    if op.kind in ("reduce", "adaptive_avg_pool2d"):
        return float(_numel(op.inputs[0]))
    if op.kind in ("concat", "slice", "copy", "pixel_shuffle", "topk"):
        return 0.0
    return float(out)


def weight_elements(op: Op) -> int:
    """Parameter elements an op reads (conv and linear weights), inferred from its shapes."""
    if op.kind in ("conv2d", "conv_transpose2d"):
        k = op.attr("kernel_h", 1) * op.attr("kernel_w", 1)
        return op.inputs[0][1] * op.output[1] // op.attr("groups", 1) * k
    if op.kind == "linear":
        return op.inputs[0][-1] * op.output[-1]
    return 0


def memory_bytes(op: Op) -> dict[str, int]:
    """Bytes read (activations, weights) and written by one op, float32."""
    return {
        "in": BYTES_PER_ELEMENT * sum(_numel(s) for s in op.inputs),
        "weights": BYTES_PER_ELEMENT * weight_elements(op),
        "out": BYTES_PER_ELEMENT * _numel(op.output),
    }


def total_flops(ops: Sequence[Op]) -> float:
    return float(sum(flops(op) for op in ops))
