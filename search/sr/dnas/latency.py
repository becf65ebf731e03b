"""The latency ``strategy=dnas`` puts in the supernet's loss: the estimator's own model in torch
form (:meth:`search.latency.LatencyEstimator.torch_latency`; the published S21 block MLP), or,
where it has none (timed on this host, an additive or LUT predictor), a torch surrogate distilled
from the predictor behind it (the device's own when the estimator times candidates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch

from latency_models.predictors.base import LatencyPredictor
from search.console import say
from search.latency import LatencyEstimator, TorchFn, TorchLatency, device_predictor, torch_view
from search.settings import DeviceProfile
from search.sr.dnas.derive import PredictFn


class DnasLatency(NamedTuple):
    """Torch callables for the supernet's expected latency (ms, scaled to the estimator's figure
    for the largest net), their description, and the non-differentiable ``archs -> [ms]`` that
    fits the derived net."""

    block_ms: TorchFn
    fixed_ms: TorchFn | None
    description: str
    check_ms: PredictFn


def differentiable_latency(estimator: LatencyEstimator, device: DeviceProfile, space: Any,
                           run_dir: Path) -> DnasLatency:
    """``check_ms`` is the estimator itself, or, when it measures on this host, the predictor the
    surrogate was distilled from: fitting tries hundreds of candidates."""
    view, why = estimator.torch_latency()
    check_ms: PredictFn = estimator.latencies_ms
    if view is None:
        view, teacher = _surrogate(estimator, device, space, run_dir, why)
        if estimator.measured:
            def check_ms(archs: Any) -> list[float]:
                return [float(v) for v in teacher.predict_archs(list(archs), tuple(device.lr_hw))]
    largest = space.largest()
    factor = estimator.latency_ms(largest) / _view_ms(view, largest)  # 1.0: the published model at its resolution
    block, fixed = view.block_ms, view.fixed_ms

    def block_ms(x: torch.Tensor) -> torch.Tensor:
        return block(x) * factor

    def fixed_ms(c: torch.Tensor) -> torch.Tensor:
        return fixed(c) * factor  # type: ignore[misc]

    desc = f"{view.kind} (torch), x{factor:.3f} to the estimator's scale"
    return DnasLatency(block_ms, fixed_ms if fixed is not None else None, desc, check_ms)


def _view_ms(view: TorchLatency, arch: Any) -> float:
    """``view``'s own figure for ``arch`` (ms): its blocks, plus the fixed term where it has one."""
    rows = torch.tensor(arch.block_vectors(), dtype=torch.float32)
    with torch.no_grad():
        raw = float(view.block_ms(rows).sum())
        if view.fixed_ms is not None:
            raw += float(view.fixed_ms(torch.tensor(float(arch.channels))))
    return raw


def _surrogate(estimator: LatencyEstimator, device: DeviceProfile, space: Any, run_dir: Path,
               why: str) -> tuple[TorchLatency, LatencyPredictor]:
    """``(surrogate, teacher)``: a torch surrogate distilled from the estimator's predictor (the
    device's fitted one when the estimator measures), cached in the run dir, and that teacher."""
    import latency_models
    from latency_models.predictors.surrogate import distill

    teacher = estimator.predictor if estimator.predictor is not None else device_predictor(device, space.scale)
    path = run_dir / "latency_surrogate.hwlat"
    if path.exists():  # a resumed run searches on the very surrogate it started with
        surrogate = latency_models.load(path)
    else:
        say(f"dnas: {why}; distilling a differentiable latency surrogate from the "
            f"{teacher.manifest.get('kind', type(teacher).__name__)} predictor (first use of this run directory)")
        surrogate = distill(teacher, space, tuple(device.lr_hw))
        surrogate.save(path)
    estimator.notes.append("dnas: the search used a torch surrogate distilled from the device predictor "
                           f"(fidelity {surrogate.manifest.get('teacher_fidelity')})")
    view = torch_view(surrogate)
    if view is None:
        raise ValueError(f"{path} holds a {type(surrogate).__name__}, not a torch surrogate; delete it")
    return view, teacher
