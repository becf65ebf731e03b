"""What a device runs: a traced op list with the dead and foldable ops a graph compiler drops.

Eager PyTorch runs every kernel the code launches; a graph runtime (ONNX Runtime, TFLite, a
phone's NN driver) first removes work whose result is never used or is constant, and fuses
batch norm and simple activations into the convolution before them. NAS cell spaces make the
difference large: NAS-Bench-201 cells with no path from input to output still launch every
kernel in eager mode, but a compiled graph folds them to a constant (published Raspberry Pi 4
TFLite timings are ~0 ms for such networks).

:func:`trace_graph` runs the module once under a dispatch mode (as :func:`features.trace_ops`
does) and records, per op, which traced ops produced its inputs and whether its value depends
on the network input at all. :meth:`OpGraph.ops` then gives

- ``"eager"``: every kernel launched (same list as ``trace_ops``);
- ``"compiled"``: only ops that reach an output, depend on the input and are not identities
  (``x + 0``, ``x * 1``) or repeats of an op already computed on the same inputs (common
  subexpressions: NAS-Bench-201's ReLU before every conv of a shared node); a zero op (``x * 0``, ``zeros_like(x)``) is a constant. Batch norm and
  ReLU-like activations whose producer is a convolution used by nothing else stay in the list
  with attr ``fused=1``, so a predictor learns what they cost once fused (often nothing).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from latency_models.features import _tensors, aten_to_op
from spaces.ops import Op, make_op

GRAPH_MODES = ("eager", "compiled")
_FUSABLE = {"batch_norm", "relu", "prelu", "leaky_relu", "hardswish"}
_ZERO_MAKERS = {"zeros_like", "zeros", "new_zeros", "zero_"}


@dataclass(frozen=True)
class TracedOp:
    """One launched kernel: the op, the traced ops its inputs came from, and flags."""

    op: Op
    deps: tuple[int, ...]  # indices of the traced ops that produced its tensor inputs
    varying: bool  # its value depends on the network input
    identity: bool  # returns one input unchanged (x + 0, x * 1)


@dataclass(frozen=True)
class OpGraph:
    """Traced ops in launch order plus the ops that produced the network's outputs."""

    nodes: tuple[TracedOp, ...]
    outputs: tuple[int, ...]

    @staticmethod
    def from_ops(ops: Sequence[Op]) -> OpGraph:
        """A graph of ops known only as a list (a dataset row): every op runs, in both modes."""
        return OpGraph(tuple(TracedOp(op, (), True, False) for op in ops), tuple(range(len(ops))))

    @staticmethod
    def from_chain(ops: Sequence[Op]) -> OpGraph:
        """A graph of an analytic op list (``arch.ops()``): ops in data-flow order, each taking
        the previous op's result when its first input has that shape. Every op is live (the
        spaces list only ops that run), so compiled mode only fuses: an activation or BN right
        after the conv it reads. Exact for the spaces' families (tests compare with traces)."""
        nodes = []
        for i, op in enumerate(ops):
            chained = i > 0 and bool(op.inputs) and tuple(op.inputs[0]) == tuple(ops[i - 1].output)
            nodes.append(TracedOp(op, (i - 1,) if chained else (), True, False))
        return OpGraph(tuple(nodes), tuple(range(len(ops))))

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [[n.op.to_dict(), list(n.deps), n.varying, n.identity] for n in self.nodes],
                "outputs": list(self.outputs)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> OpGraph:
        nodes = tuple(TracedOp(Op.from_dict(o), tuple(d), bool(v), bool(i)) for o, d, v, i in data["nodes"])
        return OpGraph(nodes, tuple(data["outputs"]))

    def live(self) -> list[bool]:
        """Ops a compiler keeps: reach an output, depend on the input, and do real work."""
        keep = [False] * len(self.nodes)
        stack = list(self.outputs)
        while stack:
            i = stack.pop()
            if keep[i]:
                continue
            keep[i] = True
            if self.nodes[i].varying:  # a constant needs none of its inputs at run time
                stack.extend(self.nodes[i].deps)
        return [k and n.varying and not n.identity for k, n in zip(keep, self.nodes)]

    def ops(self, mode: str = "eager") -> list[Op]:
        """The op list a runtime of ``mode`` (see :data:`GRAPH_MODES`) executes."""
        if mode not in GRAPH_MODES:
            raise ValueError(f"graph mode {mode!r} is not one of {GRAPH_MODES}")
        if mode == "eager":
            return [n.op for n in self.nodes]
        keep = self.live()
        users = [0] * len(self.nodes)
        for i, n in enumerate(self.nodes):
            if keep[i]:
                for d in set(n.deps):
                    users[d] += 1
        out = []
        for i, n in enumerate(self.nodes):
            if not keep[i]:
                continue
            producer = self._producer(n)
            fused = (n.op.kind in _FUSABLE and producer is not None and users[producer] == 1
                     and self._fuses_into(producer))
            out.append(_with_attr(n.op, "fused", 1) if fused else n.op)
        return out

    def _producer(self, node: TracedOp) -> int | None:
        return node.deps[0] if len(set(node.deps)) == 1 else None

    def _fuses_into(self, i: int) -> bool:
        """A convolution, or a fused op whose own producer is one (conv -> BN -> ReLU)."""
        node = self.nodes[i]
        if node.op.kind in ("conv2d", "conv_transpose2d"):
            return True
        p = self._producer(node)
        return node.op.kind == "batch_norm" and p is not None and self.nodes[p].op.kind == "conv2d"


