"""PSNR and SSIM on the Y channel, as standard SR evaluation computes them.

Both metrics quantise the images to uint8 levels first (an SR result is saved as an 8-bit image
before scoring), crop ``scale`` pixels from every border, and score the BT.601 luma in the
16..235 range. A single-channel (grayscale) image is scored on its own gray values, 0..255: that
is how Set14's ``bridge`` enters the published Set14 figures.
"""

from __future__ import annotations

import math

import torch

# ITU-R BT.601 luma for RGB in [0, 1], giving Y in [16, 235] (MATLAB rgb2ycbcr).
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def _as_batch(img: torch.Tensor, name: str) -> torch.Tensor:
    if img.dim() == 3:
        img = img.unsqueeze(0)
    if img.dim() != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be (C, H, W) or (B, C, H, W) with C in (1, 3), got {tuple(img.shape)}")
    return img


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(..., 3, H, W)`` RGB in [0, 1]: ``(..., 1, H, W)`` in [16, 235] (float)."""
    if img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(f"rgb_to_y expects (..., 3, H, W), got {tuple(img.shape)}")
    r, g, b = img.unbind(dim=-3)
    y = 16.0 + _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b
    return y.unsqueeze(-3)


def rgb_to_gray(img: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(..., 3, H, W)`` RGB in [0, 1] on the full [0, 1] range: gray stays gray."""
    return (rgb_to_y(img) - 16.0) / 219.0


def _y_levels(img: torch.Tensor, scale: int) -> torch.Tensor:
    """``(B, C, H, W)`` in [0, 1] -> ``(B, H', W')`` float64 luma levels (0..255), border cropped."""
    q = (img.detach().to(torch.float64).clamp(0, 1) * 255.0).round() / 255.0
    y = rgb_to_y(q) if q.shape[1] == 3 else q * 255.0
    y = y[:, 0]
    if scale > 0:
        y = y[:, scale:-scale, scale:-scale]
    return y


def _pair(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    sr, hr = _as_batch(sr, "sr"), _as_batch(hr, "hr")
    if sr.shape != hr.shape:
        raise ValueError(f"sr {tuple(sr.shape)} and hr {tuple(hr.shape)} differ in shape")
    if min(hr.shape[-2:]) <= 2 * scale:
        raise ValueError(f"image {tuple(hr.shape[-2:])} too small to crop a border of {scale}")
    return _y_levels(sr, scale), _y_levels(hr, scale)


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """PSNR in dB of ``sr`` against ``hr``, both ``(C, H, W)`` or ``(B, C, H, W)`` in [0, 1].

    Mean over the batch; ``inf`` for identical images.
    """
    y_sr, y_hr = _pair(sr, hr, scale)
    mse = ((y_sr - y_hr) ** 2).mean(dim=(1, 2))
    values = [math.inf if m == 0 else 10.0 * math.log10(255.0**2 / float(m)) for m in mse]
    return sum(values) / len(values)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _gaussian_filter(maps: torch.Tensor) -> torch.Tensor:
    """'Valid' 11x11 Gaussian filtering of ``(B, K, H, W)`` float64 maps, done separably as
    weighted sums of shifted slices (the same sums as the 2-D window; torch has no fast float64
    convolution on the CPU, which made this dominate evaluation time)."""
    g = _gaussian_1d().tolist()
    n = len(g)
    h, w = maps.shape[-2:]
    rows = sum(weight * maps[..., i:h - n + 1 + i, :] for i, weight in enumerate(g))
    return sum(weight * rows[..., i:w - n + 1 + i] for i, weight in enumerate(g))


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """SSIM of ``sr`` against ``hr`` (shapes as :func:`psnr_y`), mean over the batch.

    Wang et al.'s ``ssim_index.m``: 11x11 Gaussian window (sigma 1.5), 'valid' filtering,
    K = (0.01, 0.03), L = 255.
    """
    y_sr, y_hr = _pair(sr, hr, scale)
    x, y = y_sr[:, None], y_hr[:, None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y, exx, eyy, exy = _gaussian_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1)).unbind(1)
    sxx, syy, sxy = exx - mu_x**2, eyy - mu_y**2, exy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(ssim_map.mean(dim=(1, 2)).mean())
