"""Operating points of a device and the latency of a network at each of them.

A device profile lists ``operating_points`` (conf/device/*.yaml):

- ``kind: threads`` (this host): each point is a number of torch intra-op threads, and latency
  is *measured* here at that thread count (``latency_models.measure``, torch-cpu backend);
- ``kind: dvfs`` (a phone): each point is a frequency level in MHz, and latency is *modelled*:
  the device's published speed model gives the latency at the highest level ``f_max`` and
  ``latency(f) = latency(f_max) * f_max / f`` (compute-bound scaling; an assumption stated in the
  config and the report, since memory-bound layers scale less).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

import latency_models
from latency_models.backends.torch_cpu import check_onednn
from search.errors import UserError
from search.settings import DeviceProfile

BuildFn = Callable[[Any], torch.nn.Module]


@dataclass(frozen=True)
class OperatingPoint:
    """One execution speed of the device: ``threads`` (measured kind) or ``freq_mhz`` (dvfs)."""

    name: str
    threads: int | None = None
    freq_mhz: float | None = None
    onednn: bool | None = None      # threads kind: torch's conv kernels at this point (None: torch's setting)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.threads is not None:
            out["threads"] = self.threads
        if self.freq_mhz is not None:
            out["freq_mhz"] = self.freq_mhz
        if self.onednn is not None:
            out["conv_kernels"] = "onednn" if self.onednn else "native"
        return out


@dataclass(frozen=True)
class PointSet:
    """The device's operating points as configured, with where their numbers come from."""

    kind: str                       # "threads" or "dvfs"
    points: tuple[OperatingPoint, ...]
    source: str                     # where the levels come from (dvfs) or how they are measured
    latency_model: str              # how latency depends on the point, in words
    measured: bool

    @staticmethod
    def from_config(cfg: dict[str, Any] | None, device: DeviceProfile, only: Sequence[str] | None = None) -> PointSet:
        if not cfg or not cfg.get("points"):
            raise UserError(f"device={device.name} lists no operating_points; strategy=allinone needs them "
                            "(see conf/device/cpu.yaml or s21.yaml)")
        kind = str(cfg.get("kind", ""))
        points = []
        for i, p in enumerate(cfg["points"]):
            try:
                if kind == "threads":
                    points.append(OperatingPoint(str(p["name"]), threads=int(p["threads"]),
                                                 onednn=_onednn(p.get("onednn", cfg.get("onednn")), i)))
                elif kind == "dvfs":
                    points.append(OperatingPoint(str(p["name"]), freq_mhz=float(p["freq_mhz"])))
                else:
                    raise UserError(f"device.operating_points.kind={kind!r}; choose threads or dvfs")
            except (KeyError, TypeError, ValueError):
                raise UserError(f"device.operating_points.points[{i}]={p!r} needs a name and "
                                + ("threads" if kind == "threads" else "freq_mhz")) from None
        if only:
            known = {p.name for p in points}
            missing = [n for n in only if n not in known]
            if missing:
                raise UserError(f"strategy.points {missing} are not operating points of {device.name}: {sorted(known)}")
            points = [p for p in points if p.name in set(only)]
        if len(points) < 2:
            raise UserError("strategy=allinone needs at least two operating points")
        if kind == "threads":
            kernels = {p.onednn for p in points}
            how = ("torch's default conv kernels" if kernels == {None} else
                   "conv kernels " + ", ".join(f"{p.name}: {'oneDNN' if p.onednn else 'native' if p.onednn is False else 'default'}"
                                               for p in points))
            source = (f"measured on this host (torch-cpu, LR {device.lr_hw[0]}x{device.lr_hw[1]}, {how}), "
                      "one thread count per point")
        else:
            source = str(cfg.get("source", "not given"))
        return PointSet(kind, tuple(points), source, str(cfg.get("latency_model", source)), kind == "threads")


def _onednn(value: Any, i: int) -> bool | None:
    try:
        return check_onednn(value)
    except ValueError:
        raise UserError(f"device.operating_points.points[{i}].onednn={value!r}: use true (oneDNN conv kernels), "
                        "false (torch's native kernels) or null (torch's default)") from None


class PointLatency:
    """Latency in ms of architectures (or built modules) at each operating point.

    Measured kind: ``module_ms(module, point)`` times the module on this host at the point's
    thread count. Dvfs kind: ``arch_ms(arch, point)`` is the published model's estimate at
    ``f_max`` scaled by ``f_max / f``.
    """

    def __init__(self, pointset: PointSet, device: DeviceProfile, scale: int, build: BuildFn,
                 protocol: dict[str, Any] | None = None) -> None:
        self.pointset = pointset
        self.device = device
        self.build = build
        self.protocol = dict(protocol or {})
        self.notes: list[str] = []
        self._predictor = None
        if pointset.kind == "dvfs":
            try:
                self._predictor = latency_models.load_published(device.name, scale)
            except latency_models.NoLatencyDataError as err:
                raise UserError(str(err)) from None
            self.f_max = max(p.freq_mhz or 0.0 for p in pointset.points)
            citation = self._predictor.manifest.get("provenance", {})
            self.model_source = str(citation.get("citation") if isinstance(citation, dict) else citation)
        self._cache: dict[tuple[str, str], float] = {}

    @property
    def measured(self) -> bool:
        return self.pointset.measured

    def scale_of(self, point: OperatingPoint) -> float:
        """Modelled latency multiplier of ``point`` relative to the fastest level (dvfs only)."""
        return self.f_max / float(point.freq_mhz or self.f_max)

    def arch_ms(self, arch: Any, point: OperatingPoint) -> float:
        """Latency of ``arch`` at ``point``: modelled (dvfs) or measured on a fresh build."""
        key = (arch.key, point.name)
        if key not in self._cache:
            if self._predictor is not None:
                base = float(self._predictor.predict_archs([arch], self.device.lr_hw)[0])
                self._cache[key] = base * self.scale_of(point)
            else:
                self._cache[key] = self.module_ms(self.build(arch), point)
        return self._cache[key]

    def module_ms(self, module: torch.nn.Module, point: OperatingPoint, **protocol: Any) -> float:
        """Median ms of ``module`` on a ``(1, 3, *lr_hw)`` input at ``point``'s threads (measured)."""
        if point.threads is None:
            raise ValueError(f"operating point {point.name} is modelled, not measured")
        shape = (1, 3, *self.device.lr_hw)
        opts = {**self.protocol, **protocol}
        return latency_models.measure(module, shape, backend="torch-cpu", threads=point.threads,
                                      backend_options={"onednn": point.onednn}, **opts).median_ms
