"""The dnas supernet's checkpoint: weights, optimizers, sampler states and the plan's progress,
written atomically and loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tasks.sr.data import TrainPatches
from tasks.sr.supernet import SRSupernet

CHECKPOINT_FORMAT = "hwnas.search.dnas_supernet"
CHECKPOINT_VERSION = 1
PHASES = ("warmup", "width", "joint")

@dataclass
class SupernetState:
    """What a checkpoint holds besides tensors: the (possibly shrunk) phase lengths, progress,
    and the trajectory."""

    phases: list[int]
    step: int = 0
    elapsed_s: float = 0.0
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    calibrated: bool = False

    def phase_at(self, step: int) -> str:
        """Phase of the 0-based ``step``."""
        edge = 0
        for name, n in zip(PHASES, self.phases):
            edge += n
            if step < edge:
                return name
        return PHASES[-1]

    @property
    def total(self) -> int:
        return sum(self.phases)


def save_checkpoint(path: Path, net: SRSupernet, opts: dict[str, torch.optim.Optimizer], patches: TrainPatches,
                    state: SupernetState) -> None:
    doc = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "net": net.state_dict(), "optimizers": {k: o.state_dict() for k, o in opts.items()},
        "patches": patches.state_dict(), "generator": net.generator.get_state(),
        "phases": list(state.phases), "step": state.step, "elapsed_s": state.elapsed_s,
        "trajectory": state.trajectory, "calibrated": state.calibrated,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(doc, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def load_checkpoint(path: Path, net: SRSupernet, opts: dict[str, torch.optim.Optimizer],
                    patches: TrainPatches) -> SupernetState:
    doc = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a dnas supernet checkpoint; delete it to start afresh")
    net.load_state_dict(doc["net"])
    for k, o in opts.items():
        o.load_state_dict(doc["optimizers"][k])
    patches.load_state_dict(doc["patches"])
    net.generator.set_state(doc["generator"])
    return SupernetState(phases=list(doc["phases"]), step=int(doc["step"]), elapsed_s=float(doc["elapsed_s"]),
                         trajectory=list(doc["trajectory"]), calibrated=bool(doc["calibrated"]))
