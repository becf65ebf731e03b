"""Background load for operating points of ``kind: load``: what a device goes through when other
work shares it, made by the measurement itself.

Each load is one child process (plain Python and numpy, no torch) that works while it is switched
on and sleeps in ``signal.pause`` while it is off; switching is a signal, so points under
different loads can share one interleaved schedule (the first run after a switch pays the
change; the timing's repeats and median absorb it). Loads:

- ``idle``: none running;
- ``memory``: one process streaming a 64 MiB array copy, taking the memory bandwidth that
  neighbours take from a shared VM;
- ``cpu``: one process spinning on a core (compute only, in cache).

Every child is stopped when the run ends, also on error (``atexit``), and dies with its parent.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys

LOADS = ("idle", "memory", "cpu")

_WORKER = r"""
import os, signal, sys
import numpy as np
on = False
def switch(sig, _):
    global on
    on = sig == signal.SIGUSR1
signal.signal(signal.SIGUSR1, switch)
signal.signal(signal.SIGUSR2, switch)
parent = os.getppid()
try:  # die with the parent even while paused (Linux: PR_SET_PDEATHSIG)
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
except Exception:
    pass
kind = sys.argv[1]
src = np.ones(16 * 2**20, np.float32)
dst = np.empty_like(src)
print("ready", flush=True)
while os.getppid() == parent:
    if not on:
        signal.pause()
    elif kind == "memory":
        np.copyto(dst, src)
    else:
        x = 1.0
        for _ in range(20000):
            x = x * 1.0000001 + 1e-9
"""

_children: dict[str, subprocess.Popen] = {}
_active: str | None = None


def _start(kind: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, kind], stdout=subprocess.PIPE, text=True)
    if proc.stdout is None or proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the {kind} load process did not start")
    return proc


def apply_load(kind: str) -> None:
    """Run this process's work under ``kind`` (one of :data:`LOADS`) from now on."""
    global _active
    if kind not in LOADS:
        raise ValueError(f"load {kind!r} is not one of {LOADS}")
    if kind == _active:
        return
    if kind != "idle" and kind not in _children:
        _children[kind] = _start(kind)
    for name, proc in _children.items():
        os.kill(proc.pid, signal.SIGUSR1 if name == kind else signal.SIGUSR2)
    _active = kind


def stop_loads() -> None:
    """Stop every load process (idempotent)."""
    global _active
    for proc in _children.values():
        proc.kill()
        proc.wait()
    _children.clear()
    _active = None


atexit.register(stop_loads)
