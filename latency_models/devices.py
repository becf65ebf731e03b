"""Predictors by device name: the shipped published phone models and this host's CPU model."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

from latency_models.artifact import SUFFIX, load

# (device, scale) -> shipped file under latency_models/artifacts/
PUBLISHED: dict[tuple[str, int], str] = {
    ("s21-gpu", 2): "s21_gpu_wdsr_b_x2.hwlat",
    ("s10-gpu", 2): "s10_gpu_wdsr_b_x2.hwlat",
    ("s10-dsp", 2): "s10_dsp_wdsr_b_x2.hwlat",
    ("s10-dsp", 4): "s10_dsp_wdsr_b_x4.hwlat",
}
# Short names: a phone alone means its mobile GPU.
ALIASES = {"s21": "s21-gpu", "s10": "s10-gpu", "galaxy-s21": "s21-gpu", "galaxy-s10": "s10-gpu"}


class NoLatencyDataError(ValueError):
    """No timings or predictor exist for the requested device (and scale)."""


def _collect_hint(device: str) -> str:
    return (
        "To get a predictor for it, collect timings on that device and fit one: "
        f"`python -m latency_models collect --device {device} --out timings.jsonl` then "
        "`python -m latency_models fit timings.jsonl --out my_device.hwlat`, and load it with "
        "latency_models.load('my_device.hwlat')."
    )


def canonical_device(device: str) -> str:
    name = device.strip().lower().replace("_", "-").replace(" ", "-")
    return ALIASES.get(name, name)


def artifacts_dir() -> Path:
    """Directory of the artefacts shipped with the package."""
    return Path(str(importlib.resources.files("latency_models") / "artifacts"))


def load_published(device: str, scale: int) -> Any:
    """The shipped published block speed model for ``device`` (e.g. "s21", "s10-dsp") at x``scale``.

    Raises :class:`NoLatencyDataError` when none is shipped for that pair.
    """
    key = (canonical_device(device), int(scale))
    if key not in PUBLISHED:
        available = ", ".join(f"({d!r}, {s})" for d, s in sorted(PUBLISHED))
        raise NoLatencyDataError(
            f"no published latency model for device {device!r} at x{scale}; shipped: {available}. "
            + _collect_hint(key[0])
        )
    return load(artifacts_dir() / PUBLISHED[key])


def cache_dir() -> Path:
    """``$HWNAS_CACHE/latency`` or ``~/.cache/hwnas/latency``."""
    root = os.environ.get("HWNAS_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "hwnas"
    return base / "latency"


def host_predictor_path(threads: int, fingerprint: str | None = None) -> Path:
    if fingerprint is None:
        from latency_models.hostinfo import host_info  # measurement half

        fingerprint = str(host_info()["fingerprint"])
    return cache_dir() / f"{fingerprint}-t{threads}{SUFFIX}"


def for_device(device: str, threads: int = 1, *, quick: bool = False, scale: int = 2,
               progress: bool = True, seed: int = 0, clock: str = "wall") -> Any:
    """A predictor for ``device``.

    ``"cpu"``: this host's torch-cpu predictor at ``threads`` threads, read from the cache
    (see :func:`cache_dir`) or, on first use, collected (progress shown) and fitted, then cached.
    ``quick=True`` collects a small training set (for tests), cached under its own name;
    ``clock="thread_cpu"`` (1 thread) times by thread CPU time, for busy shared hosts.
    A phone name (``"s21"``, ``"s10-dsp"``) returns the shipped published model at x``scale``.
    """
    name = canonical_device(device)
    if name in ("cpu", "torch-cpu", "host"):
        path = host_predictor_path(threads)
        if quick or clock != "wall":
            path = path.with_name(path.stem + ("-quick" if quick else "") + ("" if clock == "wall" else f"-{clock}")
                                  + SUFFIX)
        if path.is_file():
            return load(path)
        from latency_models.zoo import build_host_predictor

        predictor = build_host_predictor(threads=threads, quick=quick, progress=progress, seed=seed, clock=clock)
        predictor.save(path)
        return predictor
    if any(d == name for d, _ in PUBLISHED):
        return load_published(name, scale)
    known = sorted({"cpu"} | {d for d, _ in PUBLISHED} | set(ALIASES))
    raise NoLatencyDataError(f"no latency data for device {device!r} (known: {known}). " + _collect_hint(name))
