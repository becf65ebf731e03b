"""Patched timm ViTs keep timm's behaviour: same logits at keep rate 1.0, batch-independent
outputs, a matching ONNX export, and real token counts that follow the keep rates."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from spaces import TokenPruneSpace
from tasks.vit import (
    build_pruned,
    evit_baseline,
    export_onnx,
    patch_from_arch,
    patch_token_selectors,
    run_onnx,
)

RATES = (0.7, 0.49, 0.343)

# (timm name, extra kwargs, batch): LayerScale (deit3), q/k norm, distillation token, register
# tokens with average pooling included.
EQUALITY_CASES = [
    ("deit_tiny_patch16_224", {}, 2),
    ("deit_small_patch16_224", {}, 2),
    ("deit_base_patch16_224", {}, 1),
    ("deit3_small_patch16_224", {}, 1),
    ("deit_tiny_patch16_224", {"qk_norm": True}, 2),
    ("deit_tiny_distilled_patch16_224", {}, 1),
    ("vit_tiny_patch16_224", {"reg_tokens": 4, "global_pool": "avg", "class_token": False}, 1),
]


@pytest.mark.parametrize("name,kwargs,batch", EQUALITY_CASES, ids=lambda v: str(v))
@torch.inference_mode()
def test_keep_rate_one_gives_the_unpatched_logits(name, kwargs, batch):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    for block in model.blocks:
        if hasattr(block.ls1, "gamma"):  # LayerScale (init 1e-6) must matter: non-trivial gammas
            block.ls1.gamma.uniform_(0.5, 1.5)
            block.ls2.gamma.uniform_(0.5, 1.5)
    images = torch.randn(batch, 3, 224, 224)
    reference = model(images)
    patched = patch_token_selectors(model, (1.0, 1.0, 1.0)).eval()
    assert (patched(images) - reference).abs().max().item() < 1e-5
    if model.cls_token is not None:
        assert (evit_baseline(model, (1.0, 1.0, 1.0)).eval()(images) - reference).abs().max().item() < 1e-5
    # and pruning really changes the computation
    changed = (patch_token_selectors(model, RATES).eval()(images) - reference).abs().max()
    assert changed > 1e-2 * reference.abs().max()


@pytest.fixture(scope="module")
def deit_tiny():
    torch.manual_seed(1)
    return timm.create_model("deit_tiny_patch16_224", pretrained=False).eval()


def _block_token_counts(model, images):
    counts = []
    hooks = [b.register_forward_pre_hook(lambda m, a: counts.append(a[0].shape[1])) for b in model.vit.blocks]
    with torch.inference_mode():
        model(images)
    for h in hooks:
        h.remove()
    return counts


@pytest.mark.parametrize("method", ["selector", "evit"])
def test_tokens_per_block_follow_keep_rates_and_match_the_arch_ops(deit_tiny, method):
    space = TokenPruneSpace.for_model("deit_tiny_patch16_224")
    arch = space.arch(RATES)
    model = patch_from_arch(deit_tiny, arch) if method == "selector" else evit_baseline(deit_tiny, RATES)
    counts = _block_token_counts(model.eval(), torch.randn(1, 3, 224, 224))
    # 1 class token + 196 patches; then 137 / 96 / 67 patches + 1 package token
    assert counts == [197] * 3 + [139] * 3 + [98] * 3 + [69] * 3
    assert [op.inputs[0][2] for op in arch.ops() if op.kind == "sdpa"] == counts


@pytest.mark.parametrize("method", ["selector", "evit"])
@torch.inference_mode()
def test_batch_1_and_8_give_the_same_per_image_outputs(deit_tiny, method):
    torch.manual_seed(2)
    model = patch_token_selectors(deit_tiny, RATES) if method == "selector" else evit_baseline(deit_tiny, RATES)
    model.eval()
    images = torch.randn(8, 3, 224, 224)
    batched = model(images)
    single = torch.cat([model(images[i:i + 1]) for i in range(8)])
    assert (batched - single).abs().max().item() < 1e-4


def test_onnx_export_matches_pytorch(deit_tiny, tmp_path):
    torch.manual_seed(3)
    model = patch_token_selectors(deit_tiny, RATES).eval()
    images = torch.randn(2, 3, 224, 224)
    path = export_onnx(model, tmp_path / "pruned.onnx", (2, 3, 224, 224))
    with torch.inference_mode():
        expected = model(images).numpy()
    got = run_onnx(path, images)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4


def test_demo_arch_builds_a_model_whose_token_counts_match_its_ops():
    arch = TokenPruneSpace.for_model("demo_vit").arch(RATES)
    model = build_pruned(arch)
    counts = _block_token_counts(model, torch.randn(1, 1, 28, 28))
    assert counts == [50, 50, 36, 26, 26, 19]  # 1 + 49; then 34 / 24 / 17 patches + 1 package
    assert [op.inputs[0][2] for op in arch.ops() if op.kind == "sdpa"] == counts
    assert arch.ops()[0].inputs[0] == (1, 1, 28, 28) and arch.ops()[0].output == (1, 24, 28, 28)
