"""Run-time level switching: the governor steps down when the host slows and up when it runs
fast, holding every point's latency in one band, and the export keeps every level it may use."""

import pytest
import torch

from search.sr.allinone.chain import macs_per_pixel, template
from search.sr.allinone.governed import governed_points, governed_summary, make_governors
from search.sr.allinone.levels import level_chain
from spaces import SRSpace
from tasks.sr.allinone import build_allinone, is_subnet, repoint
from tasks.sr.allinone_governor import LevelGovernor

SPACE = SRSpace()


@pytest.fixture(scope="module")
def chain():
    top = template(SPACE, 16, 32, 8, depth=6)
    return level_chain(top, SPACE, floor_macs=0.3 * macs_per_pixel(top), step=0.85, max_levels=6)


def test_governed_export_keeps_every_level_and_names_the_chosen_ones(chain):
    picked = {"t2": 1, "t1": 3}
    points = governed_points(chain, picked)
    assert list(points) == ["level0", "t2", "level2", "t1"] + [f"level{i}" for i in range(4, len(chain))]
    assert points["t2"] == chain[1] and points["t1"] == chain[3]
    names = list(points)
    assert all(is_subnet(points[b], points[a]) for a, b in zip(names, names[1:]))
    model = repoint(build_allinone({f"level{i}": a for i, a in enumerate(chain)}), points)
    assert model.point_names == tuple(points)
    timed = {(i, p): 40.0 * (1 - 0.1 * i) * (1.0 if p == "t2" else 1.4) for i in range(len(chain)) for p in picked}
    govs = make_governors(model, picked, len(chain), timed, ceiling_ms=50.0, band=0.06)
    assert govs["t2"].ladder == govs["t1"].ladder == names  # both climb and fall over the whole chain
    assert govs["t2"].level == "t2" and govs["t1"].level == "t1"
    assert govs["t1"].timed_ms["t1"] == timed[3, "t1"] and govs["t1"].timed_ms["level0"] == timed[0, "t1"]
    ref = (timed[1, "t2"] * timed[3, "t1"]) ** 0.5  # both hold the same latency: the chosen levels' mean
    assert govs["t2"].ref_ms == govs["t1"].ref_ms == pytest.approx(ref)
    assert govs["t1"].high_ms == pytest.approx(min(50.0, 1.06 * ref)) and govs["t1"].low_ms == pytest.approx(ref / 1.06)


def test_governor_steps_down_when_slow_and_up_when_fast(chain):
    model = build_allinone({f"level{i}": a for i, a in enumerate(chain)})
    ladder = [f"level{i}" for i in range(len(chain))]
    timed = {n: 40.0 * (1 - 0.1 * i) for i, n in enumerate(ladder)}  # 40, 36, 32, ... ms as timed
    gov = LevelGovernor(model, ladder, timed, ref_ms=32.0, start="level2", band=0.1, ceiling_ms=100.0)
    assert (gov.low_ms, gov.high_ms) == pytest.approx((32.0 / 1.1, 35.2))
    assert gov.observe(33.0) == "level2"            # within the band: stays
    assert gov.observe(48.0) == "level5"            # 1.5x slower: level3 and level4 would take 42 and 36 ms,
    assert model._active_name == "level5"           # over 35.2; level5 30 ms
    assert gov.observe(0.5 * 40 * 1.5) == "level5"  # 30 ms: within the band, stays
    assert gov.observe(0.5 * 40 * 1.0) == "level4"  # back to the timed speed: 20 ms, below the band, one up
    for _ in range(3):
        gov.observe(gov.timed_ms[gov.level])          # as fast as timed: climbs one level per observation
    assert gov.level == "level2"                      # ...and stops where the band is: 32 ms
    assert gov.observe(32.0 / 1.25) == "level1"       # the host runs 1.25x faster: 36 / 1.25 = 28.8 above
    assert gov.observe(30.0) == "level1"              # within the band
    assert gov.observe(20.0) == "level0" and gov.observe(10.0) == "level0"  # nothing larger: stays on top
    assert gov.observe(1000.0) == ladder[-1]          # nothing fits: the smallest
    assert gov.used["level2"] == 4 and sum(gov.used.values()) == 12
    summary = governed_summary(gov, {n: {"set5": {"psnr": 30.0 + i}} for i, n in enumerate(ladder)})
    assert summary["own_level_share"] == pytest.approx(4 / 12) and summary["band_ms"] == [29.091, 35.2]
    assert 30.0 < summary["psnr_governed"]["set5"] < 30.0 + len(ladder)


def test_governor_stays_below_the_ceiling(chain):
    model = build_allinone({f"level{i}": a for i, a in enumerate(chain)})
    ladder = [f"level{i}" for i in range(len(chain))]
    gov = LevelGovernor(model, ladder, {n: 40.0 * (1 - 0.1 * i) for i, n in enumerate(ladder)}, ref_ms=32.0,
                        start="level2", band=0.1, ceiling_ms=33.0)
    assert gov.high_ms == 33.0 and gov.observe(34.0) == "level3"  # within the band, over the ceiling: down
    assert gov.observe(29.0) == "level3"  # below the band, but level2 is expected at 33.1 ms: stays
    assert gov.observe(25.0) == "level2"  # expected 28.6 ms there: climbs


def test_governed_inference_times_the_real_network(chain):
    model = build_allinone({f"level{i}": a for i, a in enumerate(chain)}).eval()
    ladder = [f"level{i}" for i in range(len(chain))]
    gov = LevelGovernor(model, ladder, {n: 1e6 for n in ladder}, ref_ms=1e-6)  # nothing can meet 1 ns
    y = gov(torch.rand(1, 3, 12, 16))
    assert y.shape == (1, 3, 24, 32) and gov.level == ladder[-1] and gov.used["level0"] == 1
    with pytest.raises(ValueError, match="ladder"):
        LevelGovernor(model, ["nope"], {"nope": 1.0}, 10.0)
    with pytest.raises(ValueError, match="start"):
        LevelGovernor(model, ladder, {n: 1.0 for n in ladder}, 10.0, start="nope")
