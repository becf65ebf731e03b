"""Background load for operating points of ``kind: load``: what a device goes through when other
work shares it, made by the measurement itself.

Each load is one child process (plain Python and numpy, no torch) that works while it is switched
on and sleeps in ``signal.pause`` while it is off; switching is a signal, so points under
different loads can share one interleaved schedule (the first run after a switch pays the
change; the timing's repeats and median absorb it). Loads:

- ``idle``: none running;
- ``memory``: one process streaming a 64 MiB array copy, taking the memory bandwidth that
  neighbours take from a shared VM;
- ``cpu``: one process computing on a core (in cache) for ``duty`` of every 10 ms (1: always).
  Measured here at 2 torch threads (WDSR-B at 180x320, 3 and 6 blocks): duty 0.25 slowed them
  1.27x / 1.22x, 0.5 1.49x / 1.45x, 1.0 5.3x / 2.2x (a core never free stalls every barrier of
  the small network).

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
import os, signal, sys, time
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
kind, duty, period = sys.argv[1], float(sys.argv[2]), 0.01
src = np.ones(16 * 2**20, np.float32)
dst = np.empty_like(src)
print("ready", flush=True)
while os.getppid() == parent:
    if not on:
        signal.pause()
    elif kind == "memory":
        np.copyto(dst, src)
    else:
        t = time.perf_counter()
        while time.perf_counter() - t < duty * period:
            pass
        if duty < 1:
            time.sleep((1 - duty) * period)
"""

_children: dict[tuple[str, float], subprocess.Popen] = {}
_active: tuple[str, float] | None = None


def _start(kind: str, duty: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, kind, str(duty)], stdout=subprocess.PIPE, text=True)
    if proc.stdout is None or proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the {kind} load process did not start")
    return proc


def apply_load(kind: str, duty: float = 1.0) -> None:
    """Run this process's work under ``kind`` (one of :data:`LOADS`; ``duty``: the share of time a
    ``cpu`` load computes) from now on."""
    global _active
    check_load(kind, duty)
    key = (kind, float(duty) if kind == "cpu" else 1.0)
    if key == _active:
        return
    if kind != "idle" and key not in _children:
        _children[key] = _start(*key)
    for k, proc in _children.items():
        os.kill(proc.pid, signal.SIGUSR1 if k == key else signal.SIGUSR2)
    _active = key


def check_load(kind: str, duty: float = 1.0) -> None:
    if kind not in LOADS:
        raise ValueError(f"load {kind!r} is not one of {LOADS}")
    if not 0 < duty <= 1:
        raise ValueError(f"load duty={duty!r} must be in (0, 1]: the share of each 10 ms the load computes")


def stop_loads() -> None:
    """Stop every load process (idempotent)."""
    global _active
    for proc in _children.values():
        proc.kill()
        proc.wait()
    _children.clear()
    _active = None


atexit.register(stop_loads)
