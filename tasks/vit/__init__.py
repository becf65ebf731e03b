"""ViT token pruning (SPViT-style learned selectors, EViT baseline) for timm VisionTransformers.

Typical use::

    model = load_model("deit_small_patch16_224", checkpoint="deit_small.pth")
    student = patch_token_selectors(copy.deepcopy(model), keep_rates=(0.7, 0.49, 0.343))
    train_selectors(student, model, load_imagefolder("train/"), SelectorRecipe(steps=2000))
    evaluate_top1(student, load_imagefolder("val/"))
    export_onnx(student, "student.onnx", (1, 3, 224, 224))
"""

from tasks.vit.core import prune_tokens, soft_prune
from tasks.vit.errors import TokenPruneError
from tasks.vit.evaluate import evaluate_top1, export_onnx, export_tflite, run_onnx
from tasks.vit.patch import (
    PruneAux,
    TokenPrunedViT,
    evit_baseline,
    patch_from_arch,
    patch_token_selectors,
)
from tasks.vit.real import build_pruned, load_imagefolder, load_model
from tasks.vit.selector import TokenSelector
from tasks.vit.train import SelectorLog, SelectorRecipe, selector_loss, train_selectors

__all__ = [
    "PruneAux",
    "SelectorLog",
    "SelectorRecipe",
    "TokenPruneError",
    "TokenPrunedViT",
    "TokenSelector",
    "build_pruned",
    "evaluate_top1",
    "evit_baseline",
    "export_onnx",
    "export_tflite",
    "load_imagefolder",
    "load_model",
    "patch_from_arch",
    "patch_token_selectors",
    "prune_tokens",
    "run_onnx",
    "selector_loss",
    "soft_prune",
    "train_selectors",
]
