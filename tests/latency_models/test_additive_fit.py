"""Model choice and cost bases of the additive predictor, on synthetic designs (no timing)."""

import numpy as np

from latency_models.predictors import additive_fit as af
from latency_models.predictors.basis import BASES, FEATURES, op_bases
from spaces.ops import Op


def test_a_simpler_candidate_measurably_worse_on_every_network_is_not_kept():
    """Timings with slow outliers spread the errors widely, so the spread of the errors alone
    (the unpaired rule) cannot tell a candidate 2 % off on every network from the right one;
    their per-network difference can."""
    rng = np.random.default_rng(0)
    x = rng.uniform(1.0, 2.0, (30, 3))
    truth = np.array([1.0, 2.0, 3.0])
    y = x @ truth * (1 + rng.uniform(0.0, 0.4, 30))
    simpler = af.Candidate("simpler", "g", lambda a, b: truth * 0.98)
    right = af.Candidate("right", "g", lambda a, b: truth)
    chosen, _, table = af.select({"g": x}, y, [simpler, right], seed=0)
    assert chosen.name == "right", table
    errors = np.abs(x @ truth - y) / y
    assert errors.std() / np.sqrt(len(y)) > table[0]["cv_score"] - table[1]["cv_score"]  # unpaired: kept


def test_a_candidate_as_good_as_the_best_is_kept_when_simpler():
    rng = np.random.default_rng(1)
    x = rng.uniform(1.0, 2.0, (40, 3))
    y = x @ np.array([1.0, 2.0, 3.0]) * (1 + rng.normal(0, 0.05, 40))
    a = af.Candidate("simple", "g", lambda a_, b: np.array([1.0, 2.0, 3.0]))
    b = af.Candidate("same", "g", lambda a_, b: np.array([1.0, 2.0, 3.0]))
    assert af.select({"g": x}, y, [a, b], seed=0)[0].name == "simple"


def test_channel_basis_is_a_cost_per_input_channel_whatever_the_size():
    small = Op("conv2d", ((1, 1104, 4, 4),), (1, 1104, 4, 4), (("groups", 1104), ("kernel_h", 5), ("kernel_w", 5)))
    big = Op("conv2d", ((1, 1104, 64, 64),), (1, 1104, 64, 64), (("groups", 1104), ("kernel_h", 5), ("kernel_w", 5)))
    tokens = Op("linear", ((1, 197, 192),), (1, 197, 768))
    k = BASES.index("kchannel")
    assert op_bases(small)[k] == op_bases(big)[k] == 1.104
    assert op_bases(tokens)[k] == 0.192
    assert sum(f.endswith(".kchannel") for f in FEATURES) == len(FEATURES) // len(BASES)
