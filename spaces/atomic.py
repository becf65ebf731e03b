"""Atomic file writes: a temporary file in the same folder, flushed to disk, then renamed over
the target. A kill or a full disk mid-write leaves the previous file (or none), never a torn one.

Here because every package writes files and ``spaces`` is the one package all of them may import.

    write_text_atomic(run_dir / "result.json", text)
    with atomic_path(run_dir / "model.pt") as tmp:   # for writers that want a path (torch.save, savefig)
        torch.save(state, tmp)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so format-by-suffix writers work);
    on success it is fsynced and renamed onto ``path``, on any error removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))
