"""``adb``: run the model on an Android phone with the phone's own benchmark binary.

Flow for one model: export it (ONNX with ``torch.onnx.export(..., dynamo=False)``; TFLite only
when a converter, ``ai-edge-torch``, is installed), ``adb push`` it to ``remote_dir``, then run
the binary through ``adb shell`` in batches until the protocol's median is stable, pull / parse
its output, and remove that folder: each measurement has its own
``remote_dir/run-<pid>-<random>``, so runs sharing a phone never delete each other's files.

Runners (the binary must already be on the phone, e.g. ``/data/local/tmp/onnxruntime_perf_test``):

``onnxruntime``  ``onnxruntime_perf_test -e cpu -I -m times -r <warmup+n> -x <threads> -y 1 -s
                 model.onnx result.txt``. The result file holds every run's time: the first
                 ``warmup`` rows are dropped, the rest are the samples (one per run).
``tflite``       ``benchmark_model --graph=model.tflite --num_threads=<threads>
                 --warmup_runs=<warmup> --num_runs=<runs_per_sample> ...``. It prints only
                 aggregates, so each call gives one sample: its median when printed, else its
                 mean over ``runs_per_sample`` runs (``extra["sample_unit"]`` says which).

The adb executable comes from ``adb_path`` or ``PATH``; ``serial`` picks one of several phones.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from latency_models.backends.adb_parse import (
    parse_adb_devices,
    parse_getprop,
    parse_ort_perf_stdout,
    parse_ort_result_file,
    parse_tflite_benchmark,
)
from latency_models.backends.base import Backend, BackendUnavailable, Shape, example_input, register_backend
from latency_models.backends.onnx_export import export_onnx
from latency_models.hostinfo import host_fingerprint
from latency_models.protocol import Protocol, Timings, run_batched

DEFAULT_BINARIES = {
    "onnxruntime": "/data/local/tmp/onnxruntime_perf_test",
    "tflite": "/data/local/tmp/benchmark_model",
}
MODEL_SUFFIX = {"onnxruntime": ".onnx", "tflite": ".tflite"}


class AdbError(RuntimeError):
    """An adb command or the benchmark binary on the phone failed."""


class AdbClient:
    """Thin wrapper over the adb executable for one device."""

    def __init__(self, adb_path: str | None = None, serial: str | None = None, timeout_s: float = 600.0) -> None:
        found = shutil.which(adb_path or "adb")
        if found is None:
            where = f"adb_path={adb_path!r}" if adb_path else "PATH"
            raise BackendUnavailable(
                f"backend 'adb' needs the adb executable, but none was found via {where}. Install "
                "Android platform-tools or pass adb_path='/path/to/adb'."
            )
        self.adb = found
        self.timeout_s = timeout_s
        self.serial = self._select_device(serial)

    def _call(self, args: Sequence[str], with_serial: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self.adb, *(["-s", self.serial] if with_serial else []), *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as err:
            raise AdbError(f"adb timed out after {self.timeout_s:.0f} s: {shlex.join(cmd)}") from err

    def _select_device(self, serial: str | None) -> str:
        proc = self._call(["devices"], with_serial=False)
        if proc.returncode != 0:
            raise AdbError(f"'adb devices' failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        ready = [s for s, state in parse_adb_devices(proc.stdout).items() if state == "device"]
        if not ready:
            raise BackendUnavailable(
                "backend 'adb': no device attached ('adb devices' lists none in state 'device'). "
                "Connect a phone with USB debugging enabled and authorise this computer."
            )
        if serial is None:
            if len(ready) > 1:
                raise BackendUnavailable(f"backend 'adb': several devices attached {ready}; pass serial=")
            return ready[0]
        if serial not in ready:
            raise BackendUnavailable(f"backend 'adb': device {serial!r} is not attached; attached: {ready}")
        return serial

    def check(self, args: Sequence[str], what: str) -> str:
        proc = self._call(args)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise AdbError(f"{what} failed (exit {proc.returncode}): {shlex.join(args)}\n{output[-2000:]}")
        return proc.stdout

    def shell(self, command: str, what: str = "adb shell") -> str:
        return self.check(["shell", command], what)

    def push(self, local: Path, remote: str) -> None:
        self.check(["push", str(local), remote], "adb push")

    def pull(self, remote: str, local: Path) -> None:
        self.check(["pull", remote, str(local)], "adb pull")


def export_tflite(module: torch.nn.Module, input_shape: Shape, path: Path) -> Path:
    """Convert with ai-edge-torch; raise :class:`BackendUnavailable` when it is not installed."""
    if importlib.util.find_spec("ai_edge_torch") is None:
        raise BackendUnavailable(
            "runner 'tflite' needs a PyTorch-to-TFLite converter and none is installed "
            "(pip install ai-edge-torch). Use runner='onnxruntime', or measure a converted file "
            "with AdbBackend.run_file()."
        )
    import ai_edge_torch

    ai_edge_torch.convert(module.eval(), (example_input(input_shape),)).export(str(path))
    return path


@register_backend
class AdbBackend(Backend):
    """Measure on an Android phone over adb (see the module docstring for the commands)."""

    name = "adb"

    def __init__(
        self,
        serial: str | None = None,
        adb_path: str | None = None,
        runner: str = "onnxruntime",
        binary: str | None = None,
        remote_dir: str = "/data/local/tmp/hwnas",
        runs_per_sample: int = 10,
        runner_args: Sequence[str] | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        if runner not in DEFAULT_BINARIES:
            raise ValueError(f"runner must be one of {sorted(DEFAULT_BINARIES)}, got {runner!r}")
        self.client = AdbClient(adb_path, serial, timeout_s)
        self.runner = runner
        self.binary = binary or DEFAULT_BINARIES[runner]
        self.remote_dir = remote_dir.rstrip("/")
        self.runs_per_sample = runs_per_sample
        default_args = ("--report_peak_memory_footprint=true",) if runner == "tflite" else ()
        self.runner_args = tuple(default_args if runner_args is None else runner_args)
        self._extra: dict[str, Any] = {}

    def host(self) -> dict[str, Any]:
        props = parse_getprop(self.client.shell("getprop", "adb shell getprop"))
        soc = props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware", "unknown")
        info: dict[str, Any] = {
            "kind": "android",
            "hostname": self.client.serial,
            "device_model": f"{props.get('ro.product.manufacturer', '')} {props.get('ro.product.model', '')}".strip(),
            "cpu_model": soc,
            "cpu_count": None,
            "cores_usable": None,
            "machine": props.get("ro.product.cpu.abi"),
            "system": f"Android {props.get('ro.build.version.release', '?')}",
            "os": props.get("ro.build.fingerprint"),
            "torch": None,
            "onnxruntime": f"{self.runner}:{self.binary}",
        }
        info["fingerprint"] = host_fingerprint({**info, "cpu_model": f"{soc}/{info['device_model']}"})
        return info

    def run(self, module: torch.nn.Module, input_shape: Shape, threads: int, protocol: Protocol) -> Timings:
        with tempfile.TemporaryDirectory(prefix="hwnas-adb-") as tmp:
            path = Path(tmp) / f"model{MODEL_SUFFIX[self.runner]}"
            if self.runner == "onnxruntime":
                export_onnx(module, input_shape, path)
            else:
                export_tflite(module, input_shape, path)
            return self.run_file(path, threads, protocol)

    def run_file(self, model_path: Path, threads: int, protocol: Protocol) -> Timings:
        """Measure an already exported model file (``.onnx`` / ``.tflite`` matching the runner)."""
        # One folder per measurement: two runs on one phone never share (or delete) each other's files.
        folder = f"{self.remote_dir}/run-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        remote_model = f"{folder}/model{MODEL_SUFFIX[self.runner]}"
        self.client.shell(f"mkdir -p {shlex.quote(folder)}", "creating the remote directory")
        batches: list[dict[str, Any]] = []
        try:
            self.client.push(Path(model_path), remote_model)
            with tempfile.TemporaryDirectory(prefix="hwnas-adb-pull-") as tmp:
                if self.runner == "onnxruntime":
                    def sample(n: int) -> list[float]:
                        return self._ort_batch(folder, n, threads, protocol.warmup, Path(tmp), batches)
                else:
                    def sample(n: int) -> list[float]:
                        return self._tflite_batch(remote_model, threads, protocol.warmup, batches)
                timings = run_batched(sample, protocol)
        finally:
            self.client.shell(f"rm -rf {shlex.quote(folder)}", "cleaning this run's remote directory")
        unit = "run" if self.runner == "onnxruntime" else f"call ({self.runs_per_sample} runs)"
        self._extra = {"runner": self.runner, "binary": self.binary, "serial": self.client.serial,
                       "sample_unit": unit, "batches": batches}
        return timings

    def _run_binary(self, args: list[str]) -> str:
        command = shlex.join([self.binary, *args, *self.runner_args])
        try:
            return self.client.shell(command, f"{self.runner} benchmark on the phone")
        except AdbError as err:
            if "not found" in str(err) or "No such file" in str(err):
                raise AdbError(f"{err}\nIs {self.binary} on the phone? adb push it and chmod +x it.") from err
            raise

    def _ort_batch(
        self, folder: str, n: int, threads: int, warmup: int, tmp: Path, batches: list[dict[str, Any]]
    ) -> list[float]:
        remote_model, remote_result = f"{folder}/model{MODEL_SUFFIX[self.runner]}", f"{folder}/result.txt"
        self.client.shell(f"rm -f {shlex.quote(remote_result)}", "removing the old result file")  # it appends
        stdout = self._run_binary(["-e", "cpu", "-I", "-m", "times", "-r", str(warmup + n), "-x", str(threads),
                                   "-y", "1", "-s", remote_model, remote_result])
        local = tmp / f"result-{len(batches)}.txt"
        self.client.pull(remote_result, local)
        times = parse_ort_result_file(local.read_text())
        summary = parse_ort_perf_stdout(stdout)
        batches.append({"runs": len(times), "warmup_dropped": min(warmup, len(times) - 1), **summary})
        return times[min(warmup, len(times) - 1):]

    def _tflite_batch(self, remote_model: str, threads: int, warmup: int, batches: list[dict[str, Any]]) -> list[float]:
        stdout = self._run_binary([f"--graph={remote_model}", f"--num_threads={threads}",
                                   f"--warmup_runs={max(warmup, 1)}", "--warmup_min_secs=0",
                                   f"--num_runs={self.runs_per_sample}", "--min_secs=0"])
        summary = parse_tflite_benchmark(stdout)
        batches.append(summary)
        return [summary.get("median_ms", summary["inference_avg_ms"])]

    def extra(self) -> dict[str, Any]:
        return dict(self._extra)
