"""Selector training on the shipped digits: straight-through gradients reach every selector and
a short ``train_selectors`` run lowers the objective."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from tasks.vit import SelectorRecipe, evaluate_top1, patch_token_selectors, selector_loss, train_selectors
from tasks.vit.demo import TeacherRecipe, build_demo_teacher, load_demo_data, train_teacher

RATES, STAGES = (0.7, 0.49, 0.343), (1, 2, 3)


@pytest.fixture(scope="module")
def demo():
    """A small demo teacher (28x28, patch 4, dim 64, depth 4) trained briefly on the digits."""
    data = load_demo_data(img_size=28, held_out=500)
    teacher = build_demo_teacher(img_size=28, embed_dim=64, depth=4, num_heads=2, seed=0)
    log = train_teacher(teacher, data, TeacherRecipe(epochs=1.5, batch_size=64, warmup_steps=20))
    return data, teacher, log


def test_demo_data_is_shuffled_split_and_normalised():
    data = load_demo_data(img_size=56, held_out=1000)
    assert data.train_images.shape == (4000, 1, 56, 56) and data.test_images.shape == (1000, 1, 56, 56)
    assert sorted(torch.bincount(data.test_labels).tolist())[0] > 70  # all digits in the held-out set
    assert abs(data.train_images.mean().item()) < 0.2 and 0.8 < data.train_images.std().item() < 1.2


@pytest.mark.slow  # trains the demo teacher first
def test_brief_teacher_training_learns_the_digits(demo):
    data, teacher, log = demo
    assert log.test_top1 > 0.25, log  # chance is 0.1; ViTs start slowly (~1500 steps to 97%)
    assert evaluate_top1(teacher, data.test) == pytest.approx(log.test_top1)


@pytest.mark.slow  # trains the demo teacher first
def test_straight_through_gradients_reach_every_selector(demo):
    data, teacher, _ = demo
    student = patch_token_selectors(copy.deepcopy(teacher), RATES, STAGES).train()
    images, labels = data.train_images[:16], data.train_labels[:16]
    logits, aux = student.forward_with_aux(images, torch.Generator().manual_seed(0))
    assert set(aux.mask.unique().tolist()) <= {0.0, 1.0}  # hard decisions in the forward pass
    assert aux.tokens.shape[1] == 1 + 49 + 1  # all tokens stay, dropped ones masked; package token
    F.cross_entropy(logits, labels).backward()
    for i, selector in enumerate(student.selectors):
        for name, param in selector.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"selector {i} {name}"


@pytest.mark.slow  # trains the demo teacher first
def test_train_selectors_lowers_the_objective(demo):
    data, teacher, _ = demo
    student = patch_token_selectors(copy.deepcopy(teacher), RATES, STAGES)
    recipe = SelectorRecipe(steps=40, batch_size=32, lr=3e-3)
    images, labels = data.test_images[:128], data.test_labels[:128]

    def objective() -> float:
        student.train()
        student.vit.eval()
        with torch.no_grad():
            loss, _ = selector_loss(student, teacher, images, labels, RATES, recipe,
                                    torch.Generator().manual_seed(5))
        student.eval()
        return loss.item()

    before = objective()
    log = train_selectors(student, teacher, data.train, recipe)
    after = objective()
    assert log.steps == 40 and not student.training
    assert after < before, (before, after, log.parts)
    assert abs(log.parts["keep_ratio_last"] - RATES[-1]) < 0.1


@pytest.mark.slow  # trains the demo teacher first
def test_hard_phase_trains_on_the_inference_path(demo):
    """``hard_steps``: the last steps run top-k exactly as inference does; gradients reach the
    backbone and (through the package token's weights) every selector's scoring head."""
    data, teacher, _ = demo
    student = patch_token_selectors(copy.deepcopy(teacher), RATES, STAGES).train()
    images, labels = data.train_images[:16], data.train_labels[:16]
    logits, aux = student.forward_with_aux(images, hard=True)
    assert aux.mask is None and aux.tokens.shape[1] == 1 + 17 + 1  # round(0.343 x 49) patches kept, package
    F.cross_entropy(logits, labels).backward()
    assert student.vit.blocks[-1].mlp.fc2.weight.grad.abs().sum() > 0
    for i, selector in enumerate(student.selectors):
        assert selector.w_score.grad is not None and selector.w_score.grad.abs().sum() > 0, i
    with torch.no_grad():
        assert torch.allclose(student.eval()(images), logits, atol=1e-5)  # the very path inference runs
    log = train_selectors(student, teacher, data.train, SelectorRecipe(steps=6, hard_steps=2, backbone_lr=1e-4))
    assert log.steps == 6 and set(log.parts) == {"ce", "kl"}  # the last steps were hard ones
