"""Parsers of the phone benchmark binaries' output, on the recorded files in data/."""

from pathlib import Path

import pytest

from latency_models.backends.adb_parse import (
    BenchmarkOutputError,
    parse_adb_devices,
    parse_getprop,
    parse_ort_perf_stdout,
    parse_ort_result_file,
    parse_tflite_benchmark,
)

DATA = Path(__file__).resolve().parent / "data"


def test_ort_stdout():
    out = parse_ort_perf_stdout((DATA / "ort_perf_test_stdout.txt").read_text())
    assert out["average_ms"] == pytest.approx(24.6272)
    assert out["requests"] == 40 and out["first_inference_ms"] == 39
    assert out["session_creation_s"] == pytest.approx(0.0873216)
    assert out["p50_ms"] == pytest.approx(24.38887) and out["p90_ms"] == pytest.approx(25.14629)
    assert out["min_ms"] <= out["p50_ms"] <= out["p90_ms"] <= out["p99_ms"] <= out["max_ms"]


def test_ort_result_file_matches_its_own_statistics():
    text = (DATA / "ort_perf_test_result.txt").read_text()
    times = parse_ort_result_file(text)
    assert len(times) == 40
    stats = parse_ort_perf_stdout("Average inference time cost: 1 ms\n" + text)
    # The tool's P50 is sorted[int(0.5 n)]; recompute it from the rows.
    assert sorted(times)[20] == pytest.approx(stats["p50_ms"], rel=1e-6)
    assert min(times) == pytest.approx(stats["min_ms"], rel=1e-6)


def test_ort_failure_output_is_reported():
    with pytest.raises(BenchmarkOutputError, match="Average inference time cost"):
        parse_ort_perf_stdout("Load model from m.onnx failed: File doesn't exist\n")
    with pytest.raises(BenchmarkOutputError, match="no per-run rows"):
        parse_ort_result_file("\nP50 Latency: 0.1 s\n")


def test_tflite_output():
    out = parse_tflite_benchmark((DATA / "tflite_benchmark_model_stdout.txt").read_text())
    assert out["init_ms"] == pytest.approx(21.432)
    assert out["first_inference_ms"] == pytest.approx(38.12)
    assert out["warmup_avg_ms"] == pytest.approx(34.997)
    assert out["inference_avg_ms"] == pytest.approx(31.1181)
    assert out["runs"] == 10, "the last count= line is the timed runs, not the warm-up"
    assert out["min_ms"] == pytest.approx(30.718) and out["std_ms"] == pytest.approx(0.372)
    assert out["memory_init_mb"] == pytest.approx(3.125) and out["peak_memory_mb"] == pytest.approx(14.2383)
    assert "median_ms" not in out


def test_tflite_variants_percentiles_all_same_and_old_memory_wording():
    text = (
        "count=20 first=100 curr=90 min=80 max=120 avg=95.5 std=9 p5=81 median=94 p95=118\n"
        "Inference timings in us: Init: 5388, First inference: 101726, Warmup (avg): 92755.2, Inference (avg): 95.5\n"
        "Peak memory footprint (MB): init=2.5 overall=7.25\n"
    )
    out = parse_tflite_benchmark(text)
    assert out["median_ms"] == pytest.approx(0.094) and out["p95_ms"] == pytest.approx(0.118)
    assert out["memory_overall_mb"] == 7.25
    same = parse_tflite_benchmark(
        "count=5 curr=300(all same)\nInference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, Inference (avg): 300\n"
    )
    assert same["runs"] == 5 and same["min_ms"] == same["max_ms"] == pytest.approx(0.3)
    with pytest.raises(BenchmarkOutputError, match="Inference timings in us"):
        parse_tflite_benchmark("ERROR: Failed to apply GPU delegate.\nBenchmarking failed.\n")


def test_adb_devices_and_getprop():
    devices = parse_adb_devices(
        "* daemon started successfully\nList of devices attached\nR58M1\tdevice\nemulator-5554\toffline\nXY\tunauthorized\n\n"
    )
    assert devices == {"R58M1": "device", "emulator-5554": "offline", "XY": "unauthorized"}
    assert parse_adb_devices("List of devices attached\n\n") == {}
    props = parse_getprop((DATA / "getprop.txt").read_text())
    assert props["ro.product.model"] == "Pixel 7" and props["ro.soc.model"] == "GS201"
