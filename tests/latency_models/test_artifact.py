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


def _flip_member_byte(src, dst):
    """Flip one byte inside the deflated payload of the first non-manifest member."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = next(i for i in zf.infolist() if i.filename != "manifest.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def test_bit_flip_is_one_artifact_error(tmp_path, good):
    bad = _flip_member_byte(good, tmp_path / "flip.hwlat")
    with pytest.raises(LatencyArtifactError, match="flip.hwlat: not a readable predictor file"):
        latency_models.load(bad)


def test_wrong_member_types_and_payload_shape(tmp_path, good):
    with pytest.raises(LatencyArtifactError, match="'payload' is str"):
        latency_models.load(_rewrite_manifest(good, tmp_path / "p.hwlat", payload="coef.npz"))
    with zipfile.ZipFile(tmp_path / "exe.hwlat", "w") as zf, zipfile.ZipFile(good) as zin:
        for name in zin.namelist():
            zf.writestr(name, zin.read(name))
        zf.writestr("run.sh", b"rm -rf /")
    with pytest.raises(LatencyArtifactError, match="of no type a predictor file holds"):
        latency_models.load(tmp_path / "exe.hwlat")


def _onnx_member(external: bool) -> bytes:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    if external:
        w.data_location = onnx.TensorProto.EXTERNAL
        w.ClearField("raw_data")
        for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])], [w])
    return helper.make_model(graph).SerializeToString()


@pytest.mark.parametrize("blob, message", [(b"not a protobuf \xff\xfe", "not a valid ONNX model"),
                                           (None, "references external data")])
def test_onnx_members_must_parse_and_hold_their_weights(tmp_path, good, blob, message):
    path = tmp_path / "onnx.hwlat"
    with zipfile.ZipFile(path, "w") as zf, zipfile.ZipFile(good) as zin:
        for name in zin.namelist():
            zf.writestr(name, zin.read(name))
        zf.writestr("extra.onnx", _onnx_member(True) if blob is None else blob)
    with pytest.raises(LatencyArtifactError, match=message):
        latency_models.load(path)


BOMB_CHECK = """
import resource, sys
import latency_models
from latency_models.cli import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(["predict", sys.argv[1], "--arch", sys.argv[2]])
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(f"rc={code} grown_mb={grown_mb:.0f}")
"""


@pytest.mark.slow
def test_small_file_with_a_huge_member_is_refused_without_inflating_it(tmp_path, good):
    import subprocess
    import sys

    from spaces import SRSpace, save_arch

    bomb = tmp_path / "bomb.hwlat"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zipfile.ZipFile(good) as zin:
        zf.writestr("manifest.json", zin.read("manifest.json"))
        with zf.open("coef.npz", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(512):
                member.write(block)
    assert bomb.stat().st_size < 3 * 2**20
    arch = save_arch(SRSpace().smallest(), tmp_path / "arch.json")
    out = subprocess.run([sys.executable, "-c", BOMB_CHECK, str(bomb), str(arch)], capture_output=True, text=True,
                         timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "inflates to more than 64 MiB" in lines[0], out.stderr
    rc, grown = out.stdout.split()
    assert rc == "rc=2" and float(grown.split("=")[1]) < 200, out.stdout
    flipped = _flip_member_byte(good, tmp_path / "flip.hwlat")
    out = subprocess.run([sys.executable, "-m", "latency_models", "predict", str(flipped), "--arch", str(arch)],
                         capture_output=True, text=True, timeout=120)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "flip.hwlat" in lines[0]
