"""Predictors by device name: the shipped published phone models and this host's CPU model."""

from __future__ import annotations

import contextlib
import importlib.resources
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from latency_models.artifact import SUFFIX, LatencyArtifactError, load

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


def host_predictor_path(threads: int, fingerprint: str | None = None, quick: bool = False) -> Path:
    """Cache file of this host's predictor: keyed by host, threads, package and basis version, so
    an upgrade that changes what a prediction means fits afresh instead of reading a stale file."""
    from latency_models.heap import heap_wanted
    from latency_models.hostinfo import package_version
    from latency_models.predictors.additive import BASIS_VERSION

    if fingerprint is None:
        from latency_models.hostinfo import host_info  # measurement half

        fingerprint = str(host_info()["fingerprint"])
    tag = (f"hwnas{package_version('hwnas')}-basis{BASIS_VERSION}-heap{heap_wanted()}"
           + ("-quick" if quick else ""))
    return cache_dir() / f"{fingerprint}-t{threads}-{tag}{SUFFIX}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path``: a second process waits, then finds the cached file."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def for_device(device: str, threads: int = 1, *, quick: bool = False, scale: int = 2,
               progress: bool = True, seed: int = 0) -> Any:
    """A predictor for ``device``.

    ``"cpu"``: this host's torch-cpu predictor at ``threads`` threads, read from the cache
    (see :func:`cache_dir`) or, on first use, timed in interleaved rounds over a zoo spanning the
    tasks' shapes and fitted (progress shown, held-out accuracy printed beside the host's
    re-measured agreement, a warning naming the cause when poor), then cached. Two processes
    asking at once do not both collect: the second waits for the first's file.
    ``quick=True`` times a small zoo (for tests), cached under its own name.
    A phone name (``"s21"``, ``"s10-dsp"``) returns the shipped published model at x``scale``.
    """
    name = canonical_device(device)
    if name in ("cpu", "torch-cpu", "host"):
        path = host_predictor_path(threads, quick=quick)
        with _locked(path):
            if path.is_file():
                try:
                    return load(path)
                except LatencyArtifactError as err:  # torn or stale cache: rebuild, never fatal
                    print(f"latency_models: cached predictor does not load ({err}); collecting it again", flush=True)
            from latency_models.host import build_host_predictor

            predictor = build_host_predictor(threads=threads, quick=quick, progress=progress, seed=seed)
            predictor.save(path)
            return predictor
    if any(d == name for d, _ in PUBLISHED):
        return load_published(name, scale)
    known = sorted({"cpu"} | {d for d, _ in PUBLISHED} | set(ALIASES))
    raise NoLatencyDataError(f"no latency data for device {device!r} (known: {known}). " + _collect_hint(name))
