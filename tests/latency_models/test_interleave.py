"""Interleaved timing: the order reverses every round, and a speed-up is read from side-by-side pairs."""

import time

import pytest
from torch import nn

from latency_models.interleave import InterleavedTiming, Speedup, interleaved_calls, speedup_of


def test_rounds_reverse_their_order_and_report_each_call():
    seen: list[str] = []
    calls = [lambda: seen.append("a"), lambda: seen.append("b")]
    rows = interleaved_calls(calls, rounds=3, runs=1, warmup=0)
    assert "".join(seen) == "abbaab" and [len(r) for r in rows] == [3, 3]


def test_settling_calls_precede_each_timing_in_every_round():
    seen: list[str] = []
    calls = [lambda: seen.append("a"), lambda: seen.append("b")]
    interleaved_calls(calls, rounds=2, runs=1, warmup=0, settle=1)
    assert "".join(seen) == "aabbbbaa"


def test_nonsense_rounds_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        interleaved_calls([lambda: None], rounds=0)


def test_the_ratio_comes_from_each_round_pair_not_from_the_two_minima():
    # A slow round hits both alike: the round ratios stay 2, while min/min would read 4/1 = 4.
    base = InterleavedTiming(4.0, (8.0, 4.0, 8.0), threads=1)
    other = InterleavedTiming(1.0, (4.0, 2.0, 1.0), threads=1)
    assert Speedup(base, other).ratio == pytest.approx(2.0)


class Sleeper(nn.Module):
    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ms = ms

    def forward(self, x):
        time.sleep(self.ms / 1e3)
        return x


def test_a_module_twice_as_slow_reads_about_twice_as_slow():
    # Sleeping is not compute: it measures the harness, not the host's speed.
    row = speedup_of(Sleeper(6.0), Sleeper(3.0), (1, 1, 2, 2), rounds=4, runs=2, warmup=1)
    assert 1.6 < row.ratio < 2.4 and row.base.ms > row.other.ms


def test_interleaved_in_onnxruntime_times_the_exported_graph():
    """A bigger network reads slower than a smaller one in onnxruntime too; a phone backend
    cannot be timed in this process."""
    from latency_models.interleave import interleaved_in

    small = nn.Conv2d(3, 8, 3, padding=1)
    big = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 32, 32, 3, padding=1) for i in range(6)])
    timed = interleaved_in("onnxruntime-cpu", [(small, (1, 3, 64, 64)), (big, (1, 3, 64, 64))], 1, rounds=3)
    assert all(t.ms > 0 and len(t.round_ms) == 3 and t.threads == 1 for t in timed)
    assert timed[1].ms > 3 * timed[0].ms, timed
    with pytest.raises(ValueError, match="local"):
        interleaved_in("adb", [(small, (1, 3, 8, 8))])


def test_onnxruntime_sessions_timed_side_by_side_do_not_slow_each_other():
    """Spin-waiting workers of one session took a core from the next: two identical sessions
    interleaved at 2 threads ran 1.8x slower than one alone before session_options stopped it."""
    from latency_models.backends.onnxruntime_cpu import session_options
    from latency_models.interleave import interleaved_in

    assert session_options(2).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    net = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 32, 32, 3, padding=1) for i in range(6)])
    shape = (1, 3, 96, 96)
    alone, pair = [], []
    for _ in range(2):  # alternated, the least of each: one slow phase of the host read 1.56x once
        alone.append(interleaved_in("onnxruntime-cpu", [(net, shape)], 2, rounds=3)[0].ms)
        pair.append(max(t.ms for t in interleaved_in("onnxruntime-cpu", [(net, shape), (net, shape)], 2, rounds=3)))
    assert min(pair) < 1.35 * min(alone), (alone, pair)


def test_paired_ratio_pairs_rounds_so_a_quiet_moment_of_one_model_does_not_decide():
    """The unpruned model caught a quiet moment in round 2 (10 ms against 12): the least round
    medians pair it with the candidate's usual 7.2 ms (0.72); paired round by round, 0.6 holds."""
    from latency_models.interleave import InterleavedTiming, paired_ratio

    unpruned = InterleavedTiming(10.0, (12.0, 10.0, 12.0), 2)
    candidate = InterleavedTiming(7.2, (7.2, 7.2, 7.2), 2)
    assert candidate.ms / unpruned.ms == pytest.approx(0.72)
    assert paired_ratio(candidate, unpruned) == pytest.approx(0.6)
