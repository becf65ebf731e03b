"""Files a run writes survive a kill mid-write: the previous file stays whole or the new one is."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spaces.atomic import atomic_path, write_text_atomic

WRITER = """
import sys, pathlib
from search.app import write_result
from search.result import Result
run_dir = pathlib.Path(sys.argv[1])
big = {"trials": [{"number": i, "params": {"blocks": list(range(40))}, "value": i * 0.5} for i in range(20000)]}
for round_ in range(1000):
    write_result(run_dir, Result(task="sr", strategy="tpe", device={"name": "s21"}, budget_ms=33.3, budget_rule="",
                                 best=None, study={}, trials=big, extras={"round": round_}))
    print(round_, flush=True)
"""


@pytest.mark.slow
def test_result_json_killed_mid_write_is_old_or_new_never_torn(tmp_path):
    write_text_atomic(tmp_path / "result.json", json.dumps({"round": -1}))
    for delay_s in (0.6, 0.9, 1.3, 1.7, 2.2):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        time.sleep(delay_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        doc = json.loads((tmp_path / "result.json").read_text())  # whole: parses
        assert doc["round"] >= -1
    assert not [p for p in tmp_path.iterdir() if p.name != "result.json" and not p.name.startswith(".result.")]


def test_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
