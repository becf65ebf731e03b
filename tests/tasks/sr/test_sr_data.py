"""Training patches and evaluation sets from the shipped images and from temporary folders."""

import shutil

import pytest
import torch

import tasks.sr as sr
from tasks.sr.data import DataError, TrainPatches, bicubic_downscale, load_eval_set, read_image
from tasks.sr.resize import imresize

SET5 = sr.DEFAULT_EVAL_ROOTS["set5"]


def test_default_roots_are_the_shipped_folders():
    assert sr.DEFAULT_TRAIN_ROOT.name == "T91" and len(list(sr.DEFAULT_TRAIN_ROOT.iterdir())) == 91
    assert set(sr.DEFAULT_EVAL_ROOTS) == {"set5", "set14"}


def test_shipped_eval_set_pairs_lr_files_with_cropped_hr():
    images = load_eval_set(sr.DEFAULT_EVAL_ROOTS["set14"], 3)
    assert len(images) == 14
    by_name = {img.name: img for img in images}
    baboon = by_name["baboon"]  # HR 480x500 -> LR file 160x166, HR cropped to 480x498
    assert baboon.lr.shape == (1, 3, 160, 166) and baboon.hr.shape == (1, 3, 480, 498)
    assert baboon.lr.dtype == torch.float32 and 0 <= baboon.lr.min() and baboon.lr.max() <= 1
    bridge = by_name["bridge"]  # grayscale: LR repeated to RGB for the model, HR kept gray
    assert bridge.gray and bridge.hr.shape[1] == 1 and bridge.lr.shape[1] == 3
    assert torch.equal(bridge.lr[:, 0], bridge.lr[:, 2])


def test_our_bicubic_downscale_agrees_with_the_shipped_matlab_lr_files():
    """Same kernel as MATLAB imresize: off by 0.15 levels on average (rounding, and HR files that are
    not bit-identical to the ones the LR files were made from), 99.5% within one level."""
    for path in sorted((SET5 / "HR").iterdir()):
        hr, lr = read_image(path), read_image(SET5 / "LR_bicubic" / "X2" / path.name)
        diff = (bicubic_downscale(hr, 2).int() - lr.int()).abs().float()
        assert diff.mean() < 0.2 and (diff <= 1).float().mean() > 0.995, path.name


def test_flat_folder_makes_lr_and_div2k_layout_reads_lr_files(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted((SET5 / "HR").iterdir())[:2]:
        shutil.copy(path, flat / path.name)
    made = load_eval_set(flat, 2)
    assert [m.name for m in made] == ["baby", "bird"]
    hr = made[1].hr
    assert torch.allclose(made[1].lr, imresize(hr, 0.5).clamp(0, 1), atol=0.5 / 255 + 1e-6)

    div2k = tmp_path / "div2k"
    (div2k / "HR").mkdir(parents=True)
    (div2k / "LR_bicubic" / "X2").mkdir(parents=True)
    for path in sorted((SET5 / "HR").iterdir())[:2]:
        shutil.copy(path, div2k / "HR" / path.name)
        shutil.copy(SET5 / "LR_bicubic" / "X2" / path.name, div2k / "LR_bicubic" / "X2" / f"{path.stem}x2.png")
    read = load_eval_set(div2k, 2)
    shipped = load_eval_set(SET5, 2)[:2]
    assert all(torch.equal(a.lr, b.lr) and torch.equal(a.hr, b.hr) for a, b in zip(read, shipped))


def test_missing_empty_and_incomplete_folders_are_data_errors(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*data\.train_root="):
        TrainPatches(tmp_path / "nope", 2)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="empty.*holds no images"):
        load_eval_set(tmp_path / "empty", 2)
    partial = tmp_path / "partial"
    (partial / "LR_bicubic" / "X2").mkdir(parents=True)
    shutil.copytree(SET5 / "HR", partial / "HR")
    with pytest.raises(DataError, match="has no LR file for baby.png"):
        load_eval_set(partial, 2)


def test_patches_are_aligned_augmented_and_reproducible():
    patches = TrainPatches(sr.DEFAULT_TRAIN_ROOT, scale=2, patch_hr=48, seed=3)
    lr, hr = patches.batch(8)
    assert lr.shape == (8, 3, 24, 24) and hr.shape == (8, 3, 48, 48)
    assert lr.dtype == hr.dtype == torch.float32 and 0 <= lr.min() and hr.max() <= 1
    # LR is the bicubic of HR (same transform on both), up to the patch border and rounding
    inner = (imresize(hr, 0.5) - lr)[..., 3:-3, 3:-3].abs()
    assert inner.mean() < 1.5 / 255
    again = TrainPatches(sr.DEFAULT_TRAIN_ROOT, scale=2, patch_hr=48, seed=3)
    assert torch.equal(again.batch(8)[1], hr)
    state = again.state_dict()
    nxt = again.batch(4)
    again.load_state_dict(state)
    assert torch.equal(again.batch(4)[0], nxt[0])


def test_patch_size_rounds_to_the_scale_and_val_images_are_held_out():
    patches = TrainPatches(sr.DEFAULT_TRAIN_ROOT, scale=3, patch_hr=64, val_images=4)
    assert patches.patch_hr == 63 and patches.batch(2)[0].shape == (2, 3, 21, 21)
    val = patches.val_set()
    assert len(val) == 4 and not {v.name for v in val} & set(patches.names)
    assert all(v.hr.shape[-1] == 3 * v.lr.shape[-1] for v in val)
    with pytest.raises(DataError, match="at least 4000 px"):
        TrainPatches(sr.DEFAULT_TRAIN_ROOT, scale=2, patch_hr=4000)


def test_several_training_folders_pool_into_one_set():
    t91, set5 = sr.data.SHIPPED_TRAIN_SETS["T91"], sr.DEFAULT_EVAL_ROOTS["set5"]
    pooled = sr.TrainPatches([t91, set5], 2, 48, seed=0, val_images=2)
    assert len(pooled) == 91 + 5 - 2 and "Set5/baby" in pooled.names + [v.name for v in pooled.val_set()]
    lr, hr = pooled.batch(4)
    assert lr.shape == (4, 3, 24, 24) and hr.shape == (4, 3, 48, 48)

