"""The adb backend end to end, against the FAKE adb in fake_adb/ (the only fake: no phone here).

The fake replays the recorded benchmark outputs in data/ and keeps the phone's files in a
temporary directory, so these tests exercise the real push / shell / pull / parse path.
"""

import json
import os
import statistics
import sys
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from latency_models.backends import AdbBackend, BackendUnavailable
from latency_models.backends.adb import AdbError
from latency_models.backends.adb_parse import parse_ort_result_file, parse_tflite_benchmark
from latency_models.measure import measure
from latency_models.protocol import Protocol

HERE = Path(__file__).resolve().parent
FAKE_ADB_DIR = HERE / "fake_adb"
DATA = HERE / "data"
PROTOCOL = {"warmup": 2, "min_repeats": 10, "max_repeats": 40, "window": 5, "max_seconds": 30.0}


@pytest.fixture
def phone(tmp_path, monkeypatch):
    """A fake phone with both benchmark binaries in /data/local/tmp; fake adb first on PATH."""
    root = tmp_path / "phone"
    (root / "data/local/tmp").mkdir(parents=True)
    for name in ("onnxruntime_perf_test", "benchmark_model"):
        (root / "data/local/tmp" / name).write_text("#!/system/bin/sh\n")
    log = tmp_path / "adb_log.jsonl"
    monkeypatch.setenv("PATH", f"{FAKE_ADB_DIR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_PHONE_ROOT", str(root))
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    monkeypatch.delenv("FAKE_ADB_DEVICES", raising=False)
    return root, log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))


def test_onnxruntime_runner_end_to_end(phone):
    root, log = phone
    m = measure(net(), (1, 3, 16, 16), backend="adb", threads=2, **PROTOCOL)

    recorded_ms = parse_ort_result_file((DATA / "ort_perf_test_result.txt").read_text())
    # First call asks for warmup + min_repeats runs, later ones warmup + window; warm-ups dropped.
    expected = list(recorded_ms[2:12])
    while len(expected) < m.n_repeats:
        expected += recorded_ms[2:7]
    assert m.times_ms == pytest.approx(expected[: m.n_repeats], rel=1e-6)
    assert PROTOCOL["min_repeats"] <= m.n_repeats <= PROTOCOL["max_repeats"]
    assert 24.0 < m.median_ms < 26.0 and m.p10_ms <= m.median_ms <= m.p90_ms
    assert m.backend == "adb" and m.threads == 2

    assert m.host["device_model"] == "Google Pixel 7" and m.host["cpu_model"] == "GS201"
    assert m.host["system"] == "Android 14" and len(m.host["fingerprint"]) == 16
    first = m.extra["batches"][0]
    assert first["average_ms"] == pytest.approx(24.6272) and first["p50_ms"] == pytest.approx(24.38887)
    assert first["peak_working_set_bytes"] == 61784064
    assert m.extra["sample_unit"] == "run" and m.extra["serial"] == "FAKE-PIXEL7"

    argvs = calls(log)
    runs = [a for a in argvs if "shell" in a and "onnxruntime_perf_test" in a[-1]]
    assert len(runs) == len(m.extra["batches"])
    assert " -x 2 " in runs[0][-1] and " -r 12 " in runs[0][-1] and " -m times " in runs[0][-1]
    assert all(a[:2] == ["-s", "FAKE-PIXEL7"] for a in argvs if a != ["devices"])
    assert any(a[2:3] == ["push"] and a[3].endswith(".onnx") for a in argvs)
    assert list((root / "data/local/tmp/hwnas").iterdir()) == [], "this run's remote directory is cleaned up"


def test_pushed_model_is_a_valid_onnx_export(phone, tmp_path, monkeypatch):
    root, _ = phone
    seen = {}
    original = AdbBackend.run_file

    def keep_copy(self, model_path, threads, protocol):
        seen["model"] = onnx.load(str(model_path))
        return original(self, model_path, threads, protocol)

    monkeypatch.setattr(AdbBackend, "run_file", keep_copy)
    measure(net(), (1, 3, 16, 16), backend="adb", **PROTOCOL)
    onnx.checker.check_model(seen["model"])
    dims = [d.dim_value for d in seen["model"].graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 16, 16]


