"""One process per run directory; a late search-only worker never replaces the final result."""

import json
import subprocess
import sys

import pytest

from search.app import claim, write_result
from search.errors import UserError
from search.result import TRAINED, Result
from search.study.worker import SKIPPED


@pytest.mark.slow  # two processes
def test_a_claimed_run_directory_refuses_a_second_process(tmp_path):
    with claim(tmp_path):
        proc = subprocess.run([sys.executable, "-m", "search", "experiment=smoke", f"hydra.run.dir={tmp_path}"],
                              capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "is in use by another process (pid" in out and "Traceback" not in out, out
    assert not (tmp_path / "result.json").exists()


def _result(best, final=TRAINED):
    return Result(task="sr", strategy="tpe", device={"name": "s21"}, budget_ms=33.3, budget_rule="given",
                  best=best, study={}, final=final, extras={"baselines": {}})


def test_search_only_result_does_not_replace_a_final_one(tmp_path):
    write_result(tmp_path, _result({"arch_key": "abc"}))
    write_result(tmp_path, _result(None, final=SKIPPED))
    assert Result.read(tmp_path / "result.json").best["arch_key"] == "abc"
    assert Result.read(tmp_path / "result.search_only.json").best is None
    write_result(tmp_path, _result({"arch_key": "def"}))  # a final result replaces as before
    assert json.loads((tmp_path / "result.json").read_text())["best"]["arch_key"] == "def"


def test_a_foreign_or_newer_result_is_one_line(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"best": {}}))
    with pytest.raises(UserError, match="is not a hwnas.result file"):
        Result.read(tmp_path / "result.json")
    (tmp_path / "result.json").write_text(json.dumps({"schema": "hwnas.result", "schema_version": 99}))
    with pytest.raises(UserError, match="has hwnas.result version 99; this package reads version 1"):
        Result.read(tmp_path / "result.json")


def test_the_final_training_is_claimed_once_per_study(tmp_path):
    import optuna

    from search.study.engine import claim_final

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="shared", storage=url)

    class Settings:  # the one field claim_final reads
        def __init__(self, run_dir):
            self.run_dir = run_dir

    first, second = tmp_path / "a", tmp_path / "b"
    claim_final(study, Settings(first))
    claim_final(study, Settings(first))  # the same run directory again: a re-run resumes its own
    with pytest.raises(UserError, match=f"claimed by .* for {first}; its result is written there"):
        claim_final(optuna.load_study(study_name="shared", storage=url), Settings(second))
