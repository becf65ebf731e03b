"""An optimizer for architecture logits that keeps their gradients' relative sizes.

Adam divides each logit's step by that logit's own gradient scale, so every logit whose latency
gradient outweighs its (noisy) quality gradient moves at the same rate, ``lr`` per step. In the
supernet search that shrinks every block's widths in lockstep: on s21 every block ended at the
same expected M1 of 9 channels at 16 ms, and C at 8 (benchmarks/strategies.py, session 4). The
trade-off the loss encodes (quality gained per ms) is lost.

:class:`SharedScaleAdam` is Adam with one second-moment estimate for all its parameters (the mean
squared gradient over every element): steps stay scale-free, as with Adam, but a logit whose
gradient is twice another's moves twice as far, as with SGD. ``max_step`` caps a single
element's step (a multiple of ``lr``) so one dominant logit cannot jump across its range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class SharedScaleAdam(torch.optim.Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 0.05, betas: tuple[float, float] = (0.5, 0.999),
                 eps: float = 1e-12, max_step: float = 5.0) -> None:
        if lr <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or max_step <= 0:
            raise ValueError(f"need lr > 0, betas in [0, 1), max_step > 0; got {lr}, {betas}, {max_step}")
        # the shared moment lives in the first group, so state_dict() carries it (checkpoints)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "max_step": max_step,
                                  "shared_step": 0, "shared_v": 0.0})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        loss = closure() if closure is not None else None
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return loss
        shared = self.param_groups[0]
        b1, b2 = shared["betas"]
        mean_sq = float(sum(float((gr * gr).sum()) for gr in grads) / sum(gr.numel() for gr in grads))
        shared["shared_step"] += 1
        shared["shared_v"] = b2 * shared["shared_v"] + (1 - b2) * mean_sq
        t = shared["shared_step"]
        denom = math.sqrt(shared["shared_v"] / (1 - b2 ** t))
        for group in self.param_groups:
            lr, cap = group["lr"], group["lr"] * group["max_step"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]  # a new tensor each step: a loaded state_dict may share the old one
                st["m"] = b1 * st.get("m", torch.zeros_like(p)) + (1 - b1) * p.grad
                upd = st["m"] / (1 - b1 ** t) / (denom + group["eps"])
                p.sub_((lr * upd).clamp_(-cap, cap))
        return loss
