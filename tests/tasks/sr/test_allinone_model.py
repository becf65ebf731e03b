"""All-in-One WDSR-B: nested sub-networks by slicing, in-place switch, export, sandwich training."""

import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import tasks.sr as sr
from spaces import BicubicArch, WDSRBArch, WDSRBlock
from tasks.sr.allinone import (
    AllInOneWDSRB,
    build_allinone,
    check_nested,
    is_subnet,
    load_allinone,
    save_allinone,
    slice_subnet,
)
from tasks.sr.allinone_train import sandwich_points, train_allinone
from tasks.sr.evaluate import evaluate
from tasks.sr.train import TrainRecipe

BIG = WDSRBArch(2, 16, (WDSRBlock(48, 12),) * 4)
POINTS = {
    "fast": BIG,
    "mid": slice_subnet(BIG, depth=3, width=0.5),
    "slow": slice_subnet(BIG, channels=8, depth=1, width=0.25),
}


def randomised(points=POINTS, seed=0) -> AllInOneWDSRB:
    torch.manual_seed(seed)
    model = build_allinone(points)
    with torch.no_grad():
        for p in model.parameters():  # the tail starts at zero: give every point a distinct output
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def flops(model, x) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops()


def test_points_are_nested_and_each_matches_a_plain_wdsr_b_of_its_architecture():
    model = randomised()
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    outputs = {}
    for name, arch in POINTS.items():
        model.set_operating_point(name)
        plain = sr.build_model(arch).eval()
        plain.load_state_dict(model.subnet(name).state_dict())
        with torch.inference_mode():
            outputs[name] = model(x)
            assert outputs[name].shape == (2, 3, 34, 46)
            assert torch.allclose(outputs[name], plain(x), atol=1e-6), name
    assert not torch.allclose(outputs["fast"], outputs["slow"], atol=1e-3)
    assert is_subnet(POINTS["slow"], POINTS["mid"]) and is_subnet(POINTS["mid"], POINTS["fast"])
    assert not is_subnet(POINTS["fast"], POINTS["mid"])


def test_a_sparser_point_computes_less_exactly_as_much_as_its_own_network():
    model = randomised()
    x = torch.rand(1, 3, 32, 32)
    counts = {}
    for name, arch in POINTS.items():
        model.set_operating_point(name)
        counts[name] = flops(model, x)
        assert counts[name] == flops(sr.build_model(arch).eval(), x), name  # sliced, not zero-masked
    assert counts["fast"] > 2 * counts["mid"] > 2 * counts["slow"] > 0


def test_switching_is_in_place_and_takes_microseconds():
    model = randomised()
    before = {k: v.data_ptr() for k, v in model.state_dict().items()}
    names = list(POINTS)
    times = []
    for i in range(3000):
        t = time.perf_counter_ns()
        model.set_operating_point(names[i % 3])
        times.append(time.perf_counter_ns() - t)
    times.sort()
    assert times[len(times) // 2] < 1e6 and times[int(0.99 * len(times))] < 1e6  # < 1 ms (it is ~5 us)
    assert {k: v.data_ptr() for k, v in model.state_dict().items()} == before  # nothing copied or reloaded
    assert model.operating_point == names[2999 % 3] == "slow"
    with pytest.raises(KeyError, match="unknown operating point"):
        model.set_operating_point("turbo")


def test_points_must_be_listed_largest_first_and_nested():
    with pytest.raises(ValueError, match="not a sub-network"):
        check_nested({"slow": POINTS["slow"], "fast": POINTS["fast"]})
    wider = WDSRBArch(2, 16, (WDSRBlock(56, 12),))
    with pytest.raises(ValueError, match="not a sub-network"):
        AllInOneWDSRB({"fast": BIG, "odd": wider})


def test_exported_file_reloads_every_point_and_is_about_the_largest_networks_size(tmp_path):
    model = randomised()
    path = save_allinone(model, tmp_path / "allinone.pt")
    raw = torch.load(path, weights_only=True)  # no pickled objects
    assert raw["format"] == "hwnas.sr.allinone" and raw["state_dict"]["point_widths"].shape == (3, 2 + 2 * 4)
    reloaded, manifest = load_allinone(path)
    assert manifest["points"] == list(POINTS) and reloaded.points == POINTS
    x = torch.rand(1, 3, 20, 20)
    for name in POINTS:
        model.set_operating_point(name)
        reloaded.set_operating_point(name)
        with torch.inference_mode():
            assert torch.equal(model(x), reloaded.eval()(x))
    largest = sr.save_weights(model.subnet("fast"), tmp_path / "largest.pt")
    assert path.stat().st_size <= 1.05 * largest.stat().st_size, (path.stat().st_size, largest.stat().st_size)


def test_sandwich_takes_the_largest_the_smallest_and_random_middle_points():
    gen = torch.Generator().manual_seed(0)
    names = ("a", "b", "c", "d", "e")
    draws = [sandwich_points(names, 1, gen) for _ in range(50)]
    assert all(d[0] == "a" and d[-1] == "e" and len(d) == 3 for d in draws)
    assert {d[1] for d in draws} == {"b", "c", "d"}
    assert sandwich_points(("a", "b"), 1, gen) == ["a", "b"]
    assert sandwich_points(names, 0, gen) == ["a", "e"]
    assert sandwich_points(names, len(names), gen) == list(names)  # the default (n_random: null): every level


def test_training_together_trains_every_point_on_real_patches():
    set5 = sr.load_eval_set(sr.DEFAULT_EVAL_ROOTS["set5"], 2)[:3]
    bicubic = evaluate(sr.build_model(BicubicArch(2)), set5, 2)["psnr"]
    torch.manual_seed(0)
    model = build_allinone(POINTS)
    slow_head = model.head.weight[:8].detach().clone()
    recipe = TrainRecipe(steps=60, batch_size=8, patch_hr=48, lr=2e-3, lr_final=2e-4, threads=1)
    losses = []
    stats = train_allinone(model, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=0), recipe,
                           progress=lambda step, loss: losses.append(loss))
    assert stats.steps == 60 and len(losses) == 60 and stats.final_loss < sum(losses[:10]) / 10
    assert not torch.equal(model.head.weight[:8], slow_head)  # the shared weights moved
    assert model.operating_point == "fast" and model.training  # state restored
    for name in POINTS:
        model.set_operating_point(name)
        psnr = evaluate(model, set5, 2)["psnr"]
        # 60 steps leave every point near the bicubic start (it dips first, passes it after ~150)
        assert abs(psnr - bicubic) < 1.0, (name, psnr, bicubic)
