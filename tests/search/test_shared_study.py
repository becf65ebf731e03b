"""A study holds one meaning of its trials: a run with another search space, data, proxy recipe or
latency model refuses to join it, naming what differs."""

import subprocess
import sys

import optuna
import pytest

from search.errors import UserError
from search.study.meaning import MEANING_ATTR, check_meaning


def test_check_meaning_records_then_refuses_other_setups(tmp_path):
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db.sqlite'}")
    base = {"space": {"channels": [8, 12]}, "proxy": {"steps": 100}, "latency": "published"}
    check_meaning(study, base)
    assert study.user_attrs[MEANING_ATTR]["space"] == {"channels": [8, 12]}
    check_meaning(study, dict(base))  # the same setup joins
    with pytest.raises(UserError, match=r"space differ: space=\{'channels': \[8, 12\]\}"):
        check_meaning(study, {**base, "space": {"channels": [16, 20]}})
    with pytest.raises(UserError, match="latency, proxy differ"):
        check_meaning(study, {**base, "proxy": {"steps": 200}, "latency": "measured"})


@pytest.mark.slow
def test_second_space_on_a_shared_storage_is_refused(tmp_path, tiny_sr):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    common = [*tiny_sr, f"search.storage={storage}", "search.study_name=shared", "search.run_final=false"]
    first = subprocess.run([sys.executable, "-m", "search", *common, f"hydra.run.dir={tmp_path / 'a'}"],
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    other = [o if not o.startswith("task.space.channels=") else "task.space.channels=[16,20]" for o in common]
    second = subprocess.run([sys.executable, "-m", "search", *other, f"hydra.run.dir={tmp_path / 'b'}"],
                            capture_output=True, text=True, timeout=600)
    out = second.stdout + second.stderr
    assert second.returncode == 2 and "error:" in out and "space differ" in out and "Traceback" not in out, out
