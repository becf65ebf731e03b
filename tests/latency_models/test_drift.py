"""Drift correction: every model is rescaled by the reference timed right around it."""

import pytest
from torch import nn

from latency_models.drift import DriftCorrectedTimer


def test_times_are_rescaled_by_the_reference_around_them():
    timer = DriftCorrectedTimer(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 32, 32), threads=1, reference_repeats=3)
    models = [nn.Conv2d(3, c, 3, padding=1) for c in (4, 16, 64)]
    raw = [timer.time(m, (1, 3, 32, 32), repeats=3, warmup=1) for m in models]
    assert len(timer.reference_ms) == 6 and len(timer.local_ms) == 3
    fixed = timer.corrected(raw)
    for ms, r, local in zip(fixed, raw, timer.local_ms, strict=True):
        assert ms == pytest.approx(r * timer.nominal_ms / local) and ms > 0
    assert timer.local_ms == [min(a, b) for a, b in zip(timer.reference_ms[::2], timer.reference_ms[1::2], strict=True)]
    summary = timer.summary()
    assert summary["n_reference"] == 6 and summary["reference_spread"] >= 1.0
    with pytest.raises(ValueError, match="2 raw times for 3"):
        timer.corrected(raw[:2])


def test_nominal_needs_a_timed_model():
    with pytest.raises(ValueError, match="no reference time"):
        _ = DriftCorrectedTimer(nn.Identity(), (1, 4), threads=1).nominal_ms
