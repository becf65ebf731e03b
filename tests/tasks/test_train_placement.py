"""Every training path honours ``train.device`` / ``train.amp``: bf16 on the CPU trains to finite
losses, and a short SR run lands within 0.1 dB of float32; the kornia augmentation is exact."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import tasks.sr as sr
from spaces import ESPCNArch, FSRCNNArch, SRSpace, WDSRBArch, WDSRBlock
from tasks.placement import Placement, pick_device
from tasks.sr.allinone import AllInOneWDSRB
from tasks.sr.allinone_train import train_allinone
from tasks.sr.augment import dihedral
from tasks.sr.evaluate import evaluate
from tasks.sr.supernet import SRSupernet
from tasks.sr.train import TrainRecipe, train
from tasks.vit import SelectorRecipe, patch_token_selectors, train_selectors
from tasks.vit.demo import TeacherRecipe, build_demo_teacher, load_demo_data, train_teacher

BF16 = Placement("cpu", "bf16")
TINY = WDSRBArch(2, 16, (WDSRBlock(32, 8),))


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow  # two 150-step trainings, one in emulated bf16 (~30 s)
def test_a_short_bf16_run_scores_within_a_tenth_of_a_db_of_float32():
    set5 = sr.load_eval_set(sr.DEFAULT_EVAL_ROOTS["set5"], 2)
    scores = {}
    for placement in (Placement(), BF16):
        torch.manual_seed(0)
        model = sr.build_model(TINY)
        recipe = TrainRecipe(steps=150, patch_hr=48, lr=2e-3, lr_final=2e-4, threads=1, placement=placement)
        stats = train(model, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=0), recipe)
        assert math.isfinite(stats.final_loss) and next(model.parameters()).dtype == torch.float32
        scores[placement.amp] = evaluate(model, set5, 2)["psnr"]
    assert abs(scores["bf16"] - scores["off"]) < 0.1, scores


def test_baselines_and_the_all_in_one_chain_train_in_bf16():
    patches = sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 24, seed=0)
    recipe = TrainRecipe(steps=3, batch_size=2, patch_hr=24, threads=1, placement=BF16)
    for arch in (FSRCNNArch(2), ESPCNArch(2)):
        assert math.isfinite(train(sr.build_model(arch), patches, recipe).final_loss)
    big = WDSRBArch(2, 8, (WDSRBlock(16, 8), WDSRBlock(16, 8)))
    net = AllInOneWDSRB({"fast": big, "slow": WDSRBArch(2, 8, (WDSRBlock(8, 8),))})
    assert math.isfinite(train_allinone(net, patches, recipe).final_loss)


def test_the_supernet_trains_in_bf16(tmp_path):
    import latency_models
    from search.sr.dnas.train import LatencyTerm, SupernetPlan, train_supernet

    s21 = latency_models.load_published("s21", 2)
    space = SRSpace(max_blocks=2)
    patches = sr.TrainPatches(scale=2, patch_hr=24, seed=0, val_images=1)
    plan = SupernetPlan(warmup_steps=1, width_steps=1, joint_steps=2, batch_size=2, patch_hr=24, threads=1,
                        eval_every=2, placement=BF16)
    term = LatencyTerm(s21.torch_block_latency, None, 20.0, float(s21.predict_archs([space.largest()])[0]))
    state = train_supernet(SRSupernet(space, seed=1), patches, patches.val_set()[:1], plan, term,
                           tmp_path / "s.pt", lambda net, state, point: None)
    assert state.step == 4 and all(math.isfinite(p["l1"]) for p in state.trajectory)


def test_vit_teacher_and_selectors_train_in_bf16():
    data = load_demo_data(img_size=28, held_out=200)
    teacher = build_demo_teacher(img_size=28, embed_dim=32, depth=3, num_heads=2, seed=0)
    log = train_teacher(teacher, data, TeacherRecipe(epochs=0.02, batch_size=16, warmup_steps=2, placement=BF16))
    assert math.isfinite(log.train_loss)
    student = patch_token_selectors(copy.deepcopy(teacher), (0.7, 0.49), (1, 2))
    slog = train_selectors(student, teacher, data.train, SelectorRecipe(steps=3, batch_size=8, placement=BF16))
    assert slog.steps == 3 and all(math.isfinite(v) for v in slog.losses)


def test_dihedral_moves_lr_and_hr_alike_through_all_eight_symmetries():
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(8, 3, 5, 5, generator=g)
    hr = lr.repeat_interleave(2, -1).repeat_interleave(2, -2)  # nearest x2: stays so under any symmetry
    flips = torch.tensor([[h, v, t] for h in (0, 1) for v in (0, 1) for t in (0, 1)], dtype=torch.bool)
    a, b = dihedral(lr, hr, flips)
    assert torch.equal(b, a.repeat_interleave(2, -1).repeat_interleave(2, -2))
    images = {tuple(a[i, 0].flatten().tolist()) for i in range(8)}
    assert len({tuple(lr[i, 0].flatten().tolist()) for i in range(8)}) == 8 and len(images) == 8
    x = lr[:1].expand(8, -1, -1, -1)  # one image: its 8 transforms are the 8 distinct symmetries
    out, _ = dihedral(x, x, flips)
    assert len({tuple(out[i].flatten().tolist()) for i in range(8)}) == 8
    assert torch.equal(out[1], x[0].transpose(-1, -2)) and torch.equal(out[4], x[0].flip(-1))


def test_batches_are_the_same_wherever_the_images_live():
    one = sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 24, seed=3)
    two = sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 24, seed=3).to("cpu")
    for _ in range(2):
        for x, y in zip(one.batch(4), two.batch(4)):
            assert torch.equal(x, y)


def test_workers_take_gpus_round_robin_and_the_cpu_without_one():
    assert [pick_device("auto", k, 2) for k in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert pick_device("auto", 3, 0) == "cpu" and pick_device("cpu", 1, 2) == "cpu"
    for spec, count in (("cuda", 0), ("cuda:2", 2), ("gpu", 1)):
        with pytest.raises(ValueError, match="train.device"):
            pick_device(spec, 0, count)
    with pytest.raises(ValueError, match="amp"):
        Placement("cpu", "fp8")
