"""Background loads of ``kind: load`` operating points: real processes, working only while on."""

import os
import time

import pytest

from search.sr.allinone import load


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_a_load_works_while_on_sleeps_while_off_and_stops_with_the_run():
    try:
        load.apply_load("cpu")
        pid = load._children["cpu", 1.0].pid
        t0 = cpu_seconds(pid)
        time.sleep(0.5)
        busy = cpu_seconds(pid) - t0
        load.apply_load("idle")
        time.sleep(0.1)
        t1 = cpu_seconds(pid)
        time.sleep(0.5)
        idle = cpu_seconds(pid) - t1
        assert busy > 0.2 and idle < 0.05, (busy, idle)
        load.apply_load("memory")  # a second kind: its own process, the first stays paused
        load.apply_load("cpu", 0.5)
        half = load._children["cpu", 0.5].pid
        t2 = cpu_seconds(half)
        time.sleep(0.6)
        share = (cpu_seconds(half) - t2) / 0.6
        assert 0.2 < share < 0.8, share  # half of every 10 ms
        assert set(load._children) == {("cpu", 1.0), ("memory", 1.0), ("cpu", 0.5)}
    finally:
        procs = list(load._children.values())
        load.stop_loads()
    assert not load._children and all(p.poll() is not None for p in procs)


def test_an_unknown_load_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        load.apply_load("gpu")
    with pytest.raises(ValueError, match="duty"):
        load.apply_load("cpu", 1.5)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_quick_switches_keep_their_order():
    """off then on within microseconds ends on (two pending signals were handled by number: off)."""
    try:
        load.apply_load("cpu")
        pid = load._children["cpu", 1.0].pid
        for _ in range(20):
            load.apply_load("idle")
            load.apply_load("cpu")
        t0 = cpu_seconds(pid)
        time.sleep(0.5)
        assert cpu_seconds(pid) - t0 > 0.2
    finally:
        load.stop_loads()


def test_a_load_exits_with_its_parent(tmp_path):
    import subprocess
    import sys
    script = ("from search.sr.allinone import load; load.apply_load('cpu', 0.5); "
              "print(load._children['cpu', 0.5].pid, flush=True); import os; os._exit(0)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
