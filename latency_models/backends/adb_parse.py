"""Parsers for the output of the phone benchmark binaries (pure functions, no I/O).

Formats, as printed by the tools' sources:

``onnxruntime_perf_test`` (onnxruntime/test/perftest/performance_runner.cc), stdout::

    Session creation time cost: 0.0921 s
    First inference time cost: 41 ms
    Total inference time cost: 0.6031 s
    Total inference requests: 25
    Average inference time cost: 24.124 ms
    ...
    Peak working set size: 48947200 bytes
    Min Latency: 0.0231 s          (these seven with -s, or when no result file is given)
    P50 Latency: 0.0240 s
    ...

and its result file (second positional argument; appended to, one line per timed run)::

    <model dir name>,<time in s>,<peak working set bytes>,<avg CPU %>,<run index>

TFLite ``benchmark_model`` (tensorflow/lite/tools/benchmark/benchmark_model.cc), log lines
(optionally prefixed ``INFO: ``), times in microseconds::

    count=50 first=31500 curr=30900 min=30718 max=36410 avg=31118.1 std=1323 [p5=.. median=.. p95=..]
    Inference timings in us: Init: 21432, First inference: 91020, Warmup (avg): 60125.5, Inference (avg): 31118.1
    Memory footprint delta from the start of the tool (MB): init=2.4 overall=8.7
    Overall peak memory footprint (MB) via periodic monitoring: 13.18

The first ``count=`` line belongs to the warm-up runs, the last to the timed runs.
"""

from __future__ import annotations

import re
from typing import Any

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


class BenchmarkOutputError(ValueError):
    """The benchmark binary's output lacks the figures we need (it probably failed)."""


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


# --------------------------------------------------------------------------- onnxruntime_perf_test

_ORT_STDOUT = {
    "session_creation_s": rf"Session creation time cost:\s*{_NUM}\s*s",
    "first_inference_ms": rf"First inference time cost:\s*{_NUM}\s*ms",
    "total_inference_s": rf"Total inference time cost:\s*{_NUM}\s*s",
    "requests": rf"Total inference requests:\s*{_NUM}",
    "average_ms": rf"Average inference time cost:\s*{_NUM}\s*ms",
    "inferences_per_s": rf"Number of inferences per second:\s*{_NUM}",
    "avg_cpu_pct": rf"Avg CPU usage:\s*{_NUM}\s*%?",
    "peak_working_set_bytes": rf"Peak working set size:\s*{_NUM}",
}
_ORT_PERCENTILES = ("Min", "Max", "P50", "P90", "P95", "P99", "P999")


def parse_ort_perf_stdout(text: str) -> dict[str, float]:
    """Figures from ``onnxruntime_perf_test`` stdout; latencies converted to ms
    (``p50_ms``, ``p90_ms``, ..., ``min_ms``, ``max_ms`` when printed)."""
    out: dict[str, float] = {}
    for key, pattern in _ORT_STDOUT.items():
        match = re.search(pattern, text)
        if match:
            out[key] = float(match.group(1))
    for name in _ORT_PERCENTILES:
        match = re.search(rf"^\s*{name} Latency:\s*{_NUM}\s*s\s*$", text, re.MULTILINE)
        if match:
            out[f"{name.lower()}_ms"] = float(match.group(1)) * 1e3
    if "average_ms" not in out:
        raise BenchmarkOutputError(
            "onnxruntime_perf_test printed no 'Average inference time cost'; it probably failed. "
            f"Last lines:\n{_tail(text)}"
        )
    return out


def parse_ort_result_file(text: str) -> list[float]:
    """Per-run times in ms, in run order, from the perf-test result file (CSV rows before the
    blank line; the statistics block after it is ignored)."""
    rows: list[tuple[int, float]] = []
    for line in text.splitlines():
        parts = line.strip().split(",")
        if len(parts) != 5:
            continue
        try:
            rows.append((int(parts[4]), float(parts[1]) * 1e3))
        except ValueError:
            continue
    if not rows:
        raise BenchmarkOutputError(f"no per-run rows in the onnxruntime_perf_test result file:\n{_tail(text)}")
    return [ms for _, ms in sorted(rows, key=lambda r: r[0])]


# --------------------------------------------------------------------------- TFLite benchmark_model

_TFLITE_TIMINGS = (
    rf"Inference timings in us:\s*Init:\s*{_NUM},\s*First inference:\s*{_NUM},\s*"
    rf"Warmup \(avg\):\s*{_NUM},\s*Inference \(avg\):\s*{_NUM}"
)


def _parse_stat(line: str) -> dict[str, float]:
    """``count=50 first=.. min=.. avg=..`` (or ``count=5 curr=300(all same)``) -> dict in us."""
    stat = {key: float(value) for key, value in re.findall(rf"(\w+)={_NUM}", line)}
    if "avg" not in stat and "curr" in stat:  # all runs took the same time
        stat.update(avg=stat["curr"], min=stat["curr"], max=stat["curr"], std=0.0)
    return stat


def parse_tflite_benchmark(text: str) -> dict[str, Any]:
    """Figures from ``benchmark_model`` output, converted to ms (memory in MB).

    Returns ``init_ms``, ``first_inference_ms``, ``warmup_avg_ms``, ``inference_avg_ms``,
    ``runs`` (count of timed runs), ``min_ms``, ``max_ms``, ``std_ms``, ``median_ms`` /
    ``p5_ms`` / ``p95_ms`` when printed, and the memory figures when printed.
    """
    match = re.search(_TFLITE_TIMINGS, text)
    if not match:
        raise BenchmarkOutputError(
            "benchmark_model printed no 'Inference timings in us' line; it probably failed. "
            f"Last lines:\n{_tail(text)}"
        )
    init_us, first_us, warmup_us, inference_us = (float(g) for g in match.groups())
    out: dict[str, Any] = {
        "init_ms": init_us / 1e3,
        "first_inference_ms": first_us / 1e3,
        "warmup_avg_ms": warmup_us / 1e3,
        "inference_avg_ms": inference_us / 1e3,
    }
    stat_lines = re.findall(r"count=\d+[^\n]*", text)
    if stat_lines:
        stat = _parse_stat(stat_lines[-1])
        out["runs"] = int(stat["count"])
        for key in ("min", "max", "std", "median", "p5", "p95"):
            if key in stat:
                out[f"{key}_ms"] = stat[key] / 1e3
    memory = re.search(rf"Memory footprint delta from the start of the tool \(MB\):\s*init={_NUM}\s*overall={_NUM}", text)
    if memory is None:  # older wording
        memory = re.search(rf"Peak memory footprint \(MB\):\s*init={_NUM}\s*overall={_NUM}", text)
    if memory:
        out["memory_init_mb"], out["memory_overall_mb"] = float(memory.group(1)), float(memory.group(2))
    peak = re.search(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*{_NUM}", text)
    if peak:
        out["peak_memory_mb"] = float(peak.group(1))
    return out


# --------------------------------------------------------------------------- adb

def parse_adb_devices(text: str) -> dict[str, str]:
    """``adb devices`` -> {serial: state} (state is 'device', 'offline', 'unauthorized', ...)."""
    devices: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("List of devices") or line.startswith("*"):
            continue
        parts = line.split()
        if len(parts) >= 2:
            devices[parts[0]] = parts[1]
    return devices


def parse_getprop(text: str) -> dict[str, str]:
    """``adb shell getprop`` lines ``[key]: [value]`` -> dict."""
    return dict(re.findall(r"^\[([^\]]+)\]:\s*\[([^\]]*)\]", text, re.MULTILINE))
