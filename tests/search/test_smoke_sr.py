"""`experiment=smoke` runs the whole SR pipeline end to end and writes every output, usable."""

import importlib.util
import json
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import pytest
import torch

import tasks.sr as sr
from search.result import Result
from spaces import load_arch

pytestmark = pytest.mark.slow  # the whole pipeline end to end (one run shared by these tests)
TRACKER = ["logger=tensorboard"] if importlib.util.find_spec("tensorboard") else []


def find_key_paths(doc, needles, path=()):
    """Every (path, value) in a nested dict whose joined path contains all needles."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += find_key_paths(v, needles, path + (str(k),))
    elif isinstance(doc, int | float) and all(n in "/".join(path).lower() for n in needles):
        out.append(("/".join(path), doc))
    return out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("smoke")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "search", "task=sr", "device=s21", "experiment=smoke", f"hydra.run.dir={run_dir}",
         "export.baselines=true", *TRACKER],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir, time.monotonic() - started, proc.stdout


def test_smoke_finishes_quickly_and_shows_progress(smoke_run):
    _, wall_s, stdout = smoke_run
    assert "[trial " in stdout and "best:" in stdout and "left ~" in stdout
    assert wall_s < 240, f"smoke run took {wall_s:.0f} s"


def test_result_json(smoke_run):
    run_dir, _, _ = smoke_run
    result = Result.read(run_dir / "result.json")
    best = result.best
    set5 = [v for p, v in find_key_paths(best, ["set5", "psnr"])]
    assert set5 and 20 < set5[0] < 45
    latency = find_key_paths(best, ["latency"])
    assert latency and 0 < latency[0][1] <= result.budget_ms == 33.3
    assert "Wu, Gong" in json.dumps(best["latency_source"])
    assert set(result.extras["baselines"]) == {"bicubic", "fsrcnn", "espcn"}
    bicubic = result.extras["baselines"]["bicubic"]["eval"]["set5"]["psnr"]
    assert abs(bicubic - 33.68) < 0.05
    assert result.trials["n_complete"] >= 1 and result.config["task"]["name"] == "sr"
    assert (result.task, result.strategy, result.final_trained) == ("sr", "tpe", True)
    raw = json.loads((run_dir / "result.json").read_text())
    assert list(raw)[:10] == ["schema", "schema_version", "task", "strategy", "device", "budget", "best", "study",
                              "trials", "final"]


def test_arch_weights_and_onnx_agree(smoke_run):
    run_dir, _, _ = smoke_run
    result = json.loads((run_dir / "result.json").read_text())
    arch = load_arch(run_dir / "arch.json")
    assert arch.to_dict() == result["best"]["arch"]
    model = sr.build_model(arch)
    assert sr.num_params(model) == result["best"]["params"]
    state = torch.load(run_dir / "model.pt", weights_only=True)
    model = sr.load_weights(arch, run_dir / "model.pt")
    assert state  # a real file with tensors
    lr = torch.rand(1, 3, 41, 57, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model.eval()(lr).numpy()
    session = ort.InferenceSession(str(run_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: lr.numpy()})[0]
    assert got.shape == (1, 3, 82, 114)
    assert np.abs(got - expected).max() < 1e-4


def test_pictures_and_report(smoke_run):
    run_dir, _, _ = smoke_run
    assert (run_dir / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (run_dir / "report.md").read_text()
    for name in ("searched", "bicubic", "fsrcnn", "espcn", "set5", "Wu, Gong"):
        assert name in report


def test_baselines_ship_on_request(smoke_run):
    run_dir, _, _ = smoke_run
    baselines = json.loads((run_dir / "result.json").read_text())["baselines"]
    assert "export" not in baselines["bicubic"]  # no weights to ship
    report = (run_dir / "report.md").read_text()
    for name in ("fsrcnn", "espcn"):
        (file, row), = baselines[name]["export"].items()
        assert file == f"baselines/{name}/model.onnx" and (run_dir / file).stat().st_size == row["bytes"]
        assert all(abs(d) < 1e-3 for d in row["psnr_diff_db"].values()) and row["latency_ms_here"] > 0
        assert f"`{file}`" in report


def test_the_tracker_has_the_training_curves_and_the_trials(smoke_run):
    if not TRACKER:
        pytest.skip("the tensorboard extra is part of .[dev]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _, _ = smoke_run
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/searched/l1", "train/fsrcnn/l1", "trial/quality", "trial/best_quality"} <= tags, tags
    trials = json.loads((run_dir / "result.json").read_text())["trials"]
    assert len(events.Scalars("trial/quality")) == trials["n_trained"] >= 1  # no quality for an untrained trial
