"""``logger=``: unknown names are refused before work; TensorBoard and MLflow receive the curves
(read back with each tool's own reader)."""

import pytest

from search.errors import UserError
from search.tracking import check_logger, scalar, sqlite_uri, tracking


def test_an_unknown_logger_is_refused_with_the_choices():
    with pytest.raises(UserError, match="logger=wandb: choose one of none, tensorboard, mlflow"):
        check_logger("wandb")


def test_no_logger_records_nothing(tmp_path):
    with tracking("none", tmp_path, {}):
        scalar("train/x/l1", 0.5, 10)
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_receives_the_points(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is part of .[dev]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with tracking("tensorboard", tmp_path, {}):
        for step, loss in ((10, 0.3), (20, 0.2)):
            scalar("train/searched/l1", loss, step)
    scalar("train/searched/l1", 9.0, 30)  # closed: goes nowhere
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    got = [(e.step, round(e.value, 6)) for e in events.Scalars("train/searched/l1")]
    assert got == [(10, 0.3), (20, 0.2)]


def test_mlflow_receives_the_points_and_the_params(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is part of .[dev]")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with tracking("mlflow", tmp_path, {"task": {"name": "sr"}, "budget_ms": 33.3}):
        scalar("trial/quality", 30.5, 0)
        scalar("trial/quality", 31.0, 1)
    client = MlflowClient(tracking_uri=sqlite_uri(tmp_path))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.params == {"task.name": "sr", "budget_ms": "33.3"}
    history = client.get_metric_history(run.info.run_id, "trial/quality")
    assert [(m.step, m.value) for m in history] == [(0, 30.5), (1, 31.0)]
