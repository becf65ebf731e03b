"""``search.run(...)``: the command line's run from Python, with the same checks and files."""

import pytest

import search
from search.errors import UserError
from search.result import Result


@pytest.mark.slow  # a whole (tiny) search
def test_a_search_from_python_returns_the_result_it_writes(tmp_path, tiny_sr):
    overrides = [o for o in tiny_sr if not o.startswith(("task=", "device="))] + ["search.run_final=false"]
    result = search.run(task="sr", device="s21", overrides=overrides, run_dir=tmp_path / "run")
    assert isinstance(result, Result) and result.strategy == "tpe" and result.best["arch_key"]
    assert Result.read(tmp_path / "run" / "result.json").best == result.best


def test_a_bad_override_is_the_one_line_error_the_command_prints(tmp_path):
    with pytest.raises(UserError) as err:
        search.run(task="sr", device="s21", overrides=["search.n_trails=3"], run_dir=tmp_path)
    assert "n_trails" in str(err.value) and "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # refused before any work
