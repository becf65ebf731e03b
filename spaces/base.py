"""The architecture protocol, its registry and its exchange format (versioned JSON, no pickle)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from spaces.atomic import write_text_atomic

ARCH_SCHEMA = "hwnas.arch"
ARCH_SCHEMA_VERSION = 1


class ArchError(ValueError):
    """An architecture description is malformed or lies outside its space."""


@runtime_checkable
class Architecture(Protocol):
    """A frozen, serialisable description of one network.

    ``family`` is its registry name; ``to_dict`` / ``from_dict`` round-trip it exactly and
    ``key`` is a stable short hash of that dict (same architecture, same key, in any process).
    """

    family: str

    def to_dict(self) -> dict[str, Any]: ...

    @property
    def key(self) -> str: ...


class Suggester(Protocol):
    """What a space needs to sample: an ``optuna.trial.Trial`` satisfies it, and so does
    :class:`spaces.sampling.RandomSuggester` for search-free sampling."""

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


_FAMILIES: dict[str, type] = {}
T = TypeVar("T", bound=type)


def register_arch(cls: T) -> T:
    """Class decorator: make ``cls`` loadable by :func:`arch_from_dict` under ``cls.family``."""
    name = cls.family  # type: ignore[attr-defined]
    if name in _FAMILIES and _FAMILIES[name] is not cls:
        raise ValueError(f"architecture family {name!r} registered twice")
    _FAMILIES[name] = cls
    return cls


def registered_families() -> dict[str, type]:
    return dict(_FAMILIES)


def stable_key(data: dict[str, Any]) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


def arch_from_dict(data: dict[str, Any]) -> Any:
    """Rebuild any registered architecture from its ``to_dict`` form."""
    if not isinstance(data, dict) or "family" not in data:
        raise ArchError(
            "architecture dict has no 'family' key; expected the output of arch.to_dict() "
            f"(families: {sorted(_FAMILIES)})"
        )
    family = data["family"]
    if family not in _FAMILIES:
        raise ArchError(f"unknown architecture family {family!r}; known: {sorted(_FAMILIES)}")
    return _FAMILIES[family].from_dict(data)


def save_arch(arch: Architecture, path: str | Path, **extra: Any) -> Path:
    """Write ``arch`` as ``arch.json``: a manifest (schema, version, key) plus the description."""
    path = Path(path)
    doc = {
        "schema": ARCH_SCHEMA,
        "schema_version": ARCH_SCHEMA_VERSION,
        "key": arch.key,
        "arch": arch.to_dict(),
        **extra,
    }
    write_text_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def load_arch(path: str | Path) -> Any:
    """Read a file written by :func:`save_arch`; foreign, newer or corrupt files raise ArchError."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ArchError(f"{path}: no such architecture file") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArchError(f"{path}: not a JSON architecture file ({err})") from err
    if not isinstance(doc, dict) or doc.get("schema") != ARCH_SCHEMA:
        raise ArchError(f"{path}: not an architecture file (schema {ARCH_SCHEMA!r} expected)")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > ARCH_SCHEMA_VERSION:
        raise ArchError(
            f"{path}: architecture schema version {version!r} is newer than this package reads "
            f"({ARCH_SCHEMA_VERSION}); upgrade the package"
        )
    arch = arch_from_dict(doc["arch"])
    if doc.get("key") not in (None, arch.key):
        raise ArchError(f"{path}: key {doc['key']} does not match its description ({arch.key})")
    return arch
