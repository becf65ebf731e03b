"""Data-parallel training across processes (``torchrun``), one GPU or CPU process per rank.

Each rank draws its own batches; gradients are averaged across ranks before every optimizer step,
so the weights stay identical everywhere. This is what ``DistributedDataParallel`` does, written as
one all-reduce per step because the supernet and the All-in-One chain run a different sub-network
each step (the same on every rank: their samplers share the seed), which DDP's fixed gradient
buckets do not allow without ``find_unused_parameters`` and a graph traversal every step.
Outside ``torchrun`` (no process group) everything here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from torch import distributed as dist


def rank_and_size() -> tuple[int, int]:
    """This process's rank and the number of ranks (0, 1 without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank_and_size()[0] == 0


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment):
    ``nccl`` when this rank trains on CUDA, else ``gloo``. Returns whether a group is active."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return True


def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (a common starting point)."""
    if rank_and_size()[1] == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Average ``params``' gradients over the ranks, in place. Parameters without a gradient (a
    sub-network that did not use them) stay without one, as in one process, so the optimizer skips
    them; every rank must have run the same sub-network, which is checked."""
    size = rank_and_size()[1]
    if size == 1:
        return
    with_grad = [p for p in dict.fromkeys(params) if p.grad is not None]  # a parameter in two groups once
    count = torch.tensor([len(with_grad), -len(with_grad)], dtype=torch.int64, device=_device(with_grad))
    dist.all_reduce(count, op=dist.ReduceOp.MAX)
    if int(count[0]) != -int(count[1]):
        raise RuntimeError("ranks ran different sub-networks in one step (their samplers' seeds differ); "
                           "seed the sub-network sampler alike on every rank")
    for p in with_grad:
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(size)


def _device(tensors: list[torch.Tensor]) -> torch.device:
    return tensors[0].device if tensors else torch.device("cuda" if dist.get_backend() == "nccl" else "cpu")


def agree_min(value: float) -> float:
    """The smallest of every rank's ``value`` (e.g. the steps a time cap still affords), so that
    decisions made from per-rank clocks stay the same on every rank and no rank waits forever."""
    if rank_and_size()[1] == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return float(t.item())
