"""Measured-latency datasets: one row per measurement, appended and flushed as measured.

File formats, chosen by suffix (both one physical line per row, so a killed collection loses at
most the row being written, and both start with a metadata header):

``.jsonl``  line 1: ``{"schema": "hwnas.latency_dataset", "version": 1, "meta": {...}}``;
            every further line is one :meth:`LatencyRecord.to_dict`.
``.csv``    line 1: ``# hwnas.latency_dataset v1 {meta as JSON}``; line 2: the column names
            (:data:`CSV_COLUMNS`); then one row per record, with ``input_shape``, ``times_ms``,
            ``ops``, ``host`` and ``extra`` as JSON strings.

``meta`` records backend, threads, the full host description and fingerprint, library versions,
the protocol and whatever the caller adds. A row holds the model id, its op list (JSON of
``spaces.ops.Op.to_dict()`` records, or null when not traced), the latency statistics (ms),
backend, threads, host and ``role`` ("model", or "reference" for the drift probe).

:func:`open_dataset` creates a file or reopens one to append (checking its header matches, and
cutting off a torn last line left by a kill); :func:`read_dataset` returns the header and typed
records, and raises :class:`DatasetError` naming the line when the file is corrupt.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from spaces.ops import Op

SCHEMA = "hwnas.latency_dataset"
VERSION = 1
SUFFIXES = (".jsonl", ".csv")
CSV_COLUMNS = (
    "model_id", "role", "input_shape", "median_ms", "iqr_ms", "p10_ms", "p90_ms", "n_repeats",
    "times_ms", "stable", "backend", "threads", "host_fingerprint", "measured_at", "ops", "host", "extra",
)
_JSON_COLUMNS = ("input_shape", "times_ms", "ops", "host", "extra")
# Header keys that must agree when a collection appends to an existing file.
MATCH_KEYS = ("backend", "threads", "host_fingerprint")


class DatasetError(ValueError):
    """A dataset file is corrupt, of another schema, or incompatible with the collection."""


@dataclass(frozen=True)
class LatencyRecord:
    """One measured model. Times in ms; ``ops`` is None when the model was not traced."""

    model_id: str
    input_shape: tuple[int, ...]
    median_ms: float
    iqr_ms: float
    p10_ms: float
    p90_ms: float
    n_repeats: int
    times_ms: tuple[float, ...]
    backend: str
    threads: int
    host: dict[str, Any]
    ops: tuple[Op, ...] | None = None
    role: str = "model"
    stable: bool = True
    measured_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host_fingerprint(self) -> str:
        return str(self.host.get("fingerprint", ""))

    @staticmethod
    def from_measurement(model_id: str, measurement: Any, ops: Sequence[Op] | None = None,
                         role: str = "model") -> LatencyRecord:
        """From a :class:`latency_models.measure.Measurement` (timestamped now, UTC)."""
        m = measurement
        return LatencyRecord(
            model_id=model_id, input_shape=tuple(m.input_shape), median_ms=m.median_ms, iqr_ms=m.iqr_ms,
            p10_ms=m.p10_ms, p90_ms=m.p90_ms, n_repeats=m.n_repeats, times_ms=tuple(m.times_ms),
            backend=m.backend, threads=m.threads, host=dict(m.host),
            ops=None if ops is None else tuple(ops), role=role, stable=m.stable,
            measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), extra=dict(m.extra),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id, "role": self.role, "input_shape": list(self.input_shape),
            "median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "p10_ms": self.p10_ms, "p90_ms": self.p90_ms,
            "n_repeats": self.n_repeats, "times_ms": list(self.times_ms), "stable": self.stable,
            "backend": self.backend, "threads": self.threads, "host_fingerprint": self.host_fingerprint,
            "measured_at": self.measured_at,
            "ops": None if self.ops is None else [op.to_dict() for op in self.ops],
            "host": self.host, "extra": self.extra,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> LatencyRecord:
        ops = data.get("ops")
        return LatencyRecord(
            model_id=str(data["model_id"]), role=str(data.get("role", "model")),
            input_shape=tuple(int(d) for d in data["input_shape"]),
            median_ms=float(data["median_ms"]), iqr_ms=float(data["iqr_ms"]),
            p10_ms=float(data["p10_ms"]), p90_ms=float(data["p90_ms"]), n_repeats=int(data["n_repeats"]),
            times_ms=tuple(float(t) for t in data["times_ms"]), stable=_as_bool(data.get("stable", True)),
            backend=str(data["backend"]), threads=int(data["threads"]), host=dict(data.get("host") or {}),
            measured_at=str(data.get("measured_at", "")),
            ops=None if ops is None else tuple(Op.from_dict(op) for op in ops),
            extra=dict(data.get("extra") or {}),
        )


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value not in ("True", "False", "true", "false"):
            raise ValueError(f"not a boolean: {value!r}")
        return value in ("True", "true")
    return bool(value)


def _suffix(path: Path) -> str:
    if path.suffix not in SUFFIXES:
        raise DatasetError(f"{path}: unsupported dataset suffix {path.suffix!r}; use one of {SUFFIXES}")
    return path.suffix


# --------------------------------------------------------------------------- encoding

def _header_lines(suffix: str, meta: Mapping[str, Any]) -> str:
    if suffix == ".jsonl":
        return json.dumps({"schema": SCHEMA, "version": VERSION, "meta": dict(meta)}, sort_keys=True) + "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(CSV_COLUMNS)
    return f"# {SCHEMA} v{VERSION} {json.dumps(dict(meta), sort_keys=True)}\n" + buffer.getvalue()


def _encode(suffix: str, record: LatencyRecord) -> str:
    data = record.to_dict()
    if suffix == ".jsonl":
        return json.dumps(data) + "\n"
    row = [json.dumps(data[c]) if c in _JSON_COLUMNS else data[c] for c in CSV_COLUMNS]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def _parse_header(path: Path, suffix: str, lines: list[str]) -> tuple[dict[str, Any], int]:
    """(meta, number of header lines)."""
    if not lines:
        raise DatasetError(f"{path}: empty file, not a {SCHEMA} dataset")
    first = lines[0]
    try:
        if suffix == ".jsonl":
            head = json.loads(first)
            ok = isinstance(head, dict) and head.get("schema") == SCHEMA
            version, meta, n_header = (head.get("version"), head.get("meta"), 1) if ok else (None, None, 1)
        else:
            prefix = f"# {SCHEMA} v"
            ok = first.startswith(prefix)
            version_text, _, meta_text = first[len(prefix):].partition(" ") if ok else ("", "", "")
            version, meta, n_header = (int(version_text), json.loads(meta_text), 2) if ok else (None, None, 2)
            if ok and (len(lines) < 2 or next(csv.reader([lines[1]])) != list(CSV_COLUMNS)):
                raise DatasetError(f"{path}: line 2 is not the expected CSV column row {list(CSV_COLUMNS)}")
    except (ValueError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: line 1 is not a valid {SCHEMA} header ({err})") from err
    if not ok:
        raise DatasetError(f"{path}: line 1 is not a {SCHEMA} header; is this a latency dataset?")
    if version != VERSION:
        raise DatasetError(f"{path}: {SCHEMA} version {version} not supported (this code reads {VERSION})")
    return dict(meta or {}), n_header


def _decode(path: Path, suffix: str, line: str, line_no: int) -> LatencyRecord:
    try:
        if suffix == ".jsonl":
            data = json.loads(line)
        else:
            cells = next(csv.reader([line]))
            if len(cells) != len(CSV_COLUMNS):
                raise ValueError(f"{len(cells)} cells, expected {len(CSV_COLUMNS)}")
            data = {c: json.loads(v) if c in _JSON_COLUMNS else v for c, v in zip(CSV_COLUMNS, cells, strict=True)}
        return LatencyRecord.from_dict(data)
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{path}: line {line_no} is not a valid record ({type(err).__name__}: {err})") from err


# --------------------------------------------------------------------------- reading and writing

def read_dataset(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[LatencyRecord]]:
    """The header ``meta`` and all records of a dataset file, in file order."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    meta, n_header = _parse_header(path, suffix, lines)
    records = []
    for line_no, line in enumerate(lines[n_header:], start=n_header + 1):
        if not line.strip():
            continue
        if line_no == len(lines) and not text.endswith("\n"):
            raise DatasetError(
                f"{path}: line {line_no} is cut short (a collection was killed while writing it); "
                "open_dataset() drops it when the collection resumes"
            )
        records.append(_decode(path, suffix, line, line_no))
    return meta, records


