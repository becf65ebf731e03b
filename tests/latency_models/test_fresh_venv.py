"""An exported predictor loads and predicts where only torch, onnxruntime, numpy (and their
import-time dependencies) and this package exist: no scikit-learn, skl2onnx, scipy or timm.

A full venv with a fresh torch install is ~5.5 GB and minutes; instead the check runs in an
isolated interpreter (``python -I -S``: no site-packages, no user site) whose ``sys.path`` is
one directory of symlinks to exactly those packages.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import latency_models
from spaces import SRSpace, WDSRBArch, WDSRBlock
from spaces.sampling import RandomSuggester

ROOT = Path(latency_models.__file__).resolve().parents[1]
ALLOWED = ("torch", "torchgen", "functorch", "numpy", "numpy.libs", "onnxruntime", "typing_extensions.py",
           "sympy", "mpmath", "filelock", "networkx", "jinja2", "markupsafe", "fsspec", "packaging",
           "flatbuffers", "google", "yaml")

CHECK = """
import json, sys
for banned in ("sklearn", "skl2onnx", "scipy", "timm"):
    try:
        __import__(banned)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{banned} is importable in the fresh environment")
import latency_models
from spaces import WDSRBArch, WDSRBlock
pred = latency_models.load(sys.argv[1])
s21 = latency_models.load_published("s21", 2)
archs = [WDSRBArch(2, c, tuple(WDSRBlock(m1, m2) for m1, m2 in blocks)) for c, blocks in json.loads(sys.argv[2])]
print(json.dumps({"cpu": pred.predict_archs(archs, (24, 40)).tolist(), "s21": s21.predict_archs(archs).tolist(),
                  "banned_loaded": sorted(set(sys.modules) & {"sklearn", "skl2onnx", "scipy", "timm"})}))
"""


def _site(tmp: Path) -> Path:
    site = tmp / "site"
    site.mkdir()
    pkgs = Path(torch.__file__).resolve().parents[1]
    assert Path(onnxruntime.__file__).resolve().parents[1] == pkgs
    for name in ALLOWED:
        if (pkgs / name).exists():
            (site / name).symlink_to(pkgs / name)
    for name in ("latency_models", "spaces"):
        (site / name).symlink_to(ROOT / name)
    return site


def test_exported_predictor_loads_without_sklearn(tmp_path):
    # A real additive predictor fitted on analytic ops with made-up network times: what is
    # checked here is the file format and the loader, not accuracy.
    space = SRSpace(max_blocks=4)
    archs = [space.sample(RandomSuggester(i)) for i in range(40)]
    op_lists = [a.ops((24, 40)) for a in archs]
    ys = [0.05 + sum(1e-6 * (1 + sum(o.output)) * (3 if o.kind == "conv2d" else 1) for o in ops) for ops in op_lists]
    pred = latency_models.fit(list(zip(op_lists, [None] * len(ys), ys)))
    path = pred.save(tmp_path / "cpu.hwlat")
    probe = [WDSRBArch(2, 16, (WDSRBlock(64, 13), WDSRBlock(37, 11))), WDSRBArch(2, 9, (WDSRBlock(5, 3),))]
    spec = json.dumps([[a.channels, [[b.m1, b.m2] for b in a.blocks]] for a in probe])
    code = f"import sys; sys.path[:0] = [{str(_site(tmp_path))!r}]\n" + CHECK
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(path), spec], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["banned_loaded"] == []
    np.testing.assert_allclose(got["cpu"], pred.predict_archs(probe, (24, 40)), rtol=1e-6)
    np.testing.assert_allclose(got["s21"], latency_models.load_published("s21", 2).predict_archs(probe), rtol=1e-12)
