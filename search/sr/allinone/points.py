"""Operating points of a device and the latency of a network at each of them.

A device profile lists ``operating_points`` (conf/device/*.yaml):

- ``kind: load`` (this host, the default): each point is the same torch thread count under a
  different background load (:mod:`search.sr.allinone.load`: idle, memory streaming, a busy
  core), started and stopped by the measurement itself; latency is *measured* here under it;
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
from latency_models.backends.torch_cpu import check_onednn, conv_kernels
from latency_models.interleave import InterleavedTiming, interleaved_ms
from search.errors import UserError
from search.latency import LatencyEstimator, make_estimator
from search.settings import DeviceProfile
from search.sr.allinone.load import LOADS, apply_load, check_load

BuildFn = Callable[[Any], torch.nn.Module]


@dataclass(frozen=True)
class OperatingPoint:
    """One execution speed of the device: ``threads`` and ``load`` (measured kinds) or ``freq_mhz`` (dvfs)."""

    name: str
    threads: int | None = None
    freq_mhz: float | None = None
    onednn: bool | None = None      # measured kinds: torch's conv kernels at this point (None: torch's setting)
    load: str | None = None         # load kind: the background load running while this point is timed
    duty: float = 1.0               # a cpu load's share of time computing

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.threads is not None:
            out["threads"] = self.threads
        if self.freq_mhz is not None:
            out["freq_mhz"] = self.freq_mhz
        if self.onednn is not None:
            out["conv_kernels"] = "onednn" if self.onednn else "native"
        if self.load is not None:
            out["load"] = self.load
            if self.load == "cpu":
                out["duty"] = self.duty
        return out

    def enter(self) -> None:
        """Put this process where the point runs: its torch threads and background load."""
        torch.set_num_threads(self.threads)  # type: ignore[arg-type]
        if self.load is not None:
            apply_load(self.load, self.duty)


@dataclass(frozen=True)
class PointSet:
    """The device's operating points as configured, with where their numbers come from."""

    kind: str                       # "load", "threads" or "dvfs"
    points: tuple[OperatingPoint, ...]
    source: str                     # where the levels come from (dvfs) or how they are measured
    latency_model: str              # how latency depends on the point, in words
    measured: bool

    @staticmethod
    def from_config(cfg: dict[str, Any] | None, device: DeviceProfile, only: Sequence[str] | None = None) -> PointSet:
        if not cfg or not cfg.get("points"):
            raise UserError(f"device={device.name} lists no operating_points; strategy=allinone needs them "
                            "(see conf/device/cpu.yaml or s21.yaml)")
        kind = str(cfg.get("kind") or "")
        points = []
        for i, p in enumerate(cfg["points"]):
            try:
                points.append(_point(kind, p, cfg, device, i))
            except (KeyError, TypeError, ValueError):
                raise UserError(f"device.operating_points.points[{i}]={p!r} needs a name and "
                                + _NEEDS.get(kind, "freq_mhz")) from None
        if only:
            known = {p.name for p in points}
            missing = [n for n in only if n not in known]
            if missing:
                raise UserError(f"strategy.points {missing} are not operating points of {device.name}: {sorted(known)}")
            points = [p for p in points if p.name in set(only)]
        if len(points) < 2:
            raise UserError("strategy=allinone needs at least two operating points")
        if kind == "load":
            source = (f"measured on this host (torch-cpu, LR {device.lr_hw[0]}x{device.lr_hw[1]}) under a background "
                      "load per point, started and stopped by the measurement: "
                      + ", ".join(f"{p.name}: {p.load}{f' {p.duty:.0%} of the time' if p.load == 'cpu' else ''} at "
                                   f"{p.threads} thread(s)" for p in points))
        elif kind == "threads":
            kernels = {p.onednn for p in points}
            how = ("torch's default conv kernels" if kernels == {None} else
                   "conv kernels " + ", ".join(f"{p.name}: {'oneDNN' if p.onednn else 'native' if p.onednn is False else 'default'}"
                                               for p in points))
            source = (f"measured on this host (torch-cpu, LR {device.lr_hw[0]}x{device.lr_hw[1]}, {how}), "
                      "one thread count per point")
        else:
            source = str(cfg.get("source", "not given"))
        return PointSet(kind, tuple(points), source, str(cfg.get("latency_model", source)), kind in _MEASURED)


_MEASURED = ("load", "threads")
_NEEDS = {"load": f"load (one of {LOADS})", "threads": "threads"}


def _point(kind: str, p: dict[str, Any], cfg: dict[str, Any], device: DeviceProfile, i: int) -> OperatingPoint:
    name = str(p["name"])
    onednn = _onednn(p.get("onednn", cfg.get("onednn")), i)
    if kind == "load":
        load, duty = str(p["load"]), float(p.get("duty", 1.0))
        try:
            check_load(load, duty)
        except ValueError as err:
            raise UserError(f"device.operating_points.points[{i}]: {err}") from None
        return OperatingPoint(name, threads=int(p.get("threads", device.measure_threads)), onednn=onednn, load=load,
                              duty=duty)
    if kind == "threads":
        return OperatingPoint(name, threads=int(p["threads"]), onednn=onednn)
    if kind == "dvfs":
        return OperatingPoint(name, freq_mhz=float(p["freq_mhz"]))
    raise UserError(f"device.operating_points.kind={kind!r}; choose load, threads or dvfs")


