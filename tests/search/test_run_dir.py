"""One process per run directory; a late search-only worker never replaces the final result."""

import json
import subprocess
import sys

from search.app import claim, write_result


def test_a_claimed_run_directory_refuses_a_second_process(tmp_path):
    with claim(tmp_path):
        proc = subprocess.run([sys.executable, "-m", "search", "experiment=smoke", f"hydra.run.dir={tmp_path}"],
                              capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "is in use by another process (pid" in out and "Traceback" not in out, out
    assert not (tmp_path / "result.json").exists()


def test_search_only_result_does_not_replace_a_final_one(tmp_path):
    write_result(tmp_path, {"best": {"arch_key": "abc"}, "baselines": {}})
    write_result(tmp_path, {"final": "skipped (search.run_final=false)", "best": None})
    assert json.loads((tmp_path / "result.json").read_text())["best"]["arch_key"] == "abc"
    assert json.loads((tmp_path / "result.search_only.json").read_text())["best"] is None
    write_result(tmp_path, {"best": {"arch_key": "def"}})  # a final result replaces as before
    assert json.loads((tmp_path / "result.json").read_text())["best"]["arch_key"] == "def"
