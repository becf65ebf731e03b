"""Real (short) trainings on the shipped T91 patches, scored on the shipped Set5."""

import math

import pytest
import torch

import tasks.sr as sr
from spaces import BicubicArch, WDSRBArch, WDSRBlock
from tasks.sr.evaluate import evaluate
from tasks.sr.train import DivergedError, TrainRecipe, train

TINY = WDSRBArch(2, 16, (WDSRBlock(32, 8),))  # 5.1k parameters


@pytest.fixture
def patches_48():
    return sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, patch_hr=48, seed=0)


def test_150_steps_beat_the_untrained_start_and_bicubic():
    set5 = sr.load_eval_set(sr.DEFAULT_EVAL_ROOTS["set5"], 2)
    bicubic = evaluate(sr.build_model(BicubicArch(2)), set5, 2)["psnr"]
    torch.manual_seed(0)
    model = sr.build_model(TINY)
    before = evaluate(model, set5, 2)["psnr"]
    losses = []
    recipe = TrainRecipe(steps=150, patch_hr=48, lr=2e-3, lr_final=2e-4, threads=1)
    stats = train(model, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=0), recipe,
                  progress=lambda step, loss: losses.append((step, loss)))
    after = evaluate(model, set5, 2)["psnr"]
    assert stats.steps == 150 and [s for s, _ in losses] == list(range(1, 151))
    assert stats.final_loss < losses[0][1]
    assert after > before + 0.2 and after > bicubic + 0.2, (before, after, bicubic)
    assert model.training and torch.get_num_threads() == 1  # mode and threads restored


def test_interrupted_and_resumed_training_equals_an_uninterrupted_one(tmp_path):
    recipe = TrainRecipe(steps=10, batch_size=4, patch_hr=48, threads=1, checkpoint_every=3)
    torch.manual_seed(1)
    straight = sr.build_model(TINY)
    torch.manual_seed(1)
    interrupted = sr.build_model(TINY)
    train(straight, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=5), recipe)

    ckpt = tmp_path / "train.pt"
    done: list[int] = []
    first = train(interrupted, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=5), recipe,
                  progress=lambda step, loss: done.append(step), checkpoint_path=ckpt,
                  should_stop=lambda: len(done) >= 7)
    assert first.stopped and first.steps == 7 and ckpt.exists()
    assert torch.load(ckpt, weights_only=True)["step"] == 7

    torch.manual_seed(99)  # a fresh process would start from other weights: the checkpoint decides
    resumed = sr.build_model(TINY)
    second = train(resumed, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=5), recipe, checkpoint_path=ckpt)
    assert second.resumed_from == 7 and second.steps == 10 and not second.stopped
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_nan_loss_raises_diverged_error_with_the_step(patches_48):
    torch.manual_seed(0)
    model = sr.build_model(TINY)

    def poison(step: int, loss: float) -> None:
        if step == 3:
            with torch.no_grad():
                model.head.weight[0, 0, 0, 0] = math.nan

    with pytest.raises(DivergedError, match="step 4") as err:
        train(model, patches_48, TrainRecipe(steps=10, batch_size=2, patch_hr=48, threads=1), progress=poison)
    assert err.value.step == 4 and math.isnan(err.value.loss)


def test_bicubic_needs_no_training(patches_48):
    stats = train(sr.build_model(BicubicArch(2)), patches_48, TrainRecipe(steps=100))
    assert stats.steps == 0 and stats.seconds == 0


def test_cosine_schedule_ends_at_lr_final():
    recipe = TrainRecipe(steps=101, lr=1e-3, lr_final=1e-5)
    assert recipe.lr_at(0) == pytest.approx(1e-3)
    assert recipe.lr_at(50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert recipe.lr_at(100) == pytest.approx(1e-5)
    with pytest.raises(ValueError):
        TrainRecipe(steps=10, lr=1e-3, lr_final=1e-2)


@pytest.mark.parametrize("other", ["another architecture", "a torn file"])
def test_checkpoint_of_another_run_is_set_aside_not_fatal(tmp_path, capsys, other):
    recipe = TrainRecipe(steps=4, batch_size=4, patch_hr=48, threads=1, checkpoint_every=2)
    ckpt = tmp_path / "final_checkpoint.pt"
    if other == "a torn file":
        ckpt.write_bytes(b"PK\x03\x04 torn")
    else:
        train(sr.build_model(WDSRBArch(2, 8, (WDSRBlock(16, 8),))), sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48),
              recipe, checkpoint_path=ckpt)
    torch.manual_seed(3)
    model = sr.build_model(TINY)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    # the first step runs from the untouched initial weights: the same as without any file
    torch.manual_seed(3)
    reference = sr.build_model(TINY)
    stats = train(model, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=1), recipe, checkpoint_path=ckpt)
    train(reference, sr.TrainPatches(sr.DEFAULT_TRAIN_ROOT, 2, 48, seed=1), recipe)
    assert stats.resumed_from == 0 and stats.steps == 4 and "training from the start" in capsys.readouterr().out
    assert len(list(tmp_path.glob("final_checkpoint.set-aside-*.pt"))) == 1 and ckpt.exists()
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert any(not torch.equal(start[k], v) for k, v in model.state_dict().items())
