"""Latency of a run's exported files on this host, each in its own runtime, timed interleaved.

    python benchmarks/export_latency.py RUN_DIR [--collections 2] [--rounds 7] [--threads 1] [--hw 360 640]

Prints one row per collection: each file's least round median (ms), its round spread, and the
median of side-by-side round ratios model.onnx / file; two collections back to back give the
re-measured agreement.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from latency_models.backends.onnxruntime_cpu import session_options
from latency_models.interleave import interleaved_calls
from tasks.sr.export import OnnxModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--collections", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hw", type=int, nargs=2, default=[360, 640])
    args = parser.parse_args()
    files = [p for p in sorted(args.run_dir.glob("model*")) if p.suffix in (".onnx", ".tflite")]
    files.sort(key=lambda p: p.suffix != ".onnx")  # model.onnx first: the reference of the ratios
    if not files:
        raise SystemExit(f"error: no model.onnx or model*.tflite in {args.run_dir}")
    modules = []
    for path in files:
        if path.suffix == ".onnx":
            modules.append(OnnxModule(path, options=session_options(args.threads)))
        else:
            from tasks.sr.tflite import TFLiteModule

            modules.append(TFLiteModule(path, args.threads))
    frame = np.random.default_rng(0).random((1, 3, *args.hw), dtype=np.float32)
    print(f"| collection | file | ms (least round median) | spread | {files[0].name} / file |")
    print("| --- | --- | --- | --- | --- |")
    for c in range(1, args.collections + 1):
        rows = interleaved_calls([lambda m=m: m.invoke(frame) for m in modules], rounds=args.rounds, runs=3, warmup=2)
        for path, r in zip(files, rows):
            ratio = float(np.median([a / b for a, b in zip(rows[0], r)]))
            print(f"| {c} | {path.name} | {min(r):.1f} | {max(r) / min(r):.2f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
