"""The guided samplers' feasible start (search/sr/startup.py) with the published S21 model."""

import pytest

import latency_models
from search.sr.startup import feasible_design
from spaces import SRSpace


@pytest.fixture(scope="module")
def s21_ms():
    model = latency_models.load_published("s21", 2)
    return lambda archs: [float(v) for v in model.predict_archs(list(archs))]


@pytest.mark.parametrize("budget_ms", [16.0, 33.3, 66.0])
def test_design_fits_the_band_and_takes_every_width_in_turn(s21_ms, budget_ms):
    space = SRSpace()
    design = feasible_design(space, s21_ms, budget_ms, n=10, seed=0)
    assert len(design) == 10 and len(set(design)) == 10
    for arch, ms in zip(design, s21_ms(design)):
        space.validate(arch)
        assert 0.6 * budget_ms <= ms <= budget_ms, (arch, ms)
    assert [a.channels for a in design[:5]] == [24, 20, 16, 12, 8]  # widest first, each width once
    assert feasible_design(space, s21_ms, budget_ms, n=10, seed=0) == design  # seeded


def test_no_member_fits_gives_an_empty_design(s21_ms):
    assert feasible_design(SRSpace(), s21_ms, 1.0, n=5, seed=0) == []
