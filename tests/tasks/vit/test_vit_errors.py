"""Bad keep rates, stages, model families, checkpoints and folders raise TokenPruneError."""

from __future__ import annotations

import pytest
import timm
import torch

from tasks.vit import (
    TokenPruneError,
    evit_baseline,
    load_imagefolder,
    load_model,
    patch_token_selectors,
)


@pytest.fixture(scope="module")
def vit():
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=6).eval()


@pytest.mark.parametrize("rates,stages,needle", [
    ((0.7, 0.0, 0.3), (1, 2, 3), "outside (0, 1]"),
    ((1.2, 0.5, 0.3), (1, 2, 3), "outside (0, 1]"),
    ((-0.1,), (1,), "outside (0, 1]"),
    ((0.5, 0.7, 0.3), (1, 2, 3), "non-increasing"),
    ((0.7, 0.5, 0.3), (1, 2, 6), "stage index 6"),
    ((0.7, 0.5, 0.3), (1, 3, 3), "strictly increasing"),
    ((0.7, 0.5, 0.3), (4, 2, 3), "strictly increasing"),
    ((0.7, 0.5), (1, 2, 3), "len(keep_rates)=2 != len(stages)=3"),
    ((), (), "empty"),
])
def test_bad_settings_are_refused_with_a_clear_message(vit, rates, stages, needle):
    for build in (patch_token_selectors, evit_baseline):
        with pytest.raises(TokenPruneError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            build(vit, rates, stages)


def test_token_prune_error_is_a_value_error():
    assert issubclass(TokenPruneError, ValueError)


def test_default_stages_scale_with_depth(vit):
    assert patch_token_selectors(vit, (0.7, 0.5, 0.3)).stages == (2, 3, 5)
    deep = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=3)
    with pytest.raises(TokenPruneError, match="give stages"):
        patch_token_selectors(deep, (0.7, 0.5, 0.3))


def test_evit_needs_a_preceding_block_and_a_class_token(vit):
    with pytest.raises(TokenPruneError, match="stage 0"):
        evit_baseline(vit, (0.7,), (0,))
    no_cls = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=4, class_token=False,
                               global_pool="avg")
    with pytest.raises(TokenPruneError, match="class token"):
        evit_baseline(no_cls, (0.5,), (2,))


@pytest.mark.parametrize("name", ["pit_ti_224", "resnet18"])
def test_pooling_vits_and_cnns_are_refused_naming_what_is_supported(name):
    model = timm.create_model(name, pretrained=False)
    with pytest.raises(TokenPruneError, match="VisionTransformer") as err:
        patch_token_selectors(model, (0.7, 0.5, 0.3))
    if name.startswith("pit"):
        assert "pools" in str(err.value)


def test_patching_twice_is_refused(vit):
    with pytest.raises(TokenPruneError, match="already"):
        patch_token_selectors(patch_token_selectors(vit, (0.5, 0.4, 0.3)), (0.5, 0.4, 0.3))


def test_load_model_checkpoint_errors(tmp_path):
    with pytest.raises(TokenPruneError, match="not found"):
        load_model("deit_tiny_patch16_224", tmp_path / "missing.pth")
    with pytest.raises(TokenPruneError, match="unknown timm model"):
        load_model("not_a_model")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(TokenPruneError, match="weights-only"):
        load_model("deit_tiny_patch16_224", junk)
    small = timm.create_model("deit_tiny_patch16_224", pretrained=False, num_classes=10)
    ckpt = tmp_path / "tiny10.pth"
    torch.save({"model": small.state_dict()}, ckpt)
    with pytest.raises(TokenPruneError, match="head.weight"):
        load_model("deit_tiny_patch16_224", ckpt)  # 1000 classes asked, 10 stored
    with pytest.raises(TokenPruneError, match="missing"):
        load_model("deit_small_patch16_224", ckpt, num_classes=10)
    loaded = load_model("deit_tiny_patch16_224", ckpt, num_classes=10)
    assert torch.equal(loaded.head.weight, small.head.weight)


def test_load_imagefolder_errors_and_success(tmp_path):
    with pytest.raises(TokenPruneError, match="not found"):
        load_imagefolder(tmp_path / "nope", 224)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenPruneError, match="no class folders"):
        load_imagefolder(tmp_path / "empty", 224)
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "imgs" / cls / "x.png")
    data = load_imagefolder(tmp_path / "imgs", 32)
    image, label = data[1]
    assert image.shape == (3, 32, 32) and label == 1
