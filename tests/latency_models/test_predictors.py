"""The additive predictor fitted on real timings of small models on this CPU (interleaved
rounds); lookup table and surrogate derived from it; save/load round trips."""

import random

import numpy as np
import pytest
import torch

import latency_models
from latency_models.evaluate import FlopsLinear, metrics
from latency_models.features import total_flops, trace_ops
from latency_models.interleave import interleaved_ms
from latency_models.predictors import AdditivePredictor, BlockLUTPredictor
from latency_models.predictors.additive import BASIS_VERSION
from latency_models.predictors.surrogate import distill
from latency_models.zoo import cnn_models, sr_models
from spaces import SRSpace, WDSRBArch, WDSRBlock

HW = (24, 40)
SPACE = SRSpace(max_blocks=6)


@pytest.fixture(scope="module")
def fitted():
    rng = random.Random(0)
    models = sr_models(22, rng, lr_hw=HW, space=SPACE) + cnn_models(4, rng, hw=HW)
    ys = [t.ms for t in interleaved_ms([(m.build(), m.input_shape) for m in models], 1, rounds=3, runs=3)]
    fit_idx, test_idx = list(range(4, 26)), list(range(4))  # 18 SR + 4 CNN fit, 4 SR held out
    pred = latency_models.fit(((models[i].build(), models[i].input_shape, ys[i]) for i in fit_idx), threads=1,
                              device="cpu", backend="torch-cpu")
    return pred, models, ys, test_idx, fit_idx


def test_fit_predicts_held_out_timings(fitted):
    pred, models, ys, test_idx, fit_idx = fitted
    assert isinstance(pred, AdditivePredictor) and pred.manifest["n_samples"]["models"] == 22
    got = [pred.predict(models[i].build(), models[i].input_shape) for i in test_idx]
    m = metrics([ys[i] for i in test_idx], got)
    # Small models on a shared 2-core machine: a loose bound that a broken predictor still fails.
    assert m["mape_pct"] < 35, (m, got, [ys[i] for i in test_idx])
    archs = [models[i].arch for i in test_idx]
    np.testing.assert_allclose(pred.predict_archs(archs, HW), got, rtol=1e-9)  # analytic == traced


@pytest.mark.parametrize("graph", ["eager", "compiled"])
def test_analytic_and_traced_predictions_agree_in_each_graph_mode(fitted, graph):
    """The fit picks its graph mode by cross-validation, so both must hold whatever it picks."""
    _, models, ys, test_idx, fit_idx = fitted
    pred = latency_models.fit(((models[i].build(), models[i].input_shape, ys[i]) for i in fit_idx), threads=1,
                              device="cpu", backend="torch-cpu", graph=graph)
    assert pred.graph == graph
    got = [pred.predict(models[i].build(), models[i].input_shape) for i in test_idx]
    np.testing.assert_allclose(pred.predict_archs([models[i].arch for i in test_idx], HW), got, rtol=1e-9)


def test_flops_baseline_and_metrics():
    m = metrics([10.0, 20.0, 40.0], [10.4, 23.0, 40.0])
    assert m["within_5pct"] == pytest.approx(2 / 3) and m["within_10pct"] == pytest.approx(2 / 3)
    assert m["mape_pct"] == pytest.approx(100 * (0.04 + 0.15) / 3) and m["spearman_rho"] == pytest.approx(1.0)
    base = FlopsLinear().fit([1.0, 2.0, 4.0], [11.0, 21.0, 41.0])
    np.testing.assert_allclose(base.predict([3.0]), [31.0], rtol=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        metrics([], [])


def test_save_load_identical_and_no_pickle(fitted, tmp_path):
    pred, models, *_ = fitted
    path = pred.save(tmp_path / "cpu.hwlat")
    again = latency_models.load(path)
    archs = [SPACE.sample(__import__("spaces.sampling").sampling.RandomSuggester(s)) for s in range(50)]
    np.testing.assert_array_equal(again.predict_archs(archs, HW), pred.predict_archs(archs, HW))
    m = again.manifest
    assert m["threads"] == 1 and m["backend"] == "torch-cpu" and m["library_versions"]["torch"]
    assert m["feature_schema"]["basis_version"] == BASIS_VERSION and m["predictor"]["learned_from"] == "networks"
    import zipfile

    with zipfile.ZipFile(path) as zf:
        assert all(n.endswith((".json", ".onnx", ".npz")) for n in zf.namelist())


def test_unseen_op_kind_is_warned_not_zero(fitted):
    pred = fitted[0]
    with pytest.warns(UserWarning, match="never measured"):  # no fitting network had a softmax
        ms = pred.predict(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Softmax(-1)), (1, 3, 24, 40))
    assert ms > 0


def test_lookup_table_matches_teacher(fitted):
    pred = fitted[0]
    lut = BlockLUTPredictor.from_teacher(pred, SPACE, HW)
    archs = [WDSRBArch(2, 16, (WDSRBlock(64, 13), WDSRBlock(8, 20), WDSRBlock(144, 8))), SPACE.smallest()]
    np.testing.assert_allclose(lut.predict_archs(archs, HW), pred.predict_archs(archs, HW), rtol=1e-6)
    with pytest.raises(ValueError, match="outside the table"):
        lut.predict_archs([WDSRBArch(2, 17, (WDSRBlock(64, 13),))])


def test_surrogate_is_close_and_differentiable(fitted, tmp_path):
    pred = fitted[0]
    sur = distill(pred, SPACE, HW, n_archs=500, steps=1000)
    assert sur.manifest["teacher_fidelity"]["within_10pct"] >= 0.8, sur.manifest["teacher_fidelity"]
    again = latency_models.load(sur.save(tmp_path / "sur.hwlat"))
    arch = WDSRBArch(2, 16, (WDSRBlock(64, 13), WDSRBlock(32, 10)))
    c = torch.tensor(16.0, requires_grad=True)
    m1 = torch.tensor([64.0, 32.0], requires_grad=True)
    m2 = torch.tensor([13.0, 10.0])
    ms = again.torch_arch_latency(c, m1, m2, keep=torch.ones(2))
    assert ms.item() == pytest.approx(again.predict_archs([arch], HW)[0], rel=1e-5)
    ms.backward()
    assert c.grad.item() != 0 and m1.grad.abs().sum().item() > 0


def test_gflops_of_traced_model():
    model = sr_models(1, random.Random(5), lr_hw=HW)[0]
    assert total_flops(trace_ops(model.build(), model.input_shape)) > 0
