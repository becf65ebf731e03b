"""``train:`` of the config: where every training path runs, resolved once before any work.

Training threads are set apart from the device's measurement threads: the target device decides
how a network is timed (``device.threads``), the machine the search runs on decides how it trains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from search.errors import UserError
from tasks.placement import AMP_MODES, Placement, pick_device

# Which worker this process is, for its GPU: torchrun's and SLURM's local ranks before the sweep's
# search.worker, since they count the processes sharing this node's GPUs.
WORKER_ENV = ("LOCAL_RANK", "SLURM_LOCALID")


@dataclass(frozen=True)
class TrainSettings:
    placement: Placement
    threads: int              # torch intra-op threads while training
    requested: str            # train.device as given (auto, cpu, cuda, cuda:N)
    worker: int               # the index that chose the GPU

    def record(self) -> dict[str, Any]:
        """What ``result.json`` keeps under ``training``."""
        return {"device": self.placement.device, "amp": self.placement.amp, "threads": self.threads,
                "requested": self.requested, "worker": self.worker}

    @staticmethod
    def from_cfg(cfg: DictConfig, cuda_count: int | None = None) -> TrainSettings:
        """``cuda_count`` defaults to the GPUs torch sees."""
        train = cfg.train
        amp = str(train.amp)
        if amp not in AMP_MODES:
            raise UserError(f"train.amp={amp!r}: choose {' | '.join(AMP_MODES)}")
        worker = worker_index(int(cfg.search.worker))
        count = torch.cuda.device_count() if cuda_count is None else cuda_count
        try:
            device = pick_device(str(train.device), worker, count)
        except ValueError as err:
            raise UserError(str(err)) from None
        if amp == "fp16" and not device.startswith("cuda"):
            raise UserError("train.amp=fp16 needs a GPU (CPU autocast runs bf16); use train.amp=bf16 or off")
        threads = train.threads
        if threads is None:
            threads = len(os.sched_getaffinity(0))
        elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise UserError(f"train.threads={threads!r} must be a positive integer, or null for this machine's cores")
        return TrainSettings(Placement(device, amp), int(threads), str(train.device), worker)


def worker_index(search_worker: int) -> int:
    """This process's local index: ``LOCAL_RANK`` (torchrun), else ``SLURM_LOCALID``, else ``search.worker``."""
    for name in WORKER_ENV:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return search_worker
