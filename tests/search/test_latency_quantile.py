"""latency.quantile: the search's constraint reads the predictor's upper bound, so a candidate
whose interval reaches past the budget counts as infeasible."""


import numpy as np
import pytest

import latency_models
from latency_models.interleave import interleaved_ms
from latency_models.zoo import WDSRB
from search.errors import UserError
from search.latency import make_estimator
from search.settings import DeviceProfile
from spaces import SRSpace
from spaces.sampling import RandomSuggester

HW = (12, 20)


@pytest.fixture(scope="module")
def predictor_path(tmp_path_factory):
    space = SRSpace(max_blocks=3)
    archs = [space.sample(RandomSuggester(s)) for s in range(16)]
    ms = [t.ms for t in interleaved_ms([(WDSRB(a), (1, 3, *HW)) for a in archs], 1, rounds=2, runs=3)]
    pred = latency_models.fit([(WDSRB(a), (1, 3, *HW), m) for a, m in zip(archs, ms)], device="cpu")
    return str(pred.save(tmp_path_factory.mktemp("q") / "cpu.hwlat")), space


def estimator(path, quantile):
    device = DeviceProfile("cpu", "this host", HW, 10.0, "predictor", 1)
    return make_estimator(device, {"kind": "predictor", "path": path, "quantile": quantile, "allow_extrapolation": False},
                          2, WDSRB)


def test_upper_quantile_is_at_least_the_point(predictor_path):
    path, space = predictor_path
    archs = [space.sample(RandomSuggester(100 + s)) for s in range(20)]
    point = np.array(estimator(path, None).latencies_ms(archs))
    upper = np.array(estimator(path, 0.9).latencies_ms(archs))
    assert np.all(upper > point) and "upper 90% bound" in estimator(path, 0.9).source
    assert np.all(np.array(estimator(path, 0.97).latencies_ms(archs)) >= upper)


@pytest.mark.parametrize("bad", [0.3, 1.0, float("nan"), 7])
def test_bad_quantile_is_one_line(predictor_path, bad):
    with pytest.raises(UserError, match="latency.quantile"):
        estimator(predictor_path[0], bad)


def test_quantile_needs_a_predictor_with_intervals(tmp_path):
    lut_path = latency_models.load_published("s21", 2).save(tmp_path / "s21.hwlat")
    with pytest.raises(UserError, match="gives no intervals"):
        estimator(str(lut_path), 0.9)
