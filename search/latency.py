"""Latency estimates for candidates: the seam between the search and ``latency_models``.

Three kinds, chosen by ``latency=`` (``auto`` takes the device's default):
- ``published``: a device's published speed model (S21: per-block MLP of Wu, Gong et al. 2022);
- ``measured``: each candidate is built and timed on this host (warm-up, repeats, median);
- ``predictor``: a fitted ``.hwlat`` predictor artefact (the device's own when no path is given).

Every predictor a search uses is loaded here, once, and carried by its estimator
(:attr:`LatencyEstimator.predictor`); a gradient-based search asks the estimator for its torch
form (:meth:`LatencyEstimator.torch_latency`), and the All-in-One operating points scale the
estimator's figures (:mod:`search.sr.allinone.points`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

import latency_models
from latency_models.predictors.base import LatencyPredictor
from latency_models.predictors.published import PublishedBlockPredictor
from latency_models.predictors.surrogate import SRSurrogate
from search.config.schema import MeasuredLatencyConf
from search.console import say
from search.errors import UserError
from search.settings import DeviceProfile

BuildFn = Callable[[Any], torch.nn.Module]
TorchFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TorchLatency:
    """A latency model as differentiable torch functions of (expected) widths, in ms.

    ``block_ms``: ``(n, 4)`` rows ``[C, M1, M2, C]`` -> ``(n,)``, one residual block each;
    ``fixed_ms``: scalar trunk width ``C`` -> scalar, the rest of the network (head, tail, skip,
    PixelShuffle), or None where the model covers the blocks only (the published block models).
    """

    block_ms: TorchFn
    fixed_ms: TorchFn | None
    kind: str


def torch_view(predictor: LatencyPredictor) -> TorchLatency | None:
    """``predictor``'s torch form, or None for a predictor that has none (additive, LUT)."""
    kind = str(predictor.manifest.get("kind", type(predictor).__name__))
    if isinstance(predictor, SRSurrogate):
        empty = torch.zeros(0)  # no blocks: torch_arch_latency is then the fixed(C) term alone
        return TorchLatency(predictor.torch_block_latency,
                            lambda c: predictor.torch_arch_latency(c, empty, empty), kind)
    if isinstance(predictor, PublishedBlockPredictor):
        return TorchLatency(predictor.torch_block_latency, None, kind)
    return None


@dataclass
class LatencyEstimator:
    """Predicts (or measures) the latency in ms of architectures on one device."""

    kind: str
    device: DeviceProfile
    source: str                    # where the numbers come from, in words, for reports
    measured: bool                 # True when every number is a real timing on this host
    _predict: Callable[[Sequence[Any]], list[float]]
    notes: list[str] = field(default_factory=list)
    predictor: LatencyPredictor | None = None  # the model behind the numbers; None when measured
    _cache: dict[str, float] = field(default_factory=dict)
    # per arch, None or why its prediction extrapolates (the model's fitted range); see check_range
    _outside: Callable[[Sequence[Any]], list[str | None]] = lambda archs: [None] * len(archs)
    extrapolated: dict[str, str] = field(default_factory=dict)
    allow_extrapolation: bool = False

    def latency_ms(self, arch: Any) -> float:
        return self.latencies_ms([arch])[0]

    def latencies_ms(self, archs: Sequence[Any]) -> list[float]:
        todo = [a for a in archs if a.key not in self._cache]
        if todo:
            for arch, value, why in zip(todo, self._predict(todo), self._outside(todo)):
                self._cache[arch.key] = float(value)
                if why is not None:
                    self.extrapolated[arch.key] = why
        return [self._cache[a.key] for a in archs]

    def check_range(self, corners: Sequence[Any], what: str) -> None:
        """Refuse a space whose ``corners`` (its extreme members) reach outside the latency model's
        fitted range, unless ``latency.allow_extrapolation=true``; then warn once."""
        reasons = [why for why in self._outside(list(corners)) if why is not None]
        if not reasons:
            return
        if not self.allow_extrapolation:
            raise UserError(f"{what} reaches outside the range of the {self.kind} latency model: {reasons[0]}; "
                            "narrow the space, or pass latency.allow_extrapolation=true to search it anyway "
                            "(result.json then flags every extrapolated prediction)")
        say(f"warning: {what} reaches outside the latency model's range ({reasons[0]}); predictions there are "
            "extrapolated and flagged in result.json")

    def torch_latency(self) -> tuple[TorchLatency | None, str]:
        """This estimator's model in torch form, for a gradient-based search; or None and why not."""
        if self.predictor is None:
            return None, f"the {self.kind} latency has no model behind it: every candidate is timed"
        view = torch_view(self.predictor)
        if view is None:
            return None, f"the {self.predictor.manifest.get('kind', type(self.predictor).__name__)} predictor " \
                         "has no torch form"
        return view, ""

    def forget(self) -> None:
        """Drop cached values, so that the next call measures (or predicts) again."""
        self._cache.clear()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "measured": self.measured, "notes": self.notes,
                "extrapolated": dict(self.extrapolated)}


