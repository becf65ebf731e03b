"""Describe the machine a latency was measured on, and give it a stable fingerprint.

:func:`host_info` returns a plain dict (JSON-serialisable) with the hostname, CPU model, core
counts, OS, Python and library versions, and ``fingerprint``. :func:`host_fingerprint` hashes only
what decides latency and survives reboots (CPU model, cores usable, architecture, OS family,
torch / onnxruntime versions) and leaves out the hostname, so two identical machines share
cached predictors and one machine keeps its key across kernel updates.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

from latency_models.heap import heap_mode

# Keys hashed into the fingerprint. Part of the cache-key format: add with care, never rename.
FINGERPRINT_KEYS: tuple[str, ...] = (
    "kind",
    "cpu_model",
    "cpu_count",
    "cores_usable",
    "machine",
    "system",
    "torch",
    "onnxruntime",
)


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """CPU model name from /proc/cpuinfo on Linux, else ``platform.processor()``."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cores_usable() -> int:
    """Cores this process may run on (the affinity mask), which can be fewer than the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_fingerprint(info: dict[str, Any]) -> str:
    """16-hex-digit SHA-256 of the :data:`FINGERPRINT_KEYS` of ``info`` (missing keys hash as None)."""
    stable = {key: info.get(key) for key in FINGERPRINT_KEYS}
    blob = json.dumps(stable, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def host_info() -> dict[str, Any]:
    """Describe this machine (the host running torch / onnxruntime locally)."""
    info: dict[str, Any] = {
        "kind": "local",
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        "cores_usable": cores_usable(),
        "machine": platform.machine(),
        "system": platform.system(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "onnxruntime": package_version("onnxruntime"),
        "numpy": package_version("numpy"),
        "heap": heap_mode(),
    }
    info["fingerprint"] = host_fingerprint(info)
    return info
