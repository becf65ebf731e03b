"""Dataset files and resumable collection, with real timings of tiny models on this CPU."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from latency_models.collect import collect
from latency_models.dataset import DatasetError, LatencyRecord, open_dataset, read_dataset
from latency_models.measure import measure
from latency_models.protocol import reference_positions, shuffled_order
from spaces.ops import Op, conv2d

FAST = {"warmup": 1, "min_repeats": 6, "max_repeats": 12, "window": 5, "max_seconds": 2.0}
SHAPE = (1, 3, 12, 12)


def tiny(channels: int) -> nn.Module:
    torch.manual_seed(channels)
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 3, 3, padding=1))


def conv_ops(module: nn.Module, shape) -> list[Op]:
    """Analytic op list of the conv layers (stands in for latency_models.features.trace_ops)."""
    b, _, h, w = shape
    return [conv2d(b, m.in_channels, m.out_channels, h, w, m.kernel_size[0]) for m in module.modules()
            if isinstance(m, nn.Conv2d)]


def models(n: int):
    return [(f"m{c}", (lambda c=c: tiny(c)), SHAPE) for c in range(2, 2 + n)]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_records_round_trip_typed(tmp_path, suffix):
    net = tiny(4)
    record = LatencyRecord.from_measurement("a", measure(net, SHAPE, **FAST), conv_ops(net, SHAPE))
    path = tmp_path / f"d{suffix}"
    writer = open_dataset(path, {"backend": "torch-cpu", "threads": 1, "host_fingerprint": record.host_fingerprint})
    writer.append(record)
    writer.append(LatencyRecord.from_measurement("ref", measure(net, SHAPE, **FAST), None, role="reference"))
    meta, records = read_dataset(path)
    assert meta["backend"] == "torch-cpu"
    assert records[0] == record
    assert isinstance(records[0].ops[0], Op) and records[0].ops[0].kind == "conv2d"
    assert isinstance(records[0].times_ms, tuple) and isinstance(records[0].stable, bool)
    assert records[1].role == "reference" and records[1].ops is None


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_collect_writes_rows_in_seeded_order_with_reference(tmp_path, suffix):
    path = tmp_path / f"timings{suffix}"
    specs = models(5)
    summary = collect(specs, path, threads=1, reference=("ref", tiny(6), SHAPE), reference_every=2,
                      seed=3, progress=False, featurize=conv_ops, **FAST)
    meta, records = read_dataset(path)
    model_rows = [r.model_id for r in records if r.role == "model"]
    assert model_rows == [specs[i][0] for i in shuffled_order(5, 3)]
    roles = [r.role for r in records]
    assert roles.count("reference") == len(reference_positions(5, 2)) == 4
    assert roles[0] == "reference" and roles[-1] == "reference"
    assert all(len(r.ops) == 2 for r in records if r.role == "model")
    assert meta["threads"] == 1 and meta["reference_id"] == "ref" and meta["versions"]["torch"]
    assert summary.n_measured == 5 and summary.n_skipped == 0
    assert len(summary.drift_pct) == 4 and summary.drift_pct[0] == 0.0
    assert summary.max_abs_drift_pct == max(abs(d) for d in summary.drift_pct)
    json.dumps(summary.to_dict())


def test_killed_collection_keeps_its_rows_and_resumes(tmp_path):
    path = tmp_path / "timings.jsonl"
    specs = models(5)
    order = [specs[i][0] for i in shuffled_order(5, 0)]
    killer = order[2]

    def boom():
        raise KeyboardInterrupt  # the third model to be measured: as if the process were killed

    killed = [(mid, boom if mid == killer else src, shape) for mid, src, shape in specs]
    with pytest.raises(KeyboardInterrupt):
        collect(killed, path, progress=False, **FAST)
    _, records = read_dataset(path)
    assert [r.model_id for r in records] == order[:2]

    with path.open("a") as handle:  # and a row torn in half by the kill
        handle.write('{"model_id": "m9", "role": "mod')
    with pytest.warns(UserWarning, match="torn last line"):
        summary = collect(specs, path, progress=False, **FAST)
    assert summary.n_skipped == 2 and summary.n_measured == 3
    _, records = read_dataset(path)
    assert sorted(r.model_id for r in records) == sorted(mid for mid, _, _ in specs)
    again = collect(specs, path, progress=False, **FAST)
    assert again.n_measured == 0 and again.n_skipped == 5


def test_corrupt_files_give_clear_errors(tmp_path):
    path = tmp_path / "timings.jsonl"
    collect(models(2), path, progress=False, **FAST)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], "{not json", lines[2]]) + "\n")
    with pytest.raises(DatasetError, match="line 3 is not a valid record"):
        read_dataset(path)
    with pytest.raises(DatasetError, match="line 3"):
        collect(models(2), path, progress=False, **FAST)

    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="not a hwnas.latency_dataset header"):
        read_dataset(other)
    bad_row = tmp_path / "t.csv"
    collect(models(1), bad_row, progress=False, **FAST)
    with bad_row.open("a") as handle:
        handle.write("m99,model,[1],oops\n")
    with pytest.raises(DatasetError, match="line 4 is not a valid record"):
        read_dataset(bad_row)
    with pytest.raises(DatasetError, match="unsupported dataset suffix"):
        read_dataset(tmp_path / "t.parquet")


def test_appending_with_other_settings_is_refused(tmp_path):
    path = tmp_path / "timings.jsonl"
    collect(models(1), path, threads=1, progress=False, **FAST)
    with pytest.raises(DatasetError, match="threads: file has 1, collection has 2"):
        collect(models(2), path, threads=2, progress=False, **FAST)


def test_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(ValueError, match="appears twice"):
        collect([("a", tiny(2), SHAPE), ("a", tiny(3), SHAPE)], tmp_path / "t.jsonl", progress=False)
    with pytest.raises(ValueError, match="reference id 'a'"):
        collect([("a", tiny(2), SHAPE)], tmp_path / "t.jsonl", reference=("a", tiny(2), SHAPE), progress=False)
    assert not Path(tmp_path / "t.jsonl").exists()
