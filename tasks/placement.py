"""Where training runs: the torch device and the mixed-precision mode, shared by every training loop.

A :class:`Placement` is resolved once at the boundary (``train.device``, ``train.amp``) and handed to
the SR, All-in-One, supernet and ViT loops, which use :meth:`Placement.autocast` around the forward
pass and a :class:`Stepper` for backward and the optimizer step (a gradient scaler under fp16, whose
small gradients would underflow; bf16 has fp32's range and needs none).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from tasks.distributed import average_gradients

AMP_MODES = ("off", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Placement:
    """``device``: a torch device string (``cpu``, ``cuda:0``); ``amp``: one of :data:`AMP_MODES`."""

    device: str = "cpu"
    amp: str = "off"

    def __post_init__(self) -> None:
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp={self.amp!r}: choose one of {AMP_MODES}")
        torch.device(self.device)  # a malformed device string fails here, not mid-training

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def is_cuda(self) -> bool:
        return self.torch_device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Mixed precision for the forward pass and loss; a no-op with ``amp='off'``."""
        if self.amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(self.torch_device.type, dtype=_AMP_DTYPES[self.amp])

    def stepper(self) -> Stepper:
        return Stepper(self)


CPU = Placement()  # the default everywhere: float32 on the CPU


class Stepper:
    """``backward(loss)`` (as often as a step needs), then ``step(*optimizers)``: scaled under fp16,
    plain otherwise. Under data parallel training (:mod:`tasks.distributed`) the gradients of the
    optimizers' parameters are averaged across ranks first, while still scaled, so a rank that
    overflowed makes every rank skip that step alike."""

    def __init__(self, placement: Placement) -> None:
        self._scaler = torch.amp.GradScaler(placement.torch_device.type, enabled=placement.amp == "fp16")

    def backward(self, loss: torch.Tensor) -> None:
        self._scaler.scale(loss).backward()

    def step(self, *optimizers: torch.optim.Optimizer) -> None:
        average_gradients(p for opt in optimizers for group in opt.param_groups for p in group["params"])
        for opt in optimizers:
            self._scaler.step(opt)
        self._scaler.update()

    def clip_and_step(self, opt: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter],
                      max_norm: float) -> None:
        """:meth:`step` with the gradient norm clipped to ``max_norm`` (on unscaled gradients)."""
        average_gradients(p for group in opt.param_groups for p in group["params"])
        self._scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        self._scaler.step(opt)
        self._scaler.update()


def pick_device(spec: str, worker: int, cuda_count: int) -> str:
    """The device a worker trains on: ``auto`` is CUDA where there is one, else the CPU; ``cuda``
    and ``auto`` give worker ``k`` GPU ``k mod cuda_count``. Raises ValueError for a device this
    machine lacks, naming the setting's alternatives."""
    if spec == "cpu":
        return "cpu"
    if spec in ("auto", "cuda"):
        if cuda_count > 0:
            return f"cuda:{worker % cuda_count}"
        if spec == "auto":
            return "cpu"
        raise ValueError("train.device=cuda but torch sees no CUDA GPU; use train.device=auto or train.device=cpu")
    if spec.startswith("cuda:") and spec[5:].isdigit():
        index = int(spec[5:])
        if index >= cuda_count:
            raise ValueError(f"train.device={spec} but torch sees {cuda_count} CUDA GPU(s); "
                             f"use train.device=auto or an index below {cuda_count}")
        return spec
    raise ValueError(f"train.device={spec!r}: choose auto, cpu, cuda or cuda:N")
