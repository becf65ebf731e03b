"""ONNX export checked against onnxruntime on odd sizes, and weight files."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import tasks.sr as sr
from spaces import BicubicArch, ESPCNArch, FSRCNNArch, WDSRBArch, WDSRBlock
from tasks.sr.export import load_weights, save_weights


@pytest.mark.parametrize("arch", [
    WDSRBArch(2, 16, (WDSRBlock(64, 13), WDSRBlock(24, 9))),
    WDSRBArch(3, 8, (WDSRBlock(16, 8),)),
    FSRCNNArch(4, d=16, s=8, m=2),
    ESPCNArch(2, c1=16, c2=8),
    BicubicArch(3),
], ids=lambda a: f"{a.family}x{a.scale}")
def test_onnx_matches_pytorch_on_an_odd_size(tmp_path, arch):
    torch.manual_seed(0)
    model = sr.build_model(arch)
    path = tmp_path / "model.onnx"
    diff = sr.export_onnx(model, path, sample_hw=(24, 32))
    assert 0 <= diff <= 1e-4
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version == 17
    # a size the exporter never saw, and not the checked one either: 37 x 53
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(2))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert got.shape == (1, 3, 37 * arch.scale, 53 * arch.scale)
    assert np.abs(got - expected).max() < 1e-4


def test_export_leaves_the_model_in_train_mode(tmp_path):
    model = sr.build_model(ESPCNArch(2, c1=8, c2=8))
    assert np.isnan(sr.export_onnx(model, tmp_path / "m.onnx", check=False))
    assert model.training


def test_weights_round_trip_and_refuse_another_arch(tmp_path):
    arch = WDSRBArch(2, 8, (WDSRBlock(16, 8),))
    torch.manual_seed(3)
    model = sr.build_model(arch)
    with torch.no_grad():
        model.tail.weight.normal_()  # not the initial values
    path = save_weights(model, tmp_path / "w.pt")
    loaded = load_weights(arch, path)
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(ValueError, match="holds weights of"):
        load_weights(WDSRBArch(2, 8, (WDSRBlock(24, 8),)), path)
    torch.save({"some": "dict"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an SR weights file"):
        load_weights(arch, tmp_path / "other.pt")
