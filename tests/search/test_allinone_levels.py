"""Spare levels: a nested chain trained together, each point's level chosen from timings at the end."""

import pytest
import torch

from search.sr.allinone.chain import macs_per_pixel, template
from search.sr.allinone.levels import choose_levels, level_chain
from search.sr.allinone.points import OperatingPoint
from spaces import SRSpace
from tasks.sr.allinone import build_allinone, is_subnet, repoint

SPACE = SRSpace()
T1, T2 = OperatingPoint("t1", threads=1), OperatingPoint("t2", threads=2)


def test_level_chain_is_nested_with_bounded_mac_steps():
    top = template(SPACE, 16, 32, 8, depth=12)
    chain = level_chain(top, SPACE, floor_macs=0.5 * macs_per_pixel(top), step=0.88, max_levels=8)
    assert chain[0] == top and 3 <= len(chain) <= 8
    macs = [macs_per_pixel(a) for a in chain]
    assert all(b <= 0.88 * a for a, b in zip(macs, macs[1:]))
    assert all(b >= 0.6 * a for a, b in zip(macs, macs[1:]))  # the largest under each cap, not a leap
    assert all(is_subnet(b, a) and SPACE.validate(b) for a, b in zip(chain, chain[1:]))
    assert macs[-1] <= 0.5 * macs[0] or len(chain) == 8
    with pytest.raises(ValueError, match="step"):
        level_chain(top, SPACE, 0, step=1.0)


def test_default_chain_steps_fit_inside_the_governors_band():
    """The default dense chain: about 1.06x apart in MACs over the whole range, so a governor
    holding +-2.5% finds a level near every speed the host runs at; nested and in the space."""
    top = template(SPACE, 16, 48, 12, depth=11)
    chain = level_chain(top, SPACE, floor_macs=0.35 * macs_per_pixel(top), step=0.95, max_levels=20)
    macs = [macs_per_pixel(a) for a in chain]
    gaps = [a / b for a, b in zip(macs, macs[1:])]
    assert len(chain) >= 15 and macs[-1] <= 0.4 * macs[0]
    assert all(g >= 1 / 0.95 for g in gaps) and max(gaps) < 1.1, gaps
    assert all(is_subnet(b, a) and SPACE.validate(b) for a, b in zip(chain, chain[1:]))


def test_choose_levels_follows_the_speed_timed_now():
    # level i runs (1 - 0.1 i) x 50 ms at 1 thread; at 2 threads 0.6x of that (fast phase)
    ms = {}
    for i in range(5):
        ms[i, "t1"] = 50 * (1 - 0.1 * i)
        ms[i, "t2"] = 0.6 * ms[i, "t1"]
    picked = choose_levels([T1, T2], ms, 5, target_ms=55, level=0.05)
    assert [c.point.name for c in picked] == ["t2", "t1"]   # the faster point holds the larger level
    assert picked[0].level == 0 and picked[0].latency_ms == 30
    assert picked[1].level == 4 and picked[1].latency_ms == 30  # 30 ms at 1 thread: level
    assert all(c.meets_aim for c in picked)
    # the top level kept as the governor's headroom: no point takes it (t2's 27 ms and t1's 30 ms
    # are the least spread left)
    headroom = choose_levels([T1, T2], ms, 5, target_ms=55, level=0.05, first=1)
    assert {c.point.name: c.level for c in headroom} == {"t2": 1, "t1": 4}
    with pytest.raises(ValueError, match="first"):
        choose_levels([T1, T2], ms, 5, target_ms=55, first=5)
    # the 2-thread phase turns slow: 1.3x the 1-thread time; now 1 thread holds the larger level
    slow = {k: (v if k[1] == "t1" else 1.3 * ms[k[0], "t1"]) for k, v in ms.items()}
    picked = choose_levels([T1, T2], slow, 5, target_ms=55, level=0.05)
    assert [c.point.name for c in picked] == ["t1", "t2"]
    lat = [c.latency_ms for c in picked]
    assert max(lat) / min(lat) <= 1.05 and lat[0] <= 55
    # no pair is within 5%: the least spread, all within the target
    lumpy = {(0, "t1"): 36.0, (1, "t1"): 29.6, (2, "t1"): 23.5, (0, "t2"): 56.3, (1, "t2"): 47.8, (2, "t2"): 30.9}
    picked = choose_levels([T1, T2], lumpy, 3, target_ms=55, level=0.05)
    assert {c.point.name: c.level for c in picked} == {"t1": 1, "t2": 2}  # 29.6 vs 30.9
    # each point its largest within the target when not levelling
    plain = choose_levels([T1, T2], lumpy, 3, target_ms=55, level=None)
    assert {c.point.name: c.level for c in plain} == {"t1": 0, "t2": 1}
    # nothing fits: the smallest level, flagged
    late = choose_levels([T1, T2], {k: 100.0 for k in lumpy}, 3, target_ms=55)
    assert all(c.level == 2 and not c.meets_aim for c in late)


def test_repoint_keeps_the_trained_weights_and_drops_unused_ones():
    top = template(SPACE, 16, 32, 8, depth=6)
    chain = level_chain(top, SPACE, floor_macs=0.4 * macs_per_pixel(top))
    torch.manual_seed(0)
    model = build_allinone({f"level{i}": a for i, a in enumerate(chain)}).eval()
    points = {"fast": chain[1], "slow": chain[3]}
    new = repoint(model, points).eval()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        for name, level in (("fast", 1), ("slow", 3)):
            model.set_operating_point(f"level{level}")
            new.set_operating_point(name)
            assert torch.equal(new(x), model(x))
    size = sum(p.numel() for p in new.parameters())
    assert size == sum(p.numel() for p in new.subnet("fast").parameters()) < sum(p.numel() for p in model.parameters())


def test_a_top_too_small_for_the_chain_is_searched_again():
    from search.sr.allinone.chain import PointChoice
    from search.sr.allinone.levels import search_chain

    big, tiny = template(SPACE, 16, 32, 8, depth=12), template(SPACE, 8, 24, 8, depth=1)
    answers = [tiny, big]  # the first search ran in a slow phase: a 1-block network
    calls, said = [], []

    def search():
        calls.append(1)
        return [PointChoice(T2, answers.pop(0), 10.0, True, 3)]

    choices, chain = search_chain(search, SPACE, spare=8, step=0.88, headroom=1.3, log=said.append)
    assert len(calls) == 2 and choices[0].arch == big and chain[0] == big and len(chain) >= 5
    assert "only 1 of 9 levels" in said[0] and "searching once more" in said[0]
    answers = [tiny, tiny]  # twice too small: the second answer stands, and it says so
    choices, chain = search_chain(search, SPACE, spare=8, step=0.88, log=said.append)
    assert len(calls) == 4 and chain == [tiny] and "going on with it" in said[-1]
    answers = [big]  # a top that holds the chain: one search
    search_chain(search, SPACE, spare=8, step=0.88, log=said.append)
    assert len(calls) == 5
