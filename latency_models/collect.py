"""Measure a collection of models into a dataset file, resumably, watching for drift.

::

    summary = collect(
        models,                        # iterable of (model_id, module or zero-arg factory, input_shape)
        "timings.jsonl",               # .jsonl or .csv, see latency_models.dataset
        backend="torch-cpu",           # any registered backend name, or a Backend instance
        threads=1,
        reference=("ref", ref_module, (1, 3, 180, 320)),  # optional drift probe
        reference_every=10,            # re-measure the reference after every 10 models
        seed=0,                        # measuring order: seeded numpy Generator
        progress=True,                 # tqdm bar: models done, ETA, last median, drift
        featurize=trace_ops,           # optional (module, input_shape) -> list[Op], stored per row
        backend_options=None,          # e.g. {"serial": "R58M..."} for adb
        meta=None,                     # extra header fields
        **protocol_kwargs,             # warmup, min_repeats, max_repeats, rel_tol, window, max_seconds
    )
    summary.drift_pct, summary.max_abs_drift_pct, summary.n_measured

Order of work: models already in the file (same ids, role "model") are skipped; the rest are
measured in a random order drawn from ``numpy.random.default_rng(seed)``, so slow drift of the
machine spreads over all model families instead of biasing one. The reference runs before the
first model, after every ``reference_every`` models and after the last; its medians over the
whole file (earlier sessions included) give the drift, as % of the first reference median.
Every row is flushed as soon as it is measured: kill the process and call ``collect`` again
with the same arguments to finish the collection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from latency_models.backends import Backend
from latency_models.dataset import LatencyRecord, open_dataset
from latency_models.hostinfo import package_version
from latency_models.measure import measure, resolve_backend
from latency_models.protocol import Protocol, drift_pct, reference_positions, shuffled_order
from spaces.ops import Op

ModuleSource = torch.nn.Module | Callable[[], torch.nn.Module]
ModelSpec = tuple[str, ModuleSource, Sequence[int]]
Featurize = Callable[[torch.nn.Module, Sequence[int]], Sequence[Op]]


@dataclass(frozen=True)
class CollectSummary:
    """What a :func:`collect` call did. Medians in ms, drift in % of the first reference median."""

    path: str
    n_models: int  # models given
    n_measured: int  # measured by this call
    n_skipped: int  # already in the file
    reference_id: str | None
    reference_medians_ms: tuple[float, ...]  # all reference rows in the file, in order
    drift_pct: tuple[float, ...]
    max_abs_drift_pct: float
    elapsed_s: float

    @property
    def final_drift_pct(self) -> float:
        return self.drift_pct[-1] if self.drift_pct else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["final_drift_pct"] = self.final_drift_pct
        return data


def _build(source: ModuleSource) -> torch.nn.Module:
    module = source if isinstance(source, torch.nn.Module) else source()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"a model factory returned {type(module).__name__}, not a torch.nn.Module")
    return module


def _check_models(models: Iterable[ModelSpec]) -> list[ModelSpec]:
    specs = [(str(mid), source, tuple(shape)) for mid, source, shape in models]
    seen: set[str] = set()
    for mid, _, _ in specs:
        if mid in seen:
            raise ValueError(f"model id {mid!r} appears twice; ids key the dataset rows and must be unique")
        seen.add(mid)
    return specs


def _header(engine: Backend, threads: int, protocol: Protocol, seed: int, reference: ModelSpec | None,
            reference_every: int, meta: Mapping[str, Any] | None) -> dict[str, Any]:
    host = engine.host()
    return {
        "backend": engine.name, "threads": threads, "host_fingerprint": host.get("fingerprint"), "host": host,
        "protocol": protocol.to_dict(), "seed": seed,
        "reference_id": None if reference is None else str(reference[0]), "reference_every": reference_every,
        "versions": {name: package_version(name) for name in ("hwnas", "torch", "onnxruntime", "numpy", "onnx")},
        **dict(meta or {}),
    }


def _measure_in_order(todo: list[ModelSpec], order: list[int], ref_spec: ModelSpec | None, ref_after: set[int],
                      run: Callable[[ModelSpec, str], float], writer: Any, bar: Any) -> None:
    """The models in ``order``, the reference before the positions in ``ref_after`` (and after the
    last model when its position is there), each appended to the dataset as it is measured."""
    drift_text = ""
    for i, index in enumerate(order):
        if i in ref_after:
            run(ref_spec, "reference")  # type: ignore[arg-type]
            drift_text = f" ref drift={_drifts(writer)[-1]:+.1f}%"
        median_ms = run(todo[index], "model")
        bar.update(1)
        bar.set_postfix_str(f"last={median_ms:.2f}ms{drift_text}", refresh=False)
    if len(todo) in ref_after and (todo or not _reference_medians(writer)):
        run(ref_spec, "reference")  # type: ignore[arg-type]


def collect(
    models: Iterable[ModelSpec],
    path: str | os.PathLike[str],
    backend: str | Backend = "torch-cpu",
    threads: int = 1,
    *,
    reference: ModelSpec | None = None,
    reference_every: int = 10,
    seed: int = 0,
    progress: bool = True,
    featurize: Featurize | None = None,
    backend_options: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    **protocol_kwargs: Any,
) -> CollectSummary:
    """Measure ``models`` into the dataset at ``path`` (see the module docstring)."""
    start = time.perf_counter()
    specs = _check_models(models)
    ref_spec = None if reference is None else _check_models([reference])[0]
    if ref_spec is not None and ref_spec[0] in {mid for mid, _, _ in specs}:
        raise ValueError(f"reference id {ref_spec[0]!r} is also a model id; give the reference its own id")
    protocol = Protocol.from_kwargs(**protocol_kwargs)
    engine = resolve_backend(backend, **dict(backend_options or {}))
    writer = open_dataset(path, _header(engine, threads, protocol, seed, ref_spec, reference_every, meta))
    done = writer.done_ids("model")
    todo = [spec for spec in specs if spec[0] not in done]
    order = shuffled_order(len(todo), seed)
    ref_after = set(reference_positions(len(todo), reference_every)) if ref_spec is not None else set()

    def run(spec: ModelSpec, role: str) -> float:
        mid, source, shape = spec
        module = _build(source)
        measurement = measure(module, shape, engine, threads, **protocol.to_dict())
        ops = None if featurize is None or role == "reference" else list(featurize(module, shape))
        writer.append(LatencyRecord.from_measurement(mid, measurement, ops, role=role))
        return measurement.median_ms

    from tqdm.auto import tqdm

    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"{engine.name} t={threads}",
               unit="model", disable=not progress)
    try:
        _measure_in_order(todo, order, ref_spec, ref_after, run, writer, bar)
    finally:
        bar.close()
    medians = _reference_medians(writer)
    drifts = drift_pct(medians)
    return CollectSummary(
        path=str(Path(path)), n_models=len(specs), n_measured=len(todo), n_skipped=len(specs) - len(todo),
        reference_id=None if ref_spec is None else ref_spec[0], reference_medians_ms=tuple(medians),
        drift_pct=tuple(drifts), max_abs_drift_pct=max((abs(d) for d in drifts), default=0.0),
        elapsed_s=time.perf_counter() - start,
    )


def _reference_medians(writer: Any) -> list[float]:
    return [r.median_ms for r in writer.records if r.role == "reference"]


def _drifts(writer: Any) -> list[float]:
    return drift_pct(_reference_medians(writer)) or [0.0]