def _published(device: DeviceProfile, scale: int) -> LatencyEstimator:
    try:
        predictor = latency_models.load_published(device.name, scale)
    except latency_models.NoLatencyDataError as err:
        raise UserError(str(err)) from None
    manifest = predictor.manifest
    source = str(manifest.get("provenance", {}).get("citation") or manifest.get("provenance"))
    not_modelled = manifest.get("not_modelled") or ["head, tail, skip conv and PixelShuffle"]
    if isinstance(not_modelled, str):
        not_modelled = [not_modelled]
    notes = ["not modelled (the estimate is the sum over residual blocks): " + "; ".join(map(str, not_modelled))]

    def predict(archs: Sequence[Any]) -> list[float]:
        return [float(v) for v in predictor.predict_archs(list(archs), device.lr_hw)]

    return LatencyEstimator("published", device, f"published speed model: {source}", False, predict, notes,
                            predictor=predictor,
                            _outside=lambda archs: predictor.outside_range(list(archs), device.lr_hw))


def _measured(device: DeviceProfile, build: BuildFn, options: dict[str, Any],
              input_shape: tuple[int, ...]) -> LatencyEstimator:
    threads = device.measure_threads
    base = MeasuredLatencyConf()
    protocol = {k: options[k] if k in options else getattr(base, k)
                for k in ("backend", "warmup", "min_repeats", "max_repeats", "max_seconds")}
    backend = protocol.pop("backend")
    if device.name != "cpu" and backend.startswith("torch-cpu"):
        raise UserError(
            f"latency=measured times candidates on this host, but device={device.name} is not this host; "
            "use latency=published or latency=predictor for it, or device=cpu"
        )

    def predict(archs: Sequence[Any]) -> list[float]:
        out = []
        for arch in archs:
            result = latency_models.measure(build(arch), input_shape, backend=backend, threads=threads,
                                            **protocol)
            out.append(result.median_ms)
        return out

    source = (f"measured on this host: {backend}, {threads} thread(s), input {tuple(input_shape)}, "
              "median of repeats after warm-up")
    return LatencyEstimator("measured", device, source, True, predict)


def _quantile(value: Any) -> float | None:
    if value is None:
        return None
    q = float(value)
    if not 0.5 <= q < 1.0:  # nan fails too
        raise UserError(f"latency.quantile={value!r}: give a level in [0.5, 1) (e.g. 0.9), or null for the point "
                        "prediction")
    return q


def device_predictor(device: DeviceProfile, scale: int) -> LatencyPredictor:
    """The device's own fitted predictor (this host's: fitted and cached on first use; a phone's:
    its published model at x``scale``)."""
    try:
        return latency_models.for_device(device.name, threads=device.measure_threads, scale=scale)
    except (FileNotFoundError, ValueError) as err:  # NoLatencyDataError is a ValueError
        raise UserError(f"latency predictor: {err}") from None


def _fitted(device: DeviceProfile, path: str | None, input_shape: tuple[int, ...], scale: int,
            quantile: float | None = None) -> LatencyEstimator:
    if path:
        try:
            predictor = latency_models.load(path)
        except (FileNotFoundError, ValueError) as err:
            raise UserError(f"latency predictor: {err}") from None
    else:
        predictor = device_predictor(device, scale)
    if quantile is not None and "quantile" not in inspect.signature(predictor.predict_archs).parameters:
        raise UserError(f"latency.quantile={quantile}: the {predictor.manifest.get('kind')} predictor gives no "
                        "intervals; fit one with latency_models.fit or set latency.quantile=null")
    extra = {} if quantile is None else {"quantile": quantile}

    def predict(archs: Sequence[Any]) -> list[float]:
        return [float(v) for v in predictor.predict_archs(list(archs), tuple(input_shape[-2:]), **extra)]

    bound = "" if quantile is None else f", upper {quantile:.0%} bound (a candidate whose interval reaches " \
                                        "past the budget counts as infeasible)"
    source = f"fitted predictor {path or 'for ' + device.name}: {predictor.manifest.get('kind', '')}{bound}"
    return LatencyEstimator("predictor", device, source, False, predict, predictor=predictor,
                            _outside=lambda archs: predictor.outside_range(list(archs), tuple(input_shape[-2:])))


def make_estimator(
    device: DeviceProfile, latency_cfg: dict[str, Any], scale: int, build: BuildFn,
    input_shape: tuple[int, ...] | None = None,
) -> LatencyEstimator:
    """Build the estimator that ``latency=`` and the device call for. ``input_shape`` is what one
    inference takes (default: one LR frame of the device, ``(1, 3, *device.lr_hw)``)."""
    shape = tuple(input_shape) if input_shape is not None else (1, 3, *device.lr_hw)
    kind = latency_cfg["kind"]
    if kind == "auto":
        kind = device.latency
    allow = latency_cfg["allow_extrapolation"]
    if not isinstance(allow, bool):
        raise UserError(f"latency.allow_extrapolation={allow!r}: give true or false")
    if kind == "published":
        est = _published(device, scale)
    elif kind == "measured":
        est = _measured(device, build, latency_cfg, shape)
    elif kind == "predictor":
        est = _fitted(device, latency_cfg.get("path"), shape, scale, _quantile(latency_cfg.get("quantile")))
    else:
        raise UserError(f"unknown latency model {kind!r}; choose latency=auto|published|measured|predictor")
    est.allow_extrapolation = allow
    return est

