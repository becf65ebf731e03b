"""The single-file predictor artefact (``.hwlat``): a zip of a JSON manifest plus payload.

Layout::

    manifest.json      schema, schema_version, predictor kind, device, backend, threads, host,
                       library versions, feature schema, n samples, held-out metrics,
                       provenance, what is not modelled
    *.onnx             sklearn regressors converted with skl2onnx (read with onnxruntime)
    *.npz              float arrays, read with ``allow_pickle=False``

Nothing is pickled. Reading needs only the standard library, numpy and (for ONNX members)
onnxruntime, so an artefact loads where scikit-learn is not installed.
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "hwnas.latency_predictor"
SCHEMA_VERSION = 1
SUFFIX = ".hwlat"
MANIFEST = "manifest.json"

# kind -> loader(manifest, members) -> predictor. Kinds are part of the file format.
_LOADERS: dict[str, Callable[[dict[str, Any], dict[str, bytes]], Any]] = {}


class LatencyArtifactError(ValueError):
    """A predictor file is missing, corrupt, foreign or written by a newer package."""


def register_kind(kind: str) -> Callable:
    """Class decorator: ``cls.from_artifact(manifest, members)`` loads files of ``kind``."""

    def wrap(cls: type) -> type:
        if kind in _LOADERS and _LOADERS[kind] is not cls.from_artifact:  # type: ignore[attr-defined]
            raise ValueError(f"predictor kind {kind!r} registered twice")
        _LOADERS[kind] = cls.from_artifact  # type: ignore[attr-defined]
        cls.kind = kind  # type: ignore[attr-defined]
        return cls

    return wrap


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a predictor's numbers (those importable here)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("numpy", "torch", "scikit-learn", "skl2onnx", "onnxruntime", "onnx", "timm", "hwnas"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def npz_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_artifact(path: str | Path, manifest: dict[str, Any], members: dict[str, bytes]) -> Path:
    """Write ``manifest`` (schema fields added here) and payload ``members`` into one zip file."""
    path = Path(path)
    if MANIFEST in members:
        raise ValueError(f"payload member may not be called {MANIFEST}")
    doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **manifest}
    doc["payload"] = sorted(members)
    text = json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, text)
        for name in sorted(members):
            zf.writestr(name, members[name])
    tmp.replace(path)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_artifact(path: str | Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Return ``(manifest, members)``; raise :class:`LatencyArtifactError` naming problem and fix."""
    path = Path(path)
    if not path.is_file():
        raise LatencyArtifactError(
            f"{path}: no such predictor file. Export one with `python -m latency_models export` "
            "or use latency_models.load_published(device, scale) for a shipped one."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if MANIFEST not in names:
                raise LatencyArtifactError(
                    f"{path}: a zip file without {MANIFEST}, so not a latency predictor written by "
                    "this package; export one with predictor.save(path)."
                )
            manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
            members = {n: zf.read(n) for n in names if n != MANIFEST}
    except zipfile.BadZipFile as err:
        raise LatencyArtifactError(
            f"{path}: not a latency predictor file (not a zip archive: {err}). The file is corrupt "
            "or of another format; re-export it with predictor.save(path) or re-download it."
        ) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LatencyArtifactError(f"{path}: {MANIFEST} is not valid JSON ({err}); re-export the file.") from err
    except (zipfile.LargeZipFile, OSError, EOFError) as err:
        raise LatencyArtifactError(f"{path}: cannot read the archive ({err}); the file is corrupt, re-export it.") from err
    _check_manifest(path, manifest, members)
    return manifest, members


def _check_manifest(path: Path, manifest: Any, members: dict[str, bytes]) -> None:
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        found = manifest.get("schema") if isinstance(manifest, dict) else type(manifest).__name__
        raise LatencyArtifactError(
            f"{path}: foreign file: schema {found!r}, expected {SCHEMA!r}. Only predictors written by "
            "latency_models (predictor.save) can be loaded."
        )
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise LatencyArtifactError(f"{path}: schema_version {version!r} is not an integer; the file is corrupt.")
    if version > SCHEMA_VERSION:
        raise LatencyArtifactError(
            f"{path}: written with predictor schema version {version}, newer than this package reads "
            f"({SCHEMA_VERSION}). Upgrade hwnas (pip install -U hwnas) to load it."
        )
    missing = [m for m in manifest.get("payload", []) if m not in members]
    if missing:
        raise LatencyArtifactError(f"{path}: payload members {missing} are missing; the file is truncated or corrupt.")


def load(path: str | Path) -> Any:
    """Load any predictor written by ``predictor.save(path)``.

    Needs numpy and onnxruntime only (plus torch for the differentiable helpers).
    """
    import latency_models.predictors  # noqa: F401  (registers the kinds)

    manifest, members = read_artifact(path)
    kind = manifest.get("predictor", {}).get("kind") if isinstance(manifest.get("predictor"), dict) else None
    if kind not in _LOADERS:
        raise LatencyArtifactError(
            f"{path}: unknown predictor kind {kind!r} (known: {sorted(_LOADERS)}); it was written by a "
            "newer or different version of hwnas. Upgrade the package."
        )
    try:
        return _LOADERS[kind](manifest, members)
    except (KeyError, ValueError, TypeError) as err:
        if isinstance(err, LatencyArtifactError):
            raise
        raise LatencyArtifactError(f"{path}: {kind} payload is corrupt ({type(err).__name__}: {err}); re-export it.") from err
