"""Background load for operating points of ``kind: load``: what a device goes through when other
work shares it, made by the measurement itself.

Each load is one child process (plain Python and numpy, no torch) that works while it is switched
on and blocks on its command pipe while it is off; a switch is a command on that pipe, answered
once done, so points under different loads can share one interleaved schedule (the first run
after a switch pays the change; the timing's repeats and median absorb it). Loads:

- ``idle``: none running;
- ``memory``: one process streaming a 64 MiB array copy, taking the memory bandwidth that
  neighbours take from a shared VM;
- ``cpu``: one process computing on a core (in cache) for ``duty`` of every 10 ms (1: always).
  In default ``device=cpu`` All-in-One runs (2 torch threads, WDSR-B at 180x320, interleaved)
  duty 0.5 slowed the fixed 6-block network 1.70x and the 16-block template 1.63-1.85x; duty 1
  (the default busy point) the fixed 4-block network 2.18x and the template 2.86x;
  ``python benchmarks/loads.py`` prints every load's slowdown side by side.

Every child is stopped when the run ends, also on error (``atexit``), and exits when its parent
does (its pipe closes).
"""

from __future__ import annotations

import atexit
import subprocess
import sys

LOADS = ("idle", "memory", "cpu")

_WORKER = r"""
import os, select, sys, time
import numpy as np
kind, duty, period = sys.argv[1], float(sys.argv[2]), 0.01
src = np.ones(16 * 2**20, np.float32)
dst = np.empty_like(src)
chunk = 2 * 2**20  # 8 MiB per copy, so that a command waits at most one chunk
on = False
def poll(timeout):
    global on
    if select.select([0], [], [], timeout)[0]:
        cmd = os.read(0, 64)
        if not cmd:
            sys.exit(0)  # the parent closed the pipe: it has stopped the load or died
        on = cmd[-1:] == b"1"
        os.write(1, cmd[-1:])  # the switch is done: acknowledged
os.write(1, b"r")
while True:
    poll(None if not on else 0)
    if on and kind == "memory":
        for i in range(0, src.size, chunk):
            np.copyto(dst[i:i + chunk], src[i:i + chunk])
    elif on:
        t = time.perf_counter()
        while time.perf_counter() - t < duty * period:
            pass
        if duty < 1:
            poll((1 - duty) * period)
"""

_children: dict[tuple[str, float], subprocess.Popen] = {}
_active: tuple[str, float] | None = None


def _start(kind: str, duty: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, kind, str(duty)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, bufsize=0)
    if _read(proc) != b"r":
        proc.kill()
        raise RuntimeError(f"the {kind} load process did not start")
    return proc


def _read(proc: subprocess.Popen) -> bytes:
    return proc.stdout.read(1) if proc.stdout is not None else b""


def _switch(proc: subprocess.Popen, on: bool) -> None:
    """Switch one load on or off and wait until it has: a command on its pipe, acknowledged (a
    pipe keeps the order of commands, where two pending signals are handled by number)."""
    flag = b"1" if on else b"0"
    proc.stdin.write(flag)  # type: ignore[union-attr]
    if _read(proc) != flag:
        raise RuntimeError(f"a load process (pid {proc.pid}) stopped answering")


def apply_load(kind: str, duty: float = 1.0) -> None:
    """Run this process's work under ``kind`` (one of :data:`LOADS`; ``duty``: the share of time a
    ``cpu`` load computes) from now on: when this returns, the load is running (or none is)."""
    global _active
    check_load(kind, duty)
    key = (kind, float(duty) if kind == "cpu" else 1.0)
    if key == _active:
        return
    if kind != "idle" and key not in _children:
        _children[key] = _start(*key)
    for k, proc in _children.items():  # the old load off before the new one on
        if k == _active:
            _switch(proc, False)
    if key in _children:
        _switch(_children[key], True)
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
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
    _children.clear()
    _active = None


atexit.register(stop_loads)
