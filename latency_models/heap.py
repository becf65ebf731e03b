"""Keep the C heap while timing, so that a forward pass reuses its memory instead of faulting in fresh pages.

glibc's malloc serves large blocks (above a threshold that adapts up to 32 MiB) with fresh
``mmap`` pages and hands the top of the heap back to the OS once enough of it is free. A torch
forward pass on CPU allocates and frees its activations every run, so it then pays one page fault
per 4 KiB of activation, and *which* runs pay depends on what ran before it. Measured on this project's 2-core VM at 2 threads
(``python benchmarks/heap.py``, two passes each): a 3-block WDSR-B at 180x320 took 45-52 ms timed
alone and 16 ms inside an interleaved schedule (another schedule gave the reverse), kept
15.6-17.9 ms in both; a 6-block, 32-channel one took 217-239 ms against 90-95 ms kept, and
978-1024 ms against 429-446 ms at 360x640. Deployed inference does not pay this: TFLite plans one
arena, onnxruntime keeps its own, servers link caching allocators (jemalloc, tcmalloc).

:func:`keep_heap` turns ``mmap`` serving, trimming and per-thread arenas off for the process
(once; it stays so, training included: memory freed is kept for reuse, not returned). Every timing entry point calls
it; the state is recorded with each measurement's host (:func:`heap_mode`). ``HWNAS_HEAP=default``
in the environment leaves the allocator as it is, to reproduce the unkept figures.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

HEAP_ENV = "HWNAS_HEAP"
_M_TRIM_THRESHOLD = -1   # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_NEVER = 2**31 - 1
_mode: str | None = None


def keep_heap() -> str:
    """Keep freed memory in the heap and serve every block from it (glibc); returns :func:`heap_mode`."""
    global _mode
    if _mode is not None:
        return _mode
    if heap_wanted() == "default":
        _mode = "default (HWNAS_HEAP=default)"
        return _mode
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        _mode = "default (no glibc mallopt here)"
        return _mode
    # one arena: worker threads' own arenas would still hand memory back (measured: 2,900 faults
    # per pass of a 59 MB activation with them, 0-16 without)
    kept = all(mallopt(param, value) == 1 for param, value in
               ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_NEVER), (_M_ARENA_MAX, 1)))
    _mode = "kept (glibc: one arena, no mmap blocks, no trim)" if kept else "default (mallopt refused)"
    return _mode


def heap_wanted() -> str:
    """``kept`` or ``default``: what :func:`keep_heap` will do here (a cache key: figures timed
    either way differ)."""
    return "default" if os.environ.get(HEAP_ENV, "kept") == "default" else "kept"


def heap_mode() -> str:
    """How the heap is run: ``kept ...`` once :func:`keep_heap` has run, else ``default``."""
    return _mode or "default"
