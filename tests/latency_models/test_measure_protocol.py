"""The stopping rule, bounds, random order and drift arithmetic of latency_models.protocol."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from latency_models.measure import measure
from latency_models.protocol import (
    Protocol,
    drift_pct,
    is_stable,
    reference_positions,
    run_batched,
    run_protocol,
    shuffled_order,
    summarize,
)


def sequence(values):
    it = iter(values)
    return lambda: next(it)


def test_constant_times_stop_at_min_repeats_and_warmups_are_dropped():
    p = Protocol(warmup=3, min_repeats=10, max_repeats=100, window=5)
    t = run_protocol(sequence([500.0, 400.0, 300.0] + [10.0] * 100), p)
    assert t.times_ms == (10.0,) * 10 and t.stable and t.stop_reason == "stable"


def test_drifting_times_hit_max_repeats():
    p = Protocol(warmup=0, min_repeats=10, max_repeats=30, window=5, rel_tol=0.01)
    t = run_protocol(sequence(float(10 + i) for i in itertools.count()), p)  # 10, 11, 12, ... never settles
    assert len(t.times_ms) == 30 and not t.stable and t.stop_reason == "max_repeats"


def test_max_seconds_bounds_the_loop_after_min_repeats():
    ticks = itertools.count()
    p = Protocol(warmup=0, min_repeats=6, max_repeats=1000, window=5, max_seconds=20.0)
    t = run_protocol(sequence(float(1 + i) for i in itertools.count()), p, clock=lambda: float(next(ticks)))
    # The clock is read at the start and once per run from min_repeats on: 21 > 20 s at run 26.
    assert t.stop_reason == "max_seconds" and len(t.times_ms) == 26


def test_stable_real_model_stops_before_max_repeats():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1))
    m = measure(net, (1, 3, 48, 48), warmup=5, min_repeats=10, max_repeats=300, rel_tol=0.01, window=5)
    assert m.stable and m.stop_reason == "stable"
    assert 10 <= m.n_repeats < 300
    assert is_stable(m.times_ms, 5, 0.01)


def test_summary_statistics():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert s["median_ms"] == 5.5 and s["iqr_ms"] == pytest.approx(4.5)
    assert s["p10_ms"] == pytest.approx(1.9) and s["p90_ms"] == pytest.approx(9.1)
    with pytest.raises(ValueError, match="no times"):
        summarize([])


def test_protocol_validates_its_bounds():
    with pytest.raises(ValueError, match="must exceed window"):
        Protocol(min_repeats=5, window=5)
    with pytest.raises(ValueError, match="max_repeats"):
        Protocol(min_repeats=10, max_repeats=9)
    with pytest.raises(ValueError, match="rel_tol"):
        Protocol(rel_tol=0.0)
    with pytest.raises(ValueError, match="finite"):
        run_protocol(lambda: float("nan"), Protocol(warmup=0))


def test_batched_loop_asks_min_repeats_then_windows_and_respects_max():
    asked = []
    counter = itertools.count()

    def batch(n):
        asked.append(n)
        return [float(10 + next(counter)) for _ in range(n)]  # every run slower: never stable

    t = run_batched(batch, Protocol(min_repeats=10, max_repeats=22, window=5))
    assert asked == [10, 5, 5, 2] and len(t.times_ms) == 22 and t.stop_reason == "max_repeats"
    t = run_batched(lambda n: [7.0] * n, Protocol(min_repeats=10, window=5))
    assert len(t.times_ms) == 10 and t.stable


def test_shuffled_order_is_seeded_and_leaves_global_rng_alone():
    state = np.random.get_state()[1].copy()
    a, b, c = shuffled_order(30, seed=1), shuffled_order(30, seed=1), shuffled_order(30, seed=2)
    assert a == b and a != c and sorted(a) == list(range(30)) and a != list(range(30))
    assert (np.random.get_state()[1] == state).all()


def test_reference_positions_and_drift():
    assert reference_positions(5, 2) == [0, 2, 4, 5]
    assert reference_positions(6, 3) == [0, 3, 6]
    assert reference_positions(0, 4) == [0]
    assert drift_pct([10.0, 10.5, 9.0]) == pytest.approx([0.0, 5.0, -10.0])
    with pytest.raises(ValueError, match="reference_every"):
        reference_positions(5, 0)
