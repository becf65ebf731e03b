"""Multi-fidelity search: rungs of proxy steps, a real study whose pruner stops trailing
candidates at a rung, and settings that cannot prune refused up front."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest

from search.config.compose import compose_config
from search.errors import UserError
from search.fidelity import Fidelity
from search.settings import DeviceProfile, SearchSettings


def test_rungs_grow_geometrically_up_to_the_proxy():
    assert Fidelity("hyperband", 250, 3).rungs(2250) == [250, 750, 2250]
    assert Fidelity("halving", 250, 3).rungs(2000) == [250, 750, 2000]
    assert Fidelity("halving", 250, 3).rungs(250) == [250]
    assert Fidelity().rungs(2000) == [2000]  # no pruner: scored once, at the end
    with pytest.raises(UserError, match="search.fidelity.pruner='asha'"):
        Fidelity("asha")


@pytest.mark.parametrize(("overrides", "needle"), [
    (["strategy=nsga2"], "strategy=nsga2"), (["task=vit", "device=cpu"], "task=vit"),
    (["search.fidelity.reduction_factor=1"], "search.fidelity.reduction_factor=1"),
])
def test_a_pruner_where_nothing_can_be_pruned_is_refused(overrides, needle, tmp_path):
    cfg = compose_config(["search.fidelity.pruner=hyperband", *overrides])
    with pytest.raises(UserError, match=needle):
        SearchSettings.from_cfg(cfg, DeviceProfile.from_cfg(cfg), tmp_path)


@pytest.mark.slow
def test_halving_stops_trailing_candidates_at_a_rung_and_trains_the_rest_to_the_end(tmp_path, tiny_sr):
    overrides = [o for o in tiny_sr if not o.startswith(("search.n_trials=", "task.proxy.steps="))]
    subprocess.run([sys.executable, "-m", "search", *overrides, "search.n_trials=10", "task.proxy.steps=8",
                    "search.fidelity.pruner=halving", "search.fidelity.min_steps=2",
                    "search.fidelity.reduction_factor=2", "search.run_final=false", f"hydra.run.dir={tmp_path}"],
                   check=True, timeout=600, capture_output=True)
    summary = json.loads((tmp_path / "result.json").read_text())["trials"]
    trained = [t for t in summary["trials"] if t["trained"]]
    stopped = [t for t in trained if t["state"] == "PRUNED"]
    complete = [t for t in trained if t["state"] == "COMPLETE"]
    assert stopped and complete and summary["n_stopped_at_rung"] == len(stopped)
    assert all(t["proxy_steps"] in (2, 4) for t in stopped) and all(t["proxy_steps"] == 8 for t in complete)
    assert all(t["proxy_steps"] is None for t in summary["trials"] if not t["trained"])  # never trained
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path / 'study.db'}")
    for t in study.get_trials():
        if t.user_attrs.get("trained"):  # every rung it reached is an intermediate value, for the pruner
            assert max(t.intermediate_values) == t.user_attrs["proxy_steps"]
            assert t.intermediate_values[max(t.intermediate_values)] == pytest.approx(t.user_attrs["val_psnr"])


def test_a_rung_reached_after_the_search_time_stops_the_training_there():
    import time

    from search.fidelity import Reporter

    study = optuna.create_study(direction="maximize", pruner=Fidelity("halving", 2, 2).make_pruner(8))
    on_time = Reporter(study.ask(), can_prune=True, deadline=time.monotonic() + 3600)
    assert not on_time(2, 30.0) and on_time.stopped_at is None  # the first trial at a rung goes on
    late = Reporter(study.ask(), can_prune=True, deadline=time.monotonic() - 1)
    assert late(2, 31.0) and late.stopped_at == 2 and "search.timeout_s" in late.why
    two_objectives = Reporter(study.ask(), can_prune=False, deadline=time.monotonic() - 1)
    assert not two_objectives(2, 31.0)  # NSGA-II cannot prune: it only counts steps