def _with_attr(op: Op, key: str, value: Any) -> Op:
    attrs = dict(op.attrs)
    attrs[key] = value
    return make_op(op.kind, list(op.inputs), op.output, **attrs)


def _scalar_args(args: Sequence[Any]) -> list[float]:
    return [float(a) for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]


class _Tensors:
    """tensor -> (producer op indices, varying), forgotten when the tensor is freed (so big
    activations are not kept alive and a reused ``id`` never aliases a dead tensor)."""

    def __init__(self) -> None:
        self.info: dict[int, tuple[frozenset[int], bool, bool]] = {}
        self._refs: dict[int, Any] = {}

    def get(self, t: torch.Tensor) -> tuple[frozenset[int], bool, bool]:
        return self.info.get(id(t), (frozenset(), False, False))  # params/buffers: constant, no producer

    def set(self, t: torch.Tensor, producers: frozenset[int], varying: bool, zero: bool = False) -> None:
        key = id(t)
        self.info[key] = (producers, varying, zero)
        self._refs[key] = weakref.ref(t, lambda _, k=key: (self.info.pop(k, None), self._refs.pop(k, None)))


class _GraphRecorder(TorchDispatchMode):
    def __init__(self, x: torch.Tensor, strict: bool) -> None:
        super().__init__()
        self.strict = strict
        self.nodes: list[TracedOp] = []
        self.tensors = _Tensors()
        self.tensors.set(x, frozenset(), True)
        self.seen: dict[tuple, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name.split("::")[-1]
        ins = _tensors(list(args) + list(kwargs.values()))
        info = [self.tensors.get(t) for t in ins]
        producers = frozenset().union(*(p for p, _, _ in info)) if info else frozenset()
        varying = any(v for _, v, _ in info)
        outs = _tensors(out if isinstance(out, (list, tuple)) else [out])
        op = aten_to_op(name, args, kwargs, out, self.strict)
        if op is None:  # a view: same producers, same dependence on the input
            for t in outs:
                self.tensors.set(t, producers, varying, any(z for _, _, z in info))
            return out
        zero, identity, passthrough = self._algebra(name, args, ins, info)
        key = (name, tuple((p or id(t), tuple(t.shape), t.stride(), t.storage_offset())
                           for t, (p, _, _) in zip(ins, info)), tuple(_scalar_args(args)))
        if not identity and key in self.seen:  # common subexpression: relu(x) feeding two convs
            identity, passthrough = True, (frozenset([self.seen[key]]), varying and not zero)
        index = len(self.nodes)
        self.seen.setdefault(key, index)
        self.nodes.append(TracedOp(op, tuple(sorted(producers)), varying and not zero, identity))
        for t in outs:
            if identity and passthrough is not None:
                self.tensors.set(t, passthrough[0], passthrough[1])
            else:
                self.tensors.set(t, frozenset([index]), varying and not zero, zero)
        return out

    def _algebra(self, name: str, args: Sequence[Any], ins: list[torch.Tensor],
                 info: list[tuple[frozenset[int], bool, bool]]) -> tuple[bool, bool, Any]:
        """(result is a constant zero, op is an identity, (producers, varying) it passes through)."""
        base = name.rstrip("_")
        scalars = _scalar_args(args[1:])
        if name in _ZERO_MAKERS or (base == "mul" and (0.0 in scalars or any(z for _, _, z in info))):
            return True, False, None
        if base in ("add", "sub") and ins:
            live = [(p, v) for (p, v, z) in info if not z]
            if len(ins) == 1 and scalars and scalars[0] == 0.0:  # x + 0 (Python's sum() starts there)
                return False, True, live[0] if live else None
            if len(ins) == 2 and len(live) == 1:  # x + zero tensor
                return False, True, live[0]
        if base in ("mul", "div") and len(ins) == 1 and scalars and scalars[0] == 1.0:
            return False, True, (info[0][0], info[0][1])
        return False, False, None


def trace_graph(module: torch.nn.Module, input_shape: Sequence[int], *, strict: bool = False,
                seed: int = 0) -> OpGraph:
    """:class:`OpGraph` of ``module(x)`` for one float32 input of ``input_shape`` (B, C, H, W).

    Runs the module once (eval mode, no grad) on a seeded normal input.
    """
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(seed))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), _GraphRecorder(x, strict) as rec:
            y = module(x)
            outputs = sorted(frozenset().union(*(rec.tensors.get(t)[0] for t in _tensors([y]))))
    finally:
        module.train(was_training)
    return OpGraph(tuple(rec.nodes), tuple(outputs))
