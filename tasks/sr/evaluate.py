"""Scoring an SR model on evaluation images: mean PSNR-Y and SSIM-Y."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from tasks.sr.data import EvalImage
from tasks.sr.metrics import psnr_y, rgb_to_gray, ssim_y


def super_resolve(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """``model(lr)`` clamped to [0, 1], in eval mode under inference_mode (mode restored); run on the
    model's device (a supernet scored mid-training on a GPU), returned on ``lr``'s."""
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), lr.device)
    try:
        with torch.inference_mode():
            return model(lr.to(device)).clamp_(0, 1).to(lr.device)
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, images: list[EvalImage], scale: int) -> dict[str, float]:
    """``{"psnr": dB, "ssim": ...}`` averaged over ``images`` (grayscale ones scored on gray)."""
    if not images:
        raise ValueError("evaluate() needs at least one image")
    psnrs, ssims = [], []
    for img in images:
        sr = super_resolve(model, img.lr)
        if sr.shape[-2:] != img.hr.shape[-2:]:
            raise ValueError(f"{img.name}: model output {tuple(sr.shape)} does not match HR {tuple(img.hr.shape)}; "
                             f"is the model built for x{scale}?")
        if img.gray:
            sr = rgb_to_gray(sr)
        psnrs.append(psnr_y(sr, img.hr, scale))
        ssims.append(ssim_y(sr, img.hr, scale))
    return {"psnr": sum(psnrs) / len(psnrs), "ssim": sum(ssims) / len(ssims)}


def evaluate_sets(model: nn.Module, sets: Mapping[str, list[EvalImage]], scale: int) -> dict[str, dict[str, float]]:
    """:func:`evaluate` on each named set: ``{name: {"psnr": ..., "ssim": ...}}``."""
    return {name: evaluate(model, images, scale) for name, images in sets.items()}
