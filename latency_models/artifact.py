"""The single-file predictor artefact (``.hwlat``): a zip of a JSON manifest plus payload.

Layout::

    manifest.json      schema, schema_version, predictor kind, device, backend, threads, host,
                       library versions, feature schema, n samples, held-out metrics,
                       provenance, what is not modelled
    *.npz              float arrays, read with ``allow_pickle=False``
    *.onnx             ONNX graphs (read with onnxruntime), all weights inside: no external data

Members are inflated in chunks and refused past :data:`MAX_MEMBER_BYTES` (and
:data:`MAX_TOTAL_BYTES` for the file), so a small hostile file cannot take memory.

Nothing is pickled. Reading needs only the standard library, numpy and (for ONNX members)
onnxruntime, so an artefact loads where scikit-learn is not installed.
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "hwnas.latency_predictor"
SCHEMA_VERSION = 1
SUFFIX = ".hwlat"
MANIFEST = "manifest.json"
# Read limits, enforced while inflating (a 3 MB file may hold a 512 MB member); written into each
# manifest ("limits") so other readers know what a conforming file holds.
MAX_MEMBER_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 128 * 2**20
MEMBER_SUFFIXES = (".npz", ".onnx", ".json")

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
    for dist in ("numpy", "scipy", "torch", "onnxruntime", "onnx", "timm", "hwnas"):
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
    doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **manifest,
           "limits": {"max_member_bytes": MAX_MEMBER_BYTES, "max_total_bytes": MAX_TOTAL_BYTES}}
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


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """One member's bytes, inflated in chunks and refused past :data:`MAX_MEMBER_BYTES` or the
    file's remaining ``budget``: the sizes a zip declares can lie, the inflated stream cannot."""
    cap = min(MAX_MEMBER_BYTES, budget)
    if info.file_size > cap:
        raise _TooLarge(info.filename, info.file_size, cap)
    chunks, size = [], 0
    with zf.open(info) as stream:
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            if size > cap:
                raise _TooLarge(info.filename, size, cap)
            chunks.append(chunk)
    return b"".join(chunks)


class _TooLarge(Exception):
    def __init__(self, name: str, size: int, cap: int) -> None:
        super().__init__(f"member {name} inflates to more than {cap / 2**20:.0f} MiB ({size / 2**20:.0f} MiB "
                         "read or declared), the most a predictor file may hold")


def read_artifact(path: str | Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Return ``(manifest, members)``; raise :class:`LatencyArtifactError` naming problem and fix.

    Every way a file can be broken (not a zip, bad CRC, corrupt deflate stream, truncated,
    encrypted, members too large to inflate, a manifest of the wrong shape) ends here.
    """
    path = Path(path)
    if not path.is_file():
        raise LatencyArtifactError(
            f"{path}: no such predictor file. Export one with `python -m latency_models export` "
            "or use latency_models.load_published(device, scale) for a shipped one."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if MANIFEST not in infos:
                raise LatencyArtifactError(
                    f"{path}: a zip file without {MANIFEST}, so not a latency predictor written by "
                    "this package; export one with predictor.save(path)."
                )
            budget = MAX_TOTAL_BYTES
            members: dict[str, bytes] = {}
            for name, info in infos.items():
                members[name] = _read_member(zf, info, budget)
                budget -= len(members[name])
            manifest = json.loads(members.pop(MANIFEST).decode("utf-8"))
    except LatencyArtifactError:
        raise
    except _TooLarge as err:
        raise LatencyArtifactError(f"{path}: {err}; the file is corrupt or hostile, not loaded.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LatencyArtifactError(f"{path}: {MANIFEST} is not valid JSON ({err}); re-export the file.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
            ValueError) as err:
        raise LatencyArtifactError(
            f"{path}: not a readable predictor file ({type(err).__name__}: {err}); it is corrupt, truncated or of "
            "another format. Re-export it with predictor.save(path) or copy it again."
        ) from None
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
    payload = manifest.get("payload", [])
    if not isinstance(payload, list) or not all(isinstance(m, str) for m in payload):
        raise LatencyArtifactError(f"{path}: manifest 'payload' is {type(payload).__name__}, not a list of member "
                                   "names; the file is corrupt.")
    if not isinstance(manifest.get("predictor", {}), dict):
        raise LatencyArtifactError(f"{path}: manifest 'predictor' is not an object; the file is corrupt.")
    missing = [m for m in payload if m not in members]
    if missing:
        raise LatencyArtifactError(f"{path}: payload members {missing} are missing; the file is truncated or corrupt.")
    foreign = sorted(m for m in members if not m.endswith(MEMBER_SUFFIXES))
    if foreign:
        raise LatencyArtifactError(f"{path}: members {foreign} are of no type a predictor file holds "
                                   f"({', '.join(MEMBER_SUFFIXES)}); not loaded.")
    for name in (m for m in members if m.endswith(".onnx")):
        _check_onnx(path, name, members[name])


def _check_onnx(path: Path, name: str, blob: bytes) -> None:
    """An ONNX member must parse and hold all its weights: external data would make
    onnxruntime open files outside the artefact."""
    try:
        import onnx
    except ImportError:  # the reading side may lack onnx; onnxruntime then sees no model folder
        return
    try:
        model = onnx.load_model_from_string(blob)  # bytes: external data is never resolved here
    except Exception as err:  # protobuf raises its own DecodeError
        raise LatencyArtifactError(f"{path}: member {name} is not a valid ONNX model ({err}); re-export it.") from None
    from onnx.external_data_helper import uses_external_data

    tensors = list(onnx.external_data_helper._get_all_tensors(model))
    if any(uses_external_data(t) for t in tensors):
        raise LatencyArtifactError(f"{path}: member {name} references external data files; a predictor file must "
                                   "hold all its weights. Not loaded.")


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
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, OSError, zipfile.BadZipFile,
            zlib.error, EOFError) as err:
        if isinstance(err, LatencyArtifactError):
            raise
        raise LatencyArtifactError(f"{path}: {kind} payload is corrupt ({type(err).__name__}: {err}); re-export it.") from err