def test_tflite_runner_parses_benchmark_model(phone, tmp_path):
    root, log = phone
    model = tmp_path / "model.tflite"
    model.write_bytes(b"stand-in: the fake phone never reads the model")
    backend = AdbBackend(runner="tflite")
    timings = backend.run_file(model, threads=1, protocol=Protocol(**PROTOCOL))

    recorded = parse_tflite_benchmark((DATA / "tflite_benchmark_model_stdout.txt").read_text())
    assert recorded["inference_avg_ms"] == pytest.approx(31.1181)
    # One sample per call (its mean); identical replays are stable after min_repeats calls.
    assert timings.times_ms == (pytest.approx(31.1181),) * PROTOCOL["min_repeats"]
    assert timings.stable
    extra = backend.extra()
    assert extra["batches"][0]["peak_memory_mb"] == pytest.approx(14.2383)
    assert extra["batches"][0]["init_ms"] == pytest.approx(21.432)
    bench = [a[-1] for a in calls(log) if "shell" in a and "benchmark_model" in a[-1]]
    assert "--num_threads=1" in bench[0] and "--warmup_runs=2" in bench[0] and "--num_runs=10" in bench[0]


def test_tflite_without_converter_says_so(phone):
    with pytest.raises(BackendUnavailable, match="TFLite converter"):
        measure(net(), (1, 3, 8, 8), backend="adb", backend_options={"runner": "tflite"}, **PROTOCOL)


def test_missing_adb_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailable, match="needs the adb executable"):
        measure(net(), (1, 3, 8, 8), backend="adb")
    with pytest.raises(BackendUnavailable, match="adb_path='/nowhere/adb'"):
        AdbBackend(adb_path="/nowhere/adb")


def test_adb_path_argument_finds_the_executable(phone, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{Path(sys.executable).parent}")  # fake adb off PATH
    backend = AdbBackend(adb_path=str(FAKE_ADB_DIR / "adb"))
    assert backend.client.serial == "FAKE-PIXEL7"


def test_no_device_attached(phone, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    with pytest.raises(BackendUnavailable, match="no device attached"):
        measure(net(), (1, 3, 8, 8), backend="adb")


def test_serial_selects_among_several_devices(phone, monkeypatch):
    _, log = phone
    monkeypatch.setenv("FAKE_ADB_DEVICES", "PHONE-A,PHONE-B")
    with pytest.raises(BackendUnavailable, match="several devices"):
        AdbBackend()
    with pytest.raises(BackendUnavailable, match="'PHONE-C' is not attached"):
        AdbBackend(serial="PHONE-C")
    m = measure(net(), (1, 3, 8, 8), backend="adb", backend_options={"serial": "PHONE-B"}, **PROTOCOL)
    assert m.host["hostname"] == "PHONE-B"
    assert all(a[:2] == ["-s", "PHONE-B"] for a in calls(log) if a != ["devices"])


def test_missing_binary_on_the_phone(phone):
    root, _ = phone
    (root / "data/local/tmp/onnxruntime_perf_test").unlink()
    with pytest.raises(AdbError, match="Is /data/local/tmp/onnxruntime_perf_test on the phone"):
        measure(net(), (1, 3, 8, 8), backend="adb", **PROTOCOL)
    assert list((root / "data/local/tmp/hwnas").iterdir()) == []  # its folder removed even on failure


def test_two_concurrent_runs_keep_their_own_remote_folders(phone):
    from concurrent.futures import ThreadPoolExecutor

    from latency_models.backends.onnx_export import export_onnx

    root, log = phone
    model = export_onnx(net().eval(), (1, 3, 16, 16), root.parent / "net.onnx")  # torch's exporter is not thread-safe
    with ThreadPoolExecutor(2) as pool:  # the two runs share the phone, each with its own backend
        results = list(pool.map(lambda _: AdbBackend().run_file(model, 1, Protocol.from_kwargs(**PROTOCOL)), range(2)))
    assert all(24.0 < statistics.median(t.times_ms) < 26.0 for t in results)
    argvs = calls(log)
    made = [a[-1].split()[-1] for a in argvs if "shell" in a and a[-1].startswith("mkdir -p")]
    removed = [a[-1].split()[-1] for a in argvs if "shell" in a and a[-1].startswith("rm -rf")]
    assert len(set(made)) == 2 and sorted(made) == sorted(removed)  # each removed only its own folder
    assert all(m.startswith("/data/local/tmp/hwnas/run-") for m in made)
    pushed = {a[4].rsplit("/", 1)[0] for a in argvs if a[2:3] == ["push"]}
    assert pushed == set(made)
