"""search.vit.latency_check: the fitted ViT predictor's errors in and out of sample, and its picture."""

import math

import pytest

from search.vit.latency_check import FINAL, MEMBER, RETIMED, LatencyCheck


def test_errors_are_in_reference_units_and_held_out_apart_from_members(tmp_path):
    check = LatencyCheck(reference_ms=20.0, bound="upper 75% bound")
    check.add(MEMBER, (0.5, 0.4), 0.5, point_ms=10.0, bound_ms=11.0)    # timed 10 ms: exact
    check.add(MEMBER, (0.6, 0.5), 0.6, point_ms=13.2, bound_ms=14.0)    # timed 12 ms: +10%
    check.add(RETIMED, (0.7, 0.6), 0.7, point_ms=12.88, bound_ms=15.0)  # timed 14 ms: -8%, under the bound
    check.add(FINAL, (0.7, 0.6), 0.75, point_ms=12.6, bound_ms=14.0)    # timed 15 ms: -16%, over the bound
    summary = check.summary()
    assert summary["points"][2]["measured_ms"] == pytest.approx(14.0)
    assert summary["members_in_sample"]["n"] == 2 and summary["members_in_sample"]["median_abs_error_pct"] == pytest.approx(5.0)
    held = summary["held_out"]
    assert held["n"] == 2 and held["worst_error_pct"] == pytest.approx(-16.0) and held["within_10pct"] == 0.5
    assert summary["held_out_under_bound"] == 0.5
    check.draw(tmp_path / "check.png", "test")
    assert (tmp_path / "check.png").stat().st_size > 10_000


def test_members_alone_have_no_held_out_figures(tmp_path):
    check = LatencyCheck(reference_ms=10.0, bound="point prediction")
    check.add(MEMBER, (0.5,), 0.5, point_ms=5.0, bound_ms=5.0)
    summary = check.summary()
    assert summary["held_out"] is None and summary["held_out_under_bound"] is None
    assert not math.isnan(summary["members_in_sample"]["median_abs_error_pct"])
    check.draw(tmp_path / "alone.png", "members only")
    assert (tmp_path / "alone.png").is_file()
