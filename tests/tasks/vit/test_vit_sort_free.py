"""Token selection without a sort (for LiteRT, which has none) keeps exactly the tokens top-k
keeps, in the same order, and a pruned timm ViT exported that way runs in the LiteRT
interpreter with PyTorch's logits."""

import pytest
import timm
import torch

from tasks.vit import export_tflite, patch_token_selectors, prune_tokens
from tasks.vit.core import kept_mask


@pytest.mark.parametrize("keep", [1, 7, 19, 20])
def test_kept_mask_is_the_top_k(keep):
    scores = torch.randn(5, 20, generator=torch.Generator().manual_seed(keep))
    want = torch.zeros_like(scores, dtype=torch.bool).scatter(1, scores.topk(keep, dim=1).indices, True)
    assert torch.equal(kept_mask(scores, keep), want)


def test_ties_go_to_the_lower_index_and_keep_the_count():
    scores = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0, 3.0]])
    assert kept_mask(scores, 2).tolist() == [[False, True, True, False, False, False]]
    assert int(kept_mask(torch.zeros(3, 9), 4).sum(dim=1).unique()) == 4


@pytest.mark.parametrize("has_package", [False, True])
def test_sort_free_pruning_gives_the_same_tokens(has_package):
    gen = torch.Generator().manual_seed(int(has_package))
    x = torch.randn(3, 1 + 16 + int(has_package), 8, generator=gen)
    scores = torch.randn(3, 16 + int(has_package), generator=gen)
    assert torch.equal(prune_tokens(x, 1, has_package, scores, 6, sort_free=True),
                       prune_tokens(x, 1, has_package, scores, 6))


@pytest.mark.slow  # one litert-torch conversion of deit_tiny: ~40 s
def test_tflite_export_of_a_pruned_deit_matches_pytorch(tmp_path):
    pytest.importorskip("litert_torch", reason="the tflite extra is part of .[dev]")
    from tasks.litert import TFLiteModule

    torch.manual_seed(3)
    deit_tiny = timm.create_model("deit_tiny_patch16_224", pretrained=False)
    model = patch_token_selectors(deit_tiny, (0.7, 0.49, 0.343)).eval()
    images = torch.randn(2, 3, 224, 224)
    path = export_tflite(model, tmp_path / "pruned.tflite", (2, 3, 224, 224))
    with torch.inference_mode():
        expected = model(images)
    got = TFLiteModule(path)(images)
    assert got.shape == expected.shape and float((got - expected).abs().max()) < 1e-3
    assert model.sort_free is False  # the export worked on a copy
