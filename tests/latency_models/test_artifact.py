"""The .hwlat file format: corrupt, foreign and newer files fail with a clear message."""

import json
import zipfile

import pytest

import latency_models
from latency_models.artifact import SCHEMA_VERSION, LatencyArtifactError


@pytest.fixture
def good(tmp_path):
    return latency_models.load_published("s21", 2).save(tmp_path / "good.hwlat")


def _rewrite_manifest(src, dst, **changes):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "manifest.json":
                doc = json.loads(data)
                doc.update(changes)
                data = json.dumps(doc).encode()
            zout.writestr(name, data)
    return dst


def test_missing_file(tmp_path):
    with pytest.raises(LatencyArtifactError, match="no such predictor file"):
        latency_models.load(tmp_path / "nope.hwlat")


def test_corrupt_file(tmp_path, good):
    bad = tmp_path / "bad.hwlat"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(LatencyArtifactError, match="corrupt"):
        latency_models.load(bad)
    (tmp_path / "text.hwlat").write_text("hello")
    with pytest.raises(LatencyArtifactError, match="not a zip"):
        latency_models.load(tmp_path / "text.hwlat")


def test_foreign_zip(tmp_path, good):
    with zipfile.ZipFile(tmp_path / "foreign.hwlat", "w") as zf:
        zf.writestr("model.pkl", b"x")
    with pytest.raises(LatencyArtifactError, match="without manifest.json"):
        latency_models.load(tmp_path / "foreign.hwlat")
    other = _rewrite_manifest(good, tmp_path / "other.hwlat", schema="nn-meter")
    with pytest.raises(LatencyArtifactError, match="foreign file"):
        latency_models.load(other)


def test_newer_schema_asks_for_upgrade(tmp_path, good):
    newer = _rewrite_manifest(good, tmp_path / "newer.hwlat", schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(LatencyArtifactError, match="Upgrade hwnas"):
        latency_models.load(newer)


def test_unknown_kind_and_truncated_payload(tmp_path, good):
    kind = _rewrite_manifest(good, tmp_path / "kind.hwlat", predictor={"kind": "quantum"})
    with pytest.raises(LatencyArtifactError, match="unknown predictor kind 'quantum'"):
        latency_models.load(kind)
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(tmp_path / "trunc.hwlat", "w") as zout:
        zout.writestr("manifest.json", zin.read("manifest.json"))
    with pytest.raises(LatencyArtifactError, match="missing"):
        latency_models.load(tmp_path / "trunc.hwlat")


def test_no_pickle_in_shipped_artifacts():
    from latency_models.devices import PUBLISHED, artifacts_dir

    for name in PUBLISHED.values():
        with zipfile.ZipFile(artifacts_dir() / name) as zf:
            assert all(n.endswith((".json", ".npz", ".onnx")) for n in zf.namelist())
            assert not any(b"pickle" in zf.read(n)[:64] for n in zf.namelist())
