"""The published on-device WDSR-B block speed models (Galaxy S21 / S10), as a predictor.

Source: the per-block latency MLPs released with "Compiler-Aware Neural Architecture Search for
On-Mobile Real-time Super-Resolution" (Wu, Gong et al., ECCV 2022, arXiv 2207.12577), repository
wuyushuwys/compiler-aware-nas-sr at commit 1163bcd. Only the numbers (weights) are used, with a
citation; none of that repository's code.

Model: MLP 4 -> 128 -> 256 -> 512 -> 256 -> 128 -> 1 with ReLU between layers. Input per
residual block ``[C, M1, M2, C]`` (float32), output that block's ms at the paper's 720p output.
A network's estimate is the sum over its blocks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.artifact import npz_arrays, npz_bytes, register_kind
from latency_models.predictors.base import LatencyPredictor

LAYERS = ("fc1", "fc2", "fc3", "fc6", "fc7", "fc8")
# The box the published models were fitted on (inferred from the paper's supernet and masks).
FITTED_BOX = {"C": (8, 24), "M1": (8, 144), "M2": (8, 20)}
OUTPUT_HW = (720, 1280)  # the paper's deployment resolution (HR output)

CITATION = (
    "Wu, Gong et al., Compiler-Aware Neural Architecture Search for On-Mobile Real-time "
    "Super-Resolution, ECCV 2022, arXiv:2207.12577; weights from github.com/wuyushuwys/"
    "compiler-aware-nas-sr @ 1163bcd06271f3b9dc06236c009a30ed7fa3b636, speed_models/weights/"
    "{device}/{unit}/block_b_x{scale}.pt (no licence file: used as measurement data with citation)"
)
NOT_MODELLED = [
    "head conv3x3 (3 -> C)",
    "tail conv3x3 (C -> 3 s^2)",
    "5x5 global skip conv (3 -> 3 s^2)",
    "PixelShuffle",
    "framework/launch overhead outside the residual blocks",
    "input sizes other than the 720p output (other input_hw are scaled linearly in pixels: an approximation)",
]


@register_kind("published_block_mlp")
class PublishedBlockPredictor(LatencyPredictor):
    """Sum of a per-block MLP over a WDSR-B architecture's residual blocks (ms, on a phone)."""

    def __init__(self, manifest: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        super().__init__(manifest)
        self._w = [np.asarray(weights[f"{n}.weight"], dtype=np.float64).T for n in LAYERS]
        self._b = [np.asarray(weights[f"{n}.bias"], dtype=np.float64) for n in LAYERS]
        if self._w[0].shape != (4, 128) or self._w[-1].shape != (128, 1):
            raise ValueError(f"unexpected layer shapes {[w.shape for w in self._w]}")
        self.scale = int(manifest["scale"])
        self.lr_hw = (OUTPUT_HW[0] // self.scale, OUTPUT_HW[1] // self.scale)
        self._torch_mlp: Any = None

    # ---- block level -------------------------------------------------------------------
    def block_latency(self, x: np.ndarray) -> np.ndarray:
        """Per-block ms for ``x`` of shape ``(n, 4)`` rows ``[C, M1, M2, C]``; returns ``(n,)``."""
        h = np.asarray(x, dtype=np.float64).reshape(-1, 4)
        for i, (w, b) in enumerate(zip(self._w, self._b, strict=True)):
            h = h @ w + b
            if i < len(self._w) - 1:
                np.maximum(h, 0.0, out=h)
        return h[:, 0]

    def torch_block_latency(self, x: Any) -> Any:
        """Differentiable per-block ms: ``x`` a float tensor ``(n, 4)`` -> tensor ``(n,)``."""
        import torch

        if self._torch_mlp is None or self._torch_mlp[0][0].device != x.device:
            self._torch_mlp = [
                (torch.as_tensor(w.T, dtype=torch.float32, device=x.device),
                 torch.as_tensor(b, dtype=torch.float32, device=x.device))
                for w, b in zip(self._w, self._b, strict=True)
            ]
        if x.ndim != 2 or x.shape[-1] != 4:
            raise ValueError(f"expected x of shape (n, 4) = [C, M1, M2, C] rows, got {tuple(x.shape)}")
        h = x.to(torch.float32)
        for i, (w, b) in enumerate(self._torch_mlp):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(self._torch_mlp) - 1:
                h = torch.relu(h)
        return h[:, 0]

    # ---- architecture level ------------------------------------------------------------
    def in_fitted_box(self, arch: Any) -> bool:
        """True when every block of ``arch`` lies in the box the model was fitted on."""
        (c_lo, c_hi), (m1_lo, m1_hi), (m2_lo, m2_hi) = FITTED_BOX.values()
        return all(
            c_lo <= c <= c_hi and m1_lo <= m1 <= m1_hi and m2_lo <= m2 <= m2_hi
            for c, m1, m2, _ in _block_vectors(arch)
        )

    def outside_range(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> list[str | None]:
        box = ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in FITTED_BOX.items())
        out: list[str | None] = []
        for arch in archs:
            bad = next(((c, m1, m2) for c, m1, m2, _ in _block_vectors(arch)
                        if not (FITTED_BOX["C"][0] <= c <= FITTED_BOX["C"][1]
                                and FITTED_BOX["M1"][0] <= m1 <= FITTED_BOX["M1"][1]
                                and FITTED_BOX["M2"][0] <= m2 <= FITTED_BOX["M2"][1])), None)
            out.append(None if bad is None else
                       f"block (C={bad[0]}, M1={bad[1]}, M2={bad[2]}) outside the box the published model was fitted "
                       f"on ({box})")
        return out

    def predict_archs(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Sum of block ms per architecture at the 720p output (``input_hw`` None).

        Another ``input_hw`` (LR H, W) scales the estimate by its pixel count over the
        deployment LR size (360x640 at x2): an approximation, warned about. Blocks are
        deduplicated across architectures, so 10,000 archs take well under a second.
        """
        vectors = [_block_vectors(a) for a in archs]
        for a in archs:
            if getattr(a, "scale", self.scale) != self.scale:
                raise ValueError(
                    f"architecture scale x{a.scale} but this is the x{self.scale} model; "
                    f"use latency_models.load_published(device, {a.scale})"
                )
        flat = [v for vs in vectors for v in vs]
        out = np.zeros(len(archs))
        if flat:
            uniq, inverse = np.unique(np.asarray(flat, dtype=np.float64), axis=0, return_inverse=True)
            per_block = self.block_latency(uniq)[inverse.reshape(-1)]
            owners = np.repeat(np.arange(len(archs)), [len(v) for v in vectors])
            np.add.at(out, owners, per_block)
        return out * self._resolution_factor(input_hw)

    def _resolution_factor(self, input_hw: tuple[int, int] | None) -> float:
        if input_hw is None or tuple(input_hw) == self.lr_hw:
            return 1.0
        warnings.warn(
            f"the published model is for LR {self.lr_hw} (720p output); scaling to LR {tuple(input_hw)} "
            "linearly in pixels is an approximation",
            stacklevel=3,
        )
        return (input_hw[0] * input_hw[1]) / (self.lr_hw[0] * self.lr_hw[1])

    def predict(self, module: Any, input_shape: Sequence[int]) -> float:
        raise TypeError(
            "the published block model predicts WDSR-B architecture descriptions only "
            "(predict_archs / block_latency); for an arbitrary torch module on this CPU use "
            "latency_models.for_device('cpu').predict(module, input_shape)"
        )

    # ---- file format -------------------------------------------------------------------
    def _payload(self) -> dict[str, bytes]:
        arrays = {}
        for n, w, b in zip(LAYERS, self._w, self._b, strict=True):
            arrays[f"{n}.weight"] = w.T.astype(np.float32)
            arrays[f"{n}.bias"] = b.astype(np.float32)
        return {"weights.npz": npz_bytes(arrays)}

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], members: dict[str, bytes]) -> PublishedBlockPredictor:
        return cls(manifest, npz_arrays(members["weights.npz"]))


def _block_vectors(arch: Any) -> list[tuple[int, int, int, int]]:
    if not hasattr(arch, "block_vectors"):
        raise TypeError(
            f"the published block model needs a WDSR-B architecture (with block_vectors()), "
            f"got {getattr(arch, 'family', type(arch).__name__)}"
        )
    return list(arch.block_vectors())


def from_published_npz(src: str | Path, device: str, unit: str, scale: int, phone: str) -> PublishedBlockPredictor:
    """Wrap one converted ``.npz`` of the published weights (build-time use only)."""
    from latency_models.artifact import library_versions

    with np.load(src, allow_pickle=False) as data:
        weights = {k: data[k] for k in data.files}
    lr_hw = (OUTPUT_HW[0] // scale, OUTPUT_HW[1] // scale)
    manifest = {
        "kind": "published_block_mlp",
        "predictor": {"kind": "published_block_mlp", "architecture": "MLP 4-128-256-512-256-128-1, ReLU"},
        "device": f"{device}-{unit}",
        "backend": f"{phone}, {unit.upper()} (vendor compiler of the paper)",
        "threads": None,
        "host": phone,
        "scale": scale,
        "output_hw": list(OUTPUT_HW),
        "input_hw": list(lr_hw),
        "library_versions": library_versions(),
        "feature_schema": {
            "input": ["C_in", "M1", "M2", "C_out"],
            "unit": "ms per WDSR-B residual block; network = sum over blocks",
            "block": "conv1x1(C->M1), ReLU, conv1x1(M1->M2), conv3x3(M2->C), identity skip",
        },
        "fitted_box": {k: list(v) for k, v in FITTED_BOX.items()},
        "n_samples": None,
        "held_out_metrics": None,
        "not_modelled": NOT_MODELLED,
        "provenance": {
            "text": (
                "Published per-block speed model, converted from the torch state dict to float32 npz "
                "(same numbers). Training set size and held-out error are not published."
            ),
            "citation": CITATION.format(device=device.upper(), unit=unit, scale=scale),
        },
    }
    return PublishedBlockPredictor(manifest, weights)
