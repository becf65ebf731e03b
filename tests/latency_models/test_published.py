"""The shipped published phone block models: values from PROVENANCE.md, API of the search app."""

import time
import warnings

import numpy as np
import pytest
import torch

import latency_models
from latency_models.devices import PUBLISHED, artifacts_dir
from spaces import FSRCNNArch, SRSpace, WDSRBArch, WDSRBlock
from spaces.sampling import RandomSuggester


@pytest.fixture(scope="module")
def s21():
    return latency_models.load_published("s21", 2)


def test_values_match_provenance(s21):
    # Values read off S21_gpu_block_b_x2 in the published weights' PROVENANCE.md (ms).
    x = np.array([[24, 144, 20, 24], [16, 96, 13, 16], [8, 48, 8, 8], [32, 192, 27, 32]])
    np.testing.assert_allclose(s21.block_latency(x), [24.42, 13.32, 5.92, 43.74], atol=0.006)
    supernet = WDSRBArch(2, 24, (WDSRBlock(144, 20),) * 16)
    assert s21.predict_archs([supernet])[0] == pytest.approx(391, abs=0.5)
    # 3 blocks of [16, 64, 13] (the paper's S21 search result) -> 32.4 ms with these weights
    assert s21.predict_archs([WDSRBArch(2, 16, (WDSRBlock(64, 13),) * 3)])[0] == pytest.approx(32.4, abs=0.05)


def test_torch_block_latency_is_differentiable_and_equal(s21):
    x = torch.tensor([[24.0, 144, 20, 24], [8, 48, 8, 8]], requires_grad=True)
    y = s21.torch_block_latency(x)
    np.testing.assert_allclose(y.detach().numpy(), s21.block_latency(x.detach().numpy()), rtol=1e-5)
    y.sum().backward()
    # Inside the box the model increases in every input.
    assert (x.grad[0, :3] > 0).all()
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        s21.torch_block_latency(torch.zeros(3))


def test_fitted_box_and_manifest(s21):
    assert s21.in_fitted_box(WDSRBArch(2, 24, (WDSRBlock(144, 20),)))
    assert not s21.in_fitted_box(WDSRBArch(2, 48, (WDSRBlock(288, 40),)))
    m = s21.manifest
    assert m["schema"] == "hwnas.latency_predictor" and m["schema_version"] == 1
    assert m["device"] == "s21-gpu" and m["fitted_box"] == {"C": [8, 24], "M1": [8, 144], "M2": [8, 20]}
    assert any("PixelShuffle" in s for s in m["not_modelled"])
    assert "2207.12577" in m["provenance"]["citation"] and m["kind"] == "published_block_mlp"


def test_all_shipped_models_load_and_are_distinct():
    vec = np.array([[16, 96, 13, 16]])
    values = {key: latency_models.load_published(*key).block_latency(vec)[0] for key in PUBLISHED}
    assert len(set(np.round(list(values.values()), 4))) == len(PUBLISHED)
    assert all(0 < v < 100 for v in values.values())
    assert latency_models.for_device("s21").manifest["device"] == "s21-gpu"


def test_unknown_device_or_scale_says_how_to_collect():
    for device, scale in (("pixel7", 2), ("s21", 4)):
        with pytest.raises(latency_models.NoLatencyDataError, match="python -m latency_models collect"):
            latency_models.load_published(device, scale)


def test_other_inputs_raise_clearly(s21):
    with pytest.raises(TypeError, match="WDSR-B"):
        s21.predict_archs([FSRCNNArch(2)])
    with pytest.raises(TypeError, match="for_device"):
        s21.predict(torch.nn.Conv2d(3, 3, 3), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="x4"):
        s21.predict_archs([WDSRBArch(4, 16, (WDSRBlock(64, 13),))])
    arch = WDSRBArch(2, 16, (WDSRBlock(64, 13),))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quarter = s21.predict_archs([arch], input_hw=(180, 320))[0]
    assert quarter == pytest.approx(s21.predict_archs([arch])[0] / 4) and caught


def test_10000_archs_under_5_seconds(s21):
    space = SRSpace()
    archs = [space.sample(RandomSuggester(seed)) for seed in range(10_000)]
    start = time.perf_counter()
    ms = s21.predict_archs(archs)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0 and ms.shape == (10_000,)
    i = 1234
    assert ms[i] == pytest.approx(s21.block_latency(np.array(archs[i].block_vectors())).sum())


def test_save_roundtrip(s21, tmp_path):
    path = s21.save(tmp_path / "copy.hwlat")
    again = latency_models.load(path)
    arch = WDSRBArch(2, 20, (WDSRBlock(120, 17), WDSRBlock(8, 8)))
    assert again.predict_archs([arch])[0] == pytest.approx(s21.predict_archs([arch])[0], rel=1e-12)
    assert again.manifest["provenance"] == s21.manifest["provenance"]


def test_shipped_files_live_in_the_package():
    for name in PUBLISHED.values():
        assert (artifacts_dir() / name).is_file()


def test_outside_range_names_the_block_and_the_box(s21):
    inside = WDSRBArch(2, 24, (WDSRBlock(144, 20),))
    outside = WDSRBArch(2, 48, (WDSRBlock(288, 40),) * 16)
    assert s21.outside_range([inside, outside]) == [
        None, "block (C=48, M1=288, M2=40) outside the box the published model was fitted on (C 8-24, M1 8-144, M2 8-20)"]
