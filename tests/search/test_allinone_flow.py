"""strategy=allinone: operating points from the device configs, the nested search, real timings
at 1 and 2 threads, and the whole flow end to end (device=cpu measured, device=s21 modelled)."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from search.config.compose import compose_config
from search.errors import UserError
from search.settings import DeviceProfile, strategy_section
from search.sr.allinone.chain import (
    grow_to_bind,
    ladder,
    largest_under,
    macs_per_pixel,
    search_nested,
    template,
    widen,
)
from search.sr.allinone.points import AtPoint, OperatingPoint, PointLatency, PointSet, point_estimator
from search.sr.allinone.run import slice_module
from spaces import SRSpace, WDSRBArch
from tasks.sr.allinone import is_subnet, load_allinone

SPACE = SRSpace()
PROTOCOL = {"warmup": 2, "min_repeats": 6, "max_repeats": 10}


def device_cfg(name: str):
    cfg = compose_config([f"device={name}", "strategy=allinone"])
    return DeviceProfile.from_cfg(cfg), OmegaConf.to_container(cfg.device.operating_points, resolve=True)


def yaml_options(smoke: bool) -> dict:
    """The strategy options as the app hands them to the runner (conf/strategy/allinone.yaml, with
    experiment=smoke's overlay on top), without the strategy's name."""
    opts = strategy_section(compose_config(["strategy=allinone", *(["experiment=smoke"] if smoke else [])]))
    opts.pop("name")
    return opts


def test_device_profiles_list_operating_points():
    cpu, cpu_points = device_cfg("cpu")
    points = PointSet.from_config(cpu_points, cpu)
    assert points.kind == "load" and points.measured
    assert [(p.load, p.threads) for p in points.points] == [("idle", 2), ("cpu", 2)]
    assert "busy: cpu 100% of the time at 2 thread(s)" in points.source and points.points[1].duty == 1.0
    with pytest.raises(UserError, match="duty=2.0"):
        PointSet.from_config({"kind": "load", "points": [{"name": "a", "load": "cpu", "duty": 2},
                                                         {"name": "b", "load": "idle"}]}, cpu)
    with pytest.raises(UserError, match="'gpu' is not one of"):
        PointSet.from_config({"kind": "load", "points": [{"name": "a", "load": "gpu"}, {"name": "b", "load": "idle"}]}, cpu)
    threads = PointSet.from_config({"kind": "threads", "points": [{"name": "t1", "threads": 1},
                                                                  {"name": "t2", "threads": 2}]}, cpu)
    assert sorted(p.threads for p in threads.points) == [1, 2] and threads.measured
    s21, s21_points = device_cfg("s21")
    levels = PointSet.from_config(s21_points, s21)
    assert not levels.measured and levels.kind == "dvfs"
    assert [p.freq_mhz for p in levels.points] == [840, 778, 738, 676, 608, 540, 491, 443, 379, 315]
    assert "lahaina-v2-gpu.dtsi" in levels.source and "840 / f" in levels.latency_model
    assert [p.name for p in PointSet.from_config(s21_points, s21, only=["f840", "f315"]).points] == ["f840", "f315"]
    with pytest.raises(UserError, match="not operating points"):
        PointSet.from_config(s21_points, s21, only=["f999"])
    with pytest.raises(UserError, match="no operating_points"):
        PointSet.from_config(None, s21)


def test_ladder_rungs_are_nested_in_the_space_and_ordered_by_macs():
    root = template(SPACE, 16, 64, 16)
    rungs = ladder(root, SPACE)
    assert len(rungs) > 50 and rungs[-1] == root
    assert all(is_subnet(r, root) and SPACE.validate(r) for r in rungs)
    macs = [macs_per_pixel(r) for r in rungs]
    assert macs == sorted(macs)
    child = ladder(rungs[len(rungs) // 2], SPACE)
    assert all(is_subnet(r, rungs[len(rungs) // 2]) for r in child)


@pytest.mark.parametrize("exhaustive", [True, False])
def test_largest_under_finds_the_last_rung_within_target(exhaustive):
    rungs = ladder(template(SPACE, 16, 64, 16, depth=6), SPACE)
    point = OperatingPoint("p", threads=1)
    per_mac = 1e-4  # a latency exactly proportional to MACs: the answer is known

    def latency(arch, _point):
        return per_mac * macs_per_pixel(arch)

    target = latency(rungs[37], point) + 1e-9
    choice = largest_under(rungs, point, target, latency, exhaustive)
    assert choice.arch == rungs[37] and choice.meets_target
    assert choice.evaluated == (len(rungs) if exhaustive else choice.evaluated) and choice.evaluated <= len(rungs)
    if not exhaustive:
        assert choice.evaluated <= 8 + 8  # bisection + upward probes
    assert not largest_under(rungs, point, 0.0, latency, exhaustive).meets_target


def test_measured_search_finds_a_bigger_rung_where_latency_is_not_monotone():
    rungs = ladder(template(SPACE, 16, 64, 16, depth=6), SPACE)
    point = OperatingPoint("p", threads=2)
    slow = set(range(len(rungs) // 3, 2 * len(rungs) // 3))  # a slow kernel path in the middle sizes

    def latency(arch, _point):
        i = rungs.index(arch)
        return (10.0 if i in slow else 1.0) * i / len(rungs)

    choice = largest_under(rungs, point, 0.95, latency, exhaustive=False)
    assert rungs.index(choice.arch) > max(slow) and choice.meets_target


def test_a_template_that_fits_the_fastest_point_is_widened_until_it_binds():
    point = OperatingPoint("p", threads=2)
    small = template(SPACE, 12, 32, 8, depth=4)

    def latency(arch, _point):
        return 1e-3 * macs_per_pixel(arch)

    target = 2.5 * latency(small, point)
    grown = grow_to_bind(small, SPACE, point, target, latency, log=lambda _: None)
    assert latency(grown, point) > target and grown.depth == small.depth
    assert is_subnet(small, grown) and SPACE.validate(grown)
    widest = template(SPACE, max(SPACE.channels), SPACE.m1[1], SPACE.m2[1], depth=4)
    assert widen(widest, SPACE) is None
    notes = []
    assert grow_to_bind(small, SPACE, point, 1e9, latency, log=notes.append) == widest
    assert "does not bind" in notes[-1]


def test_modelled_dvfs_search_gives_nested_points_within_target_at_each_level():
    s21, points = device_cfg("s21")
    pointset = PointSet.from_config(points, s21)
    estimator = point_estimator(pointset, s21, {"kind": "auto", "allow_extrapolation": False}, 2, build=None)
    assert estimator.kind == "published" and estimator.predictor is not None  # the one seam loads it
    lat = PointLatency(pointset, estimator, build=None)
    target = 0.92 * 33.3
    choices, order = search_nested(SPACE, template(SPACE, 16, 64, 16), pointset.points, target, lat,
                                   measured_latency=None, log=lambda _: None)
    assert [p.name for p, _ in order] == [p.name for p in pointset.points]  # fastest = highest clock
    assert all(c.meets_target and c.latency_ms <= target for c in choices)
    assert all(is_subnet(b.arch, a.arch) for a, b in zip(choices, choices[1:]))
    assert all(c.latency_ms <= 1.05 * choices[0].latency_ms for c in choices)  # level across points
    level, _ = search_nested(SPACE, template(SPACE, 16, 64, 16), pointset.points, target, lat,
                             measured_latency=None, log=lambda _: None, level=0.0)
    assert all(c.latency_ms <= level[0].latency_ms for c in level)  # slower points aim at the fastest's
    assert max(c.latency_ms for c in choices) > level[0].latency_ms  # which the budget alone does not
    top, low = choices[0], choices[-1]
    assert lat.arch_ms(top.arch, low.point) == pytest.approx(lat.arch_ms(top.arch, top.point) * 840 / 315)


def test_measured_points_time_real_sub_networks_at_1_and_2_threads():
    device = DeviceProfile("cpu", "test", (48, 64), 60.0, "measured", 2)
    points = (OperatingPoint("t1", threads=1), OperatingPoint("t2", threads=2))
    pointset = PointSet("threads", points, "here", "measured", True)
    estimator = point_estimator(pointset, device, {"kind": "auto", "allow_extrapolation": False}, 2, build=None)
    assert estimator.measured and estimator.predictor is None
    lat = PointLatency(pointset, estimator, build=None, protocol=PROTOCOL)
    top = template(SPACE, 16, 64, 16, depth=8)
    small = ladder(top, SPACE)[0]
    big_model, small_model = slice_module(top, top), slice_module(top, small)
    before = torch.get_num_threads()
    seen = []
    big, small_t = lat.interleaved([AtPoint(big_model, points[0]), AtPoint(small_model, points[0])], 3,
                                   after=lambda i, ms: seen.append(i))
    assert len(big.round_ms) == len(small_t.round_ms) == 3 and seen == [0, 1, 1, 0, 0, 1]  # order reverses
    big_ms, small_ms = statistics.median(big.round_ms), statistics.median(small_t.round_ms)
    assert small_ms * 2 < big_ms, (small_ms, big_ms)  # the sliced point really computes less
    assert torch.get_num_threads() == before  # the points' thread counts held only while timing
    assert lat.module_ms(small_model, points[1]) > 0


def run_search(tmp_path: Path, *overrides: str) -> tuple[dict, Path, str]:
    proc = subprocess.run([sys.executable, "-m", "search", "task=sr", "strategy=allinone", "experiment=smoke",
                           f"hydra.run.dir={tmp_path}", *overrides], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp_path / "result.json").read_text()), tmp_path, proc.stdout


@pytest.mark.slow
def test_cpu_smoke_end_to_end(tmp_path):
    # A quarter of device=cpu's frame (and of its budget): the same flow, timed at a quarter of the cost.
    result, run_dir, _ = run_search(tmp_path, "device=cpu", "device.lr_hw=[90,160]", "budget_ms=15")
    rows = result["operating_points"]
    assert [r["load"] for r in rows] == ["idle", "cpu"] and result["latency_measured"]
    assert rows[0]["slowdown"] == 1.0 and rows[1]["slowdown"] > 1.05  # one core taken: the fixed net slows
    for r in rows:
        assert r["measured"] and r["latency_ms"] > 0 and r["fixed_latency_ms"] > 0
        assert 25 < r["eval"]["set5"]["psnr"] < 45 and len(r["latency_rounds_ms"]) == result["options"]["final_rounds"] == 5
    switched = [r["latency_ms"] for r in rows]
    fixed = [r["fixed_latency_ms"] for r in rows]
    assert result["latency_spread"] == pytest.approx(max(switched) / min(switched))
    assert result["fixed_latency_spread"] == pytest.approx(max(fixed) / min(fixed))
    assert result["switch_ms"] < 1.0 and result["switch"]["p99_ms"] < 1.0
    assert result["export"]["size_ratio"] <= 1.05
    archs = [WDSRBArch.from_dict(r["arch"]) for r in rows]  # fastest point first
    assert all(is_subnet(small, big) for big, small in zip(archs, archs[1:]))
    model, manifest = load_allinone(run_dir / "allinone.pt")
    names = [r["name"] for r in rows]  # operating points, and the other levels their governors move to
    assert [n for n in manifest["points"] if n in names] == names
    assert [n for n in manifest["points"] if n not in names] == manifest["fallback_levels"]
    assert all(n.startswith("level") for n in manifest["fallback_levels"])
    assert result["export"]["largest_subnet"] == manifest["points"][0]  # the size reference: the largest level
    for r in rows:  # each point ran under its governor: 4 short timings per round, within one band
        gov = r["governor"]
        assert len(r["latency_observations_ms"]) == 4 * 5 == sum(gov["levels_used"].values())
        assert r["latency_ms"] == pytest.approx(statistics.median(r["latency_observations_ms"]))
        assert set(gov["levels_used"]) <= set(manifest["points"]) and 0 <= gov["own_level_share"] <= 1
        assert gov["band_ms"] == rows[0]["governor"]["band_ms"] and gov["band_ms"][1] <= result["target_ms"]
    x = torch.rand(1, 3, 24, 24)
    outs = []
    for r in rows:
        model.set_operating_point(r["name"])
        with torch.inference_mode():
            outs.append(model.eval()(x))
    assert rows[0]["arch"] == rows[1]["arch"] or not torch.equal(outs[0], outs[1])
    report = (run_dir / "report.md").read_text()
    assert "measured" in report and f"{result['latency_spread']:.3f}" in report
    assert (run_dir / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_s21_flow_runs_on_modelled_frequency_levels(tmp_path):
    result, run_dir, stdout = run_search(tmp_path, "device=s21", "task.final.steps=5",
                                         "strategy.points=[f840,f540,f315]")
    assert not result["latency_measured"] and "MODELLED" in result["latency_source"]["source"]
    rows = result["operating_points"]
    assert [r["freq_mhz"] for r in rows] == [840, 540, 315]
    assert all(not r["measured"] and r["meets_budget"] for r in rows)
    assert result["fixed_latency_spread"] == pytest.approx(840 / 315)
    assert result["latency_spread"] < result["fixed_latency_spread"]
    report = (run_dir / "report.md").read_text()
    assert "MODELLED, not measured" in report and "lahaina" in report
    assert (run_dir / "latency.png").stat().st_size > 0


def test_cpu_points_use_the_configured_conv_kernels():
    cpu, cfg = device_cfg("cpu")
    assert {p.onednn for p in PointSet.from_config(cfg, cpu).points} == {None}  # conf/device/cpu.yaml: torch's
    cfg = {"kind": "threads", "onednn": None, "points": [{"name": "threads2", "threads": 2},
                                                         {"name": "threads1", "threads": 1}]}
    points = PointSet.from_config(cfg, cpu)
    assert "torch's default conv kernels" in points.source and "conv_kernels" not in points.points[0].to_dict()
    cfg["onednn"] = False
    native = PointSet.from_config(cfg, cpu)
    assert "threads1: native" in native.source and native.points[0].to_dict()["conv_kernels"] == "native"
    cfg["points"][0]["onednn"] = "yes"
    with pytest.raises(UserError, match="onednn='yes'"):
        PointSet.from_config(cfg, cpu)


def test_points_are_reordered_when_the_chosen_network_runs_faster_elsewhere():
    """The template (16 blocks) is slower at 2 threads, networks of <= 12 blocks faster there, as
    measured on this host: the 2-thread point must end up first, holding the larger network."""
    points = (OperatingPoint("t1", threads=1), OperatingPoint("t2", threads=2))

    class Lat:
        measured = True

    def measured(top, arch, point):
        big = arch.depth > 12
        factor = (1.0 if point.threads == 1 else 1.3) if big else (1.0 if point.threads == 1 else 0.7)
        return macs_per_pixel(arch) * factor / 200.0

    notes = []
    root = template(SPACE, 16, 64, 16)
    target = macs_per_pixel(root) / 200.0 / 2  # binds at about half the template
    choices, order = search_nested(SPACE, root, points, target, Lat(), measured, log=notes.append)
    assert [p.name for p, _ in order] == ["t2", "t1"], notes
    assert any("searching again" in n for n in notes)
    assert choices[0].point.name == "t2" and is_subnet(choices[1].arch, choices[0].arch)
    assert choices[0].latency_ms <= target and choices[1].latency_ms <= 1.05 * choices[0].latency_ms
    assert macs_per_pixel(choices[1].arch) < macs_per_pixel(choices[0].arch)


def test_bad_allinone_options_name_the_setting():
    from search.sr.allinone.run import options_from

    assert options_from(yaml_options(smoke=True))["spare_levels"] == 4  # the smoke overlay, as merged
    assert options_from(yaml_options(smoke=False))["spare_levels"] == 19
    for bad, name in [({"band": 1.5}, "strategy.band"), ({"headroom": -1}, "strategy.headroom"),
                      ({"top_weight": 0}, "strategy.top_weight"), ({"spare_levels": 20}, "strategy.spare_levels"),
                      ({"target": 2}, "strategy.target")]:
        with pytest.raises(UserError, match=name):
            options_from({**yaml_options(smoke=False), **bad})
