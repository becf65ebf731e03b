"""Measure single kernels: build a one-op ``torch.nn.Module`` for an :class:`spaces.ops.Op`
and time it (the nn-Meter way of getting per-op latencies as training rows).

Extra operands (the second input of an add, K/V of attention, ...) are buffers made at build
time, so every op module takes one input of the op's first input shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latency_models.heap import keep_heap
from spaces.ops import Op

_UNARY_FN: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu, "gelu": F.gelu, "silu": F.silu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
    "hardswish": F.hardswish, "leaky_relu": F.leaky_relu, "softmax": lambda x: torch.softmax(x, -1),
}


class _Fn(nn.Module):
    """``fn(x, *buffers)``; buffers registered so they live with the module."""

    def __init__(self, fn: Callable[..., torch.Tensor], *operands: torch.Tensor) -> None:
        super().__init__()
        self.fn = fn
        for i, t in enumerate(operands):
            self.register_buffer(f"b{i}", t)
        self.n = len(operands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *(getattr(self, f"b{i}") for i in range(self.n)))


def _rand(shape: Sequence[int]) -> torch.Tensor:
    return torch.randn(tuple(shape)) if shape else torch.randn(())


def op_module(op: Op) -> tuple[nn.Module, tuple[int, ...]]:
    """A module running just ``op``, and the input shape to feed it."""
    x = tuple(op.inputs[0]) if op.inputs else tuple(op.output)
    k = op.kind
    if k in ("conv2d", "conv_transpose2d"):
        c_in, c_out, g = x[1], op.output[1], op.attr("groups", 1)
        kw = dict(kernel_size=(op.attr("kernel_h"), op.attr("kernel_w")), stride=(op.attr("stride_h"), op.attr("stride_w")),
                  padding=(op.attr("padding_h"), op.attr("padding_w")), dilation=(op.attr("dilation_h"), op.attr("dilation_w")),
                  groups=g)
        if k == "conv2d":
            return nn.Conv2d(c_in, c_out, **kw), x
        out_pad = [op.output[2 + i] - ((x[2 + i] - 1) * kw["stride"][i] - 2 * kw["padding"][i]
                                       + kw["dilation"][i] * (kw["kernel_size"][i] - 1) + 1) for i in range(2)]
        return nn.ConvTranspose2d(c_in, c_out, output_padding=tuple(max(0, p) for p in out_pad), **kw), x
    if k == "linear":
        return nn.Linear(x[-1], op.output[-1]), x
    if k == "matmul":
        return _Fn(torch.matmul, _rand(op.inputs[1])), x
    if k == "sdpa":
        return _Fn(F.scaled_dot_product_attention, _rand(op.inputs[1]), _rand(op.inputs[2])), x
    if k == "layer_norm":
        return nn.LayerNorm(x[-1]), x
    if k == "batch_norm":
        return nn.BatchNorm2d(x[1]).eval() if len(x) == 4 else nn.BatchNorm1d(x[1]).eval(), x
    if k == "group_norm":
        return nn.GroupNorm(op.attr("groups", 1), x[1]), x
    if k == "prelu":
        return nn.PReLU(x[1] if len(x) > 1 else 1), x
    if k in _UNARY_FN:
        return _Fn(_UNARY_FN[k]), x
    if k in ("add", "mul"):
        other = _rand(op.inputs[1] if len(op.inputs) > 1 else ())
        return _Fn(torch.add if k == "add" else torch.mul, other), x
    if k == "pixel_shuffle":
        return nn.PixelShuffle(op.attr("factor")), x
    if k in ("max_pool2d", "avg_pool2d"):
        cls = nn.MaxPool2d if k == "max_pool2d" else nn.AvgPool2d
        return cls(op.attr("kernel", 2), op.attr("stride", 2)), x
    if k == "adaptive_avg_pool2d":
        return nn.AdaptiveAvgPool2d((op.attr("out_h", 1), op.attr("out_w", 1))), x
    if k == "concat":
        dim = _concat_dim(op)
        return _Fn(lambda a, *r: torch.cat([a, *r], dim), *(_rand(s) for s in op.inputs[1:])), x
    if k == "interpolate":
        mode = {0: "nearest", 1: "bilinear", 2: "bicubic"}[op.attr("mode", 1)]
        return _Fn(lambda a: F.interpolate(a, size=tuple(op.output[-2:]), mode=mode)), x
    if k == "topk":
        return _Fn(lambda a: torch.topk(a, min(op.output[-1], a.shape[-1]), dim=-1).values), x
    if k in ("slice", "copy", "reduce"):
        return _memory_module(op, x), x
    raise ValueError(f"no single-op benchmark for kind {k!r}; add one in latency_models/opbench.py")


def _concat_dim(op: Op) -> int:
    for d in range(len(op.output)):
        if any(s[d] != op.output[d] for s in op.inputs):
            return d
    return 0


def _memory_module(op: Op, x: tuple[int, ...]) -> nn.Module:
    n_in, n_out = math.prod(x), math.prod(op.output)
    if op.kind == "reduce":
        return _Fn(lambda a: a.reshape(n_out, -1).sum(-1) if n_in % max(n_out, 1) == 0 else a.sum())
    if op.kind == "slice":  # gather of n_out elements
        idx = torch.randint(0, n_in, (n_out,))
        return _Fn(lambda a, i: a.reshape(-1)[i], idx)
    if n_out <= n_in:
        return _Fn(lambda a: a.reshape(-1)[:n_out].clone())
    return _Fn(lambda a: a.reshape(-1).repeat(n_out // n_in + 1)[:n_out])


def time_module(module: nn.Module, input_shape: Sequence[int], threads: int = 1, *, clock: str = "wall",
                repeats: int = 10, warmup: int = 2) -> float:
    """Fastest of ``repeats`` runs in ms, by ``clock``: ``"wall"`` (perf_counter) or
    ``"thread_cpu"`` (CPU time of the calling thread; threads=1 only).

    ``thread_cpu`` excludes the time the thread waits for a core, so it stays repeatable (+-2 %)
    on a host shared with other jobs, where wall time is inflated 3-7x at load average 15. On
    an idle host the two agree for single-threaded inference.
    """
    if clock not in ("wall", "thread_cpu"):
        raise ValueError(f"clock must be 'wall' or 'thread_cpu', got {clock!r}")
    if clock == "thread_cpu" and threads != 1:
        raise ValueError("clock='thread_cpu' measures one thread; use clock='wall' with threads > 1")
    import time

    tick = time.thread_time_ns if clock == "thread_cpu" else time.perf_counter_ns
    keep_heap()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0))
        best = float("inf")
        with torch.inference_mode():
            for i in range(warmup + repeats):
                start = tick()
                module(x)
                if i >= warmup:
                    best = min(best, (tick() - start) / 1e6)
        return best
    finally:
        torch.set_num_threads(previous)


def lower_envelope_ms(times_ms: Sequence[float]) -> float:
    """The statistic fitted and evaluated throughout: the fastest timed run (ms).

    On a shared 2-core machine other processes inflate medians by up to 3x (probed: a 37 ms
    model read 124 ms at load average 10); the fastest run is the one that got the cores, and
    is far more repeatable than the median under load.
    """
    return float(min(times_ms))


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)