class DatasetWriter:
    """Appends records to one dataset file; each :meth:`append` is flushed and fsynced."""

    def __init__(self, path: Path, meta: dict[str, Any], records: list[LatencyRecord]) -> None:
        self.path = path
        self.meta = meta
        self.records = records
        self._suffix = _suffix(path)

    def done_ids(self, role: str = "model") -> set[str]:
        """Model ids already in the file (with ``role``)."""
        return {r.model_id for r in self.records if r.role == role}

    def append(self, record: LatencyRecord) -> None:
        line = _encode(self._suffix, record)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)


def _drop_torn_tail(path: Path) -> None:
    """A kill during a write can leave a last line without its newline: cut it off."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        warnings.warn(f"{path}: dropping a torn last line ({len(data) - keep} bytes) left by an interrupted write",
                      stacklevel=3)
        with path.open("r+b") as handle:
            handle.truncate(keep)


def open_dataset(path: str | os.PathLike[str], meta: Mapping[str, Any]) -> DatasetWriter:
    """Create ``path`` with header ``meta``, or reopen it to append.

    Reopening checks that the existing header agrees with ``meta`` on :data:`MATCH_KEYS`
    (backend, threads, host fingerprint), so one file never mixes machines or settings.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_header_lines(suffix, meta), encoding="utf-8")
        return DatasetWriter(path, dict(meta), [])
    _drop_torn_tail(path)
    existing, records = read_dataset(path)
    clashes = {k: (existing.get(k), meta.get(k)) for k in MATCH_KEYS if k in meta and existing.get(k) != meta.get(k)}
    if clashes:
        detail = ", ".join(f"{k}: file has {a!r}, collection has {b!r}" for k, (a, b) in clashes.items())
        raise DatasetError(f"{path}: cannot append, the file was collected with other settings ({detail}); "
                           "use another path")
    return DatasetWriter(path, existing, records)
