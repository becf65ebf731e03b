"""Lookup-table predictor for the discrete WDSR-B block space: ms per block ``(C, M1, M2)``
plus a fixed cost per trunk width ``C`` (head, tail, skip conv, PixelShuffle), at one input size.

Built by tabulating any additive teacher (the additive predictor is linear over ops, so a
block's cost is exactly ``teacher(two blocks) - teacher(one block)``) over every member of a
:class:`spaces.SRSpace`, or filled from block measurements. Prediction is a table read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from latency_models.artifact import npz_arrays, npz_bytes, register_kind
from latency_models.predictors.base import LatencyPredictor


@register_kind("wdsr_block_lut")
class BlockLUTPredictor(LatencyPredictor):
    """``latency = fixed[C] + sum over blocks table[C, M1, M2]`` (ms) at ``manifest['input_hw']``."""

    def __init__(self, manifest: dict[str, Any], blocks: np.ndarray, block_ms: np.ndarray,
                 channels: np.ndarray, fixed_ms: np.ndarray) -> None:
        super().__init__(manifest)
        self.table = {tuple(int(v) for v in b): float(ms) for b, ms in zip(blocks, block_ms, strict=True)}
        self.fixed = {int(c): float(ms) for c, ms in zip(channels, fixed_ms, strict=True)}
        self.input_hw = tuple(manifest["input_hw"])

    def predict_archs(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> np.ndarray:
        if input_hw is not None and tuple(input_hw) != self.input_hw:
            raise ValueError(f"this table holds LR {self.input_hw}; rebuild it for {tuple(input_hw)} "
                             "(BlockLUTPredictor.from_teacher(teacher, space, input_hw))")
        out = np.empty(len(archs))
        for i, arch in enumerate(archs):
            try:
                out[i] = self.fixed[arch.channels] + sum(self.table[(arch.channels, b.m1, b.m2)] for b in arch.blocks)
            except (KeyError, AttributeError) as err:
                raise ValueError(f"{getattr(arch, 'key', arch)} has a block or width outside the table ({err}); "
                                 "the lookup table covers only its space") from None
        return out

    def predict(self, module: Any, input_shape: Sequence[int]) -> float:
        raise TypeError("the block lookup table predicts WDSR-B descriptions only (predict_archs)")

    def _payload(self) -> dict[str, bytes]:
        blocks = np.array(list(self.table), dtype=np.int64).reshape(-1, 3)
        return {"table.npz": npz_bytes({
            "blocks": blocks, "block_ms": np.array(list(self.table.values())),
            "channels": np.array(list(self.fixed), dtype=np.int64), "fixed_ms": np.array(list(self.fixed.values())),
        })}

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], members: dict[str, bytes]) -> BlockLUTPredictor:
        t = npz_arrays(members["table.npz"])
        return cls(manifest, t["blocks"], t["block_ms"], t["channels"], t["fixed_ms"])

    @classmethod
    def from_teacher(cls, teacher: LatencyPredictor, space: Any, input_hw: tuple[int, int]) -> BlockLUTPredictor:
        """Tabulate an additive ``teacher`` over every (C, M1, M2) of ``space`` (a SRSpace)."""
        from spaces import WDSRBArch, WDSRBlock

        m1s = range(space.m1[0], space.m1[1] + 1, space.m1[2])
        m2s = range(space.m2[0], space.m2[1] + 1, space.m2[2])
        keys = [(c, a, b) for c in space.channels for a in m1s for b in m2s]
        one = [WDSRBArch(space.scale, c, (WDSRBlock(a, b),)) for c, a, b in keys]
        two = [WDSRBArch(space.scale, c, (WDSRBlock(a, b),) * 2) for c, a, b in keys]
        p1, p2 = teacher.predict_archs(one, input_hw), teacher.predict_archs(two, input_hw)
        block = p2 - p1
        fixed = {c: float(np.median((p1 - block)[[k[0] == c for k in keys]])) for c in space.channels}
        manifest = {k: teacher.manifest.get(k) for k in ("device", "backend", "threads", "host", "library_versions")}
        manifest.update({
            "kind": "wdsr_block_lut", "predictor": {"kind": "wdsr_block_lut", "teacher": teacher.manifest.get("kind")},
            "input_hw": list(input_hw), "scale": space.scale,
            "feature_schema": {"key": ["C", "M1", "M2"], "unit": "ms per block; plus fixed ms per C"},
            "n_samples": {"table_entries": len(keys)}, "held_out_metrics": teacher.manifest.get("held_out_metrics"),
            "provenance": {"text": "tabulated from an additive teacher predictor over the SR space", "citation": None},
            "not_modelled": ["members outside the tabulated space", "input sizes other than input_hw"],
        })
        return cls(manifest, np.array(keys), block, np.array(list(fixed)), np.array(list(fixed.values())))
