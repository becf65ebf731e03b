"""Public API: for_device (collect + fit on first use, cached after), CLI, dependency direction."""

import ast
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import latency_models
from latency_models.cli import main
from latency_models.predictors.additive import BASIS_VERSION
from spaces import WDSRBArch, WDSRBlock, save_arch

PKG = Path(latency_models.__file__).parent


def test_latency_models_imports_neither_tasks_nor_search():
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("tasks", "search"), f"{path} imports {name}"


def test_never_reads_shared_data_at_run_time():
    for path in PKG.rglob("*.py"):
        assert "/shared/" not in path.read_text(), path


def test_for_device_cpu_fits_once_then_reuses(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    first = latency_models.for_device("cpu", threads=1, quick=True, progress=False)
    out = capsys.readouterr().out
    assert "held-out" in out and "re-timed agree" in out  # accuracy printed beside the host's own noise
    files = list((tmp_path / "latency").glob(f"*-t1-hwnas*-basis{BASIS_VERSION}-heapkept-quick.hwlat"))
    assert len(files) == 1
    m = first.manifest
    zoo = m["zoo"]["networks"]  # what it was fitted on, at the reference's speed
    assert m["zoo"]["reference_ms"] > 0 and len(zoo) == m["n_samples"]["models"] + m["zoo"]["n_held_out"]
    assert all(n["ms"] > 0 for n in zoo) and sum(n["held_out"] for n in zoo) == m["zoo"]["n_held_out"]
    assert m["threads"] == 1 and m["n_samples"]["models"] > 5 and m["held_out_metrics"]["predictor"]["n"] >= 3
    assert m["held_out_metrics"]["re_measured"]["n"] == m["held_out_metrics"]["predictor"]["n"]
    start = time.perf_counter()
    again = latency_models.for_device("cpu", threads=1, quick=True)
    assert time.perf_counter() - start < 10  # loaded, not re-measured
    archs = [WDSRBArch(2, 16, (WDSRBlock(64, 13),) * 3)]
    np.testing.assert_array_equal(again.predict_archs(archs, (24, 40)), first.predict_archs(archs, (24, 40)))
    assert 0.05 < first.predict_archs(archs, (24, 40))[0] < 100


def test_torn_cache_is_collected_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    from latency_models.devices import host_predictor_path

    path = host_predictor_path(1, quick=True)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 torn by a kill")
    pred = latency_models.for_device("cpu", threads=1, quick=True, progress=False)
    assert "does not load" in capsys.readouterr().out and pred.manifest["n_samples"]["models"] > 5
    assert latency_models.load(path).manifest["n_samples"] == pred.manifest["n_samples"]


@pytest.mark.slow
def test_two_processes_collect_once(tmp_path):
    code = ("import latency_models; p = latency_models.for_device('cpu', threads=1, quick=True, progress=True); "
            "print('ms', p.predict_archs([__import__('spaces').SRSpace().smallest()], (24, 40))[0])")
    env = {**os.environ, "HWNAS_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    assert sum("no cached predictor" in o for o, _ in outs) == 1, outs
    ms = {o.split("ms ")[-1].strip() for o, _ in outs}
    assert len(ms) == 1  # the second process read the first one's file


def test_host_zoo_spans_every_configured_lr_size():
    import yaml

    from latency_models.host import SR_LR_HW, host_zoo

    conf = Path(__file__).resolve().parents[2] / "conf" / "device"
    sizes = {tuple(yaml.safe_load(p.read_text())["lr_hw"]) for p in conf.glob("*.yaml")}
    assert sizes and sizes <= set(SR_LR_HW)
    shapes = {z.input_shape[2:] for z in host_zoo(random.Random(0))}
    assert set(SR_LR_HW) <= shapes and (224, 224) in shapes


def test_for_device_phone_and_unknown():
    assert latency_models.for_device("s10-dsp", scale=4).manifest["scale"] == 4
    with pytest.raises(latency_models.NoLatencyDataError, match="python -m latency_models collect"):
        latency_models.for_device("pixel9")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "latency_models", *args], capture_output=True, text=True, timeout=120)


def test_cli_as_a_process(tmp_path):
    arch = save_arch(WDSRBArch(2, 16, (WDSRBlock(64, 13),) * 3), tmp_path / "arch.json")
    out = run_cli("predict", "--device", "s21", "--arch", str(arch))
    assert out.returncode == 0 and "32.4" in out.stdout, out.stderr


def test_cli_export_and_errors(tmp_path, capsys):
    arch = str(save_arch(WDSRBArch(2, 16, (WDSRBlock(64, 13),) * 3), tmp_path / "arch.json"))
    assert main(["export", "--device", "s21", "--out", str(tmp_path / "s21.hwlat")]) == 0
    assert latency_models.load(tmp_path / "s21.hwlat").manifest["device"] == "s21-gpu"
    assert main(["predict", "--device", "s21", "--scale", "3", "--arch", arch]) == 2
    assert "python -m latency_models collect" in capsys.readouterr().err
    (tmp_path / "bad.hwlat").write_text("nope")
    assert main(["predict", str(tmp_path / "bad.hwlat"), "--arch", arch]) == 2
    assert "not a zip" in capsys.readouterr().err
    bad = tmp_path / "data.jsonl"
    bad.write_text(json.dumps({"hello": 1}) + "\n")
    assert main(["fit", str(bad), "--out", str(tmp_path / "x.hwlat")]) == 2
    assert "latency dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="give a predictor file or --device"):
        main(["export", "--out", str(tmp_path / "y.hwlat")])


def test_arch_ops_dispatch_by_signature():
    from latency_models.predictors.base import arch_ops
    from spaces import SRSpace
    from spaces.vit import TokenPruneSpace

    vit = TokenPruneSpace.for_model("deit_tiny_patch16_224").arch((0.7, 0.49, 0.343))
    assert arch_ops(vit, (224, 224)) == vit.ops() and arch_ops(vit, None) == vit.ops()
    sr = SRSpace().smallest()
    assert arch_ops(sr, (90, 160)) == sr.ops((90, 160))
    with pytest.raises(ValueError, match="needs input_hw"):
        arch_ops(sr, None)