def _onednn(value: Any, i: int) -> bool | None:
    try:
        return check_onednn(value)
    except ValueError:
        raise UserError(f"device.operating_points.points[{i}].onednn={value!r}: use true (oneDNN conv kernels), "
                        "false (torch's native kernels) or null (torch's default)") from None


class AtPoint(torch.nn.Module):
    """``module`` run at an operating point: its torch threads and conv kernels hold during each
    forward, after ``before()`` (e.g. switching an All-in-One network to a sub-network), so that
    differently configured timings can share one interleaved schedule."""

    def __init__(self, module: torch.nn.Module, point: OperatingPoint,
                 before: Callable[[], None] | None = None) -> None:
        super().__init__()
        if point.threads is None:
            raise ValueError(f"operating point {point.name} is modelled, not measured")
        self.module, self.point, self.before = module, point, before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.before is not None:
            self.before()
        self.point.enter()
        with conv_kernels(self.point.onednn):
            return self.module(x)


class PointLatency:
    """Latency in ms of architectures (or built modules) at each operating point, a thin per-point
    adapter over the run's :class:`search.latency.LatencyEstimator` (built by
    :func:`point_estimator`).

    Measured kind: ``module_ms(module, point)`` times the module on this host at the point's
    thread count, and :meth:`interleaved` times several in interleaved rounds. Dvfs kind:
    ``arch_ms(arch, point)`` is the estimator's figure (the device's model at ``f_max``) scaled by
    ``f_max / f``.
    """

    def __init__(self, pointset: PointSet, estimator: LatencyEstimator, build: BuildFn | None,
                 protocol: dict[str, Any] | None = None) -> None:
        if pointset.kind == "dvfs" and estimator.measured:
            raise UserError(f"device={estimator.device.name}'s operating points are frequency levels: their latency "
                            "is modelled; use latency=published or latency=predictor")
        self.pointset = pointset
        self.estimator = estimator
        self.device = estimator.device
        self.build = build
        self.protocol = dict(protocol or {})
        self.notes = estimator.notes
        if pointset.kind == "dvfs":
            self.f_max = max(p.freq_mhz or 0.0 for p in pointset.points)
        self._cache: dict[tuple[str, str], float] = {}

    @property
    def measured(self) -> bool:
        return self.pointset.measured

    @property
    def shape(self) -> tuple[int, ...]:
        """One LR frame of the device, ``(1, 3, H, W)``."""
        return (1, 3, *self.device.lr_hw)

    def scale_of(self, point: OperatingPoint) -> float:
        """Modelled latency multiplier of ``point`` relative to the fastest level (dvfs only)."""
        return self.f_max / float(point.freq_mhz or self.f_max)

    def arch_ms(self, arch: Any, point: OperatingPoint) -> float:
        """Latency of ``arch`` at ``point``: modelled (dvfs) or measured on a fresh build."""
        key = (arch.key, point.name)
        if key not in self._cache:
            if not self.measured:
                self._cache[key] = self.estimator.latency_ms(arch) * self.scale_of(point)
            else:
                self._cache[key] = self.module_ms(self.build(arch), point)  # type: ignore[misc]
        return self._cache[key]

    def module_ms(self, module: torch.nn.Module, point: OperatingPoint, **protocol: Any) -> float:
        """Median ms of ``module`` on a ``(1, 3, *lr_hw)`` input at ``point``'s threads (measured)."""
        if point.threads is None:
            raise ValueError(f"operating point {point.name} is modelled, not measured")
        opts = {**self.protocol, **protocol}
        try:
            if point.load is not None:
                apply_load(point.load, point.duty)
            return latency_models.measure(module, self.shape, backend="torch-cpu", threads=point.threads,
                                          backend_options={"onednn": point.onednn}, **opts).median_ms
        finally:
            apply_load("idle")  # nothing else in the run (training, evaluation) runs under a load

    def interleaved(self, timed: Sequence[AtPoint], rounds: int,
                    after: Callable[[int, float], None] | None = None) -> list[InterleavedTiming]:
        """Each of ``timed`` once per round, in an order reversed every round, so that the host's
        drift hits them alike (:func:`latency_models.interleave.interleaved_ms`); the protocol's
        ``warmup`` and ``min_repeats`` give the warm-up runs and the runs per timing. Under loads,
        one untimed run precedes each timing: it pays the switch of load (up to 10 ms)."""
        try:
            return interleaved_ms([(m, self.shape) for m in timed], self.device.measure_threads,
                                  rounds=max(1, rounds), runs=int(self.protocol["min_repeats"]),
                                  warmup=int(self.protocol["warmup"]), settle=int(self.pointset.kind == "load"),
                                  after=after)
        finally:
            apply_load("idle")


def point_estimator(pointset: PointSet, device: DeviceProfile, latency_cfg: dict[str, Any], scale: int,
                    build: BuildFn) -> LatencyEstimator:
    """The run's estimator: thread-count points are timed on this host whatever the device's default
    latency model; frequency levels scale the figures of the model ``latency=`` names."""
    cfg = {**latency_cfg, "kind": "measured"} if pointset.measured else latency_cfg
    return make_estimator(device, cfg, scale, build)
