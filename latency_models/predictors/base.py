"""The interface every latency predictor implements, and helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.artifact import write_artifact
from spaces.ops import Op


class LatencyPredictor(ABC):
    """Predicts latency in milliseconds.

    Call order: build (``fit`` or ``latency_models.load``), then any of ``predict_archs`` /
    ``predict``; ``save`` writes the single-file artefact that ``latency_models.load`` reads.
    ``manifest`` describes where the numbers come from (device, threads, host, held-out metrics).
    """

    kind: str = "abstract"

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest

    @abstractmethod
    def predict_archs(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Latency in ms of each architecture description, shape ``(len(archs),)``, float64."""

    @abstractmethod
    def predict(self, module: Any, input_shape: Sequence[int]) -> float:
        """Latency in ms of a ``torch.nn.Module`` run on an input of ``input_shape`` (B, C, H, W)."""

    def outside_range(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> list[str | None]:
        """Per architecture: None when it lies in the range the predictor was fitted on, else one
        line naming what lies outside (the prediction is then an extrapolation)."""
        return [None] * len(archs)

    @abstractmethod
    def _payload(self) -> dict[str, bytes]:
        """The artefact members besides the manifest."""

    def save(self, path: str | Path) -> Path:
        """Write the single-file artefact (zip of manifest.json + ONNX/npz members)."""
        manifest = dict(self.manifest)
        manifest["predictor"] = {**manifest.get("predictor", {}), "kind": self.kind}
        manifest["kind"] = self.kind
        return write_artifact(path, manifest, self._payload())

    def __repr__(self) -> str:
        m = self.manifest
        return f"{type(self).__name__}(device={m.get('device')!r}, backend={m.get('backend')!r}, threads={m.get('threads')!r})"


def arch_ops(arch: Any, input_hw: tuple[int, int] | None) -> list[Op]:
    """``arch.ops(input_hw)`` for image-size dependent archs (first parameter ``lr_hw`` /
    ``input_hw``), ``arch.ops()`` for fixed-size ones (e.g. ``TokenPruneArch.ops(batch=1)``)."""
    import inspect

    params = list(inspect.signature(arch.ops).parameters)
    if params and params[0] in ("lr_hw", "input_hw", "hw"):
        if input_hw is None:
            raise ValueError(f"{getattr(arch, 'family', arch)} needs input_hw (height, width) to list its ops")
        return list(arch.ops(tuple(input_hw)))
    return list(arch.ops())
