"""Run-time level switching: the governor steps down when the host slows, back up when it
recovers (never above the point's own level), and the export keeps the levels it falls back on."""

import pytest
import torch

from search.allinone_governed import governed_points, governed_summary, make_governors
from search.allinone_levels import level_chain
from search.allinone_search import macs_per_pixel, template
from spaces import SRSpace
from tasks.sr.allinone import build_allinone, is_subnet, repoint
from tasks.sr.allinone_governor import LevelGovernor

SPACE = SRSpace()


@pytest.fixture(scope="module")
def chain():
    top = template(SPACE, 16, 32, 8, depth=6)
    return level_chain(top, SPACE, floor_macs=0.45 * macs_per_pixel(top), step=0.85, max_levels=6)


def test_governed_export_keeps_the_chosen_levels_and_those_below(chain):
    picked = {"t2": 1, "t1": 3}
    points = governed_points(chain, picked)
    assert list(points) == ["t2", "level2", "t1"] + [f"level{i}" for i in range(4, len(chain))]
    assert points["t2"] == chain[1] and points["t1"] == chain[3]
    names = list(points)
    assert all(is_subnet(points[b], points[a]) for a, b in zip(names, names[1:]))
    model = repoint(build_allinone({f"level{i}": a for i, a in enumerate(chain)}), points)
    assert model.point_names == tuple(points)
    timed = {(i, p): 40.0 * (1 - 0.1 * i) * (1.0 if p == "t2" else 1.4) for i in range(len(chain)) for p in picked}
    govs = make_governors(model, picked, len(chain), timed, aim_ms=50.0)
    assert govs["t2"].ladder == names and govs["t1"].ladder == names[2:]
    assert govs["t1"].timed_ms["t1"] == timed[3, "t1"]


def test_governor_falls_back_when_slow_and_returns_when_fast(chain):
    model = build_allinone({f"level{i}": a for i, a in enumerate(chain)})
    ladder = [f"level{i}" for i in range(len(chain))]
    timed = {n: 40.0 * (1 - 0.1 * i) for i, n in enumerate(ladder)}  # 40, 36, 32, ... ms as timed
    gov = LevelGovernor(model, ladder, timed, aim_ms=44.0)
    assert gov.observe(41.0) == "level0"            # within the aim: stays
    assert gov.observe(60.0) == "level3"            # 1.5x slower: 40 x 0.7 x 1.5 = 42 <= 44 (level2: 48)
    assert model._active_name == "level3"
    assert gov.observe(0.7 * 40 * 1.5) == "level3"  # still slow: stays
    assert gov.observe(0.7 * 40 * 1.0) == "level2"  # recovered: one step up
    for _ in range(5):
        gov.observe(gov.timed_ms[gov.level])          # as fast as timed: climbs back to its own level
    assert gov.level == "level0" and gov.observe(20.0) == "level0"  # never above its own level
    assert gov.observe(1000.0) == ladder[-1]          # nothing fits: the smallest
    assert gov.switches == 5 and sum(gov.used.values()) == 11
    summary = governed_summary(gov, {n: {"set5": {"psnr": 30.0 + i}} for i, n in enumerate(ladder)})
    assert summary["levels_used"]["level0"] == 7 and 0 < summary["own_level_share"] < 1
    assert 30.0 < summary["psnr_governed"]["set5"] < 30.0 + len(ladder)


def test_governed_inference_times_the_real_network(chain):
    model = build_allinone({f"level{i}": a for i, a in enumerate(chain)}).eval()
    ladder = [f"level{i}" for i in range(len(chain))]
    gov = LevelGovernor(model, ladder, {n: 1e6 for n in ladder}, aim_ms=1e-6)  # nothing can meet 1 ns
    y = gov(torch.rand(1, 3, 12, 16))
    assert y.shape == (1, 3, 24, 32) and gov.level == ladder[-1] and gov.used["level0"] == 1
    with pytest.raises(ValueError, match="ladder"):
        LevelGovernor(model, ["nope"], {"nope": 1.0}, 10.0)
