"""MATLAB ``imresize`` bicubic, in torch.

Published SR tables make LR images with MATLAB ``imresize(hr, 1/s, 'bicubic')`` (antialiased
cubic, a = -0.5, symmetric border) and their "Bicubic" row upsamples those LR files with the same
function. torch's bicubic upsampling uses a = -0.75 (sharper) and clamps at the border: it scores
33.97 dB on Set5 x2 instead of the published 33.68, so both directions are reimplemented here:

- :func:`imresize` builds the exact per-axis weight matrices (any factor, antialiased when
  shrinking) and applies them as two matrix products: for data preparation, not for export.
- :func:`upscale_phase_filters` gives the same weights for an integer upscale as a fixed 5x5
  filter bank per output phase, so an exportable module can do conv + PixelShuffle.
"""

from __future__ import annotations

import math

import torch


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = 1.5 * ax3 - 2.5 * ax2 + 1
    outer = -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2
    return torch.where(ax <= 1, inner, torch.where(ax <= 2, outer, torch.zeros_like(ax)))


def resize_matrix(in_len: int, out_len: int, scale: float) -> torch.Tensor:
    """The ``(out_len, in_len)`` float64 matrix of MATLAB's 1-D bicubic resize by ``scale``."""
    width = 4.0 / scale if scale < 1 else 4.0
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # input coordinate (1-based) of each output pixel
    left = torch.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    dist = u[:, None] - idx
    weights = scale * cubic(dist * scale) if scale < 1 else cubic(dist)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric border: index 0 -> 1, -1 -> 2, in_len + 1 -> in_len (1-based), period 2*in_len.
    zero_based = (idx - 1).long() % (2 * in_len)
    zero_based = torch.where(zero_based >= in_len, 2 * in_len - 1 - zero_based, zero_based)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64)
    matrix.scatter_add_(1, zero_based, weights)
    return matrix


def imresize(img: torch.Tensor, scale: float, out_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """MATLAB ``imresize(img, scale, 'bicubic')`` of ``(..., H, W)`` float images.

    The output size is ``ceil(H * scale), ceil(W * scale)`` unless ``out_hw`` is given. Computed in
    float64, returned in ``img``'s dtype, not clamped or rounded (do that to mimic uint8 output).
    """
    h, w = img.shape[-2:]
    out_h, out_w = out_hw or (math.ceil(h * scale), math.ceil(w * scale))
    mh = resize_matrix(h, out_h, scale)
    mw = resize_matrix(w, out_w, scale)
    out = mh @ img.to(torch.float64) @ mw.T
    return out.to(img.dtype)


def upscale_phase_filters(scale: int) -> torch.Tensor:
    """MATLAB bicubic upscaling by an integer ``scale`` as ``(scale*scale, 5, 5)`` filters.

    Filter ``py * scale + px`` gives output pixel ``(scale*i + py, scale*j + px)`` from the 5x5
    input window centred on ``(i, j)``; the taps of every phase fit in offsets -2..2.
    """
    taps = torch.zeros(scale, 5, dtype=torch.float64)
    offsets = torch.arange(-2, 3, dtype=torch.float64)
    for phase in range(scale):
        # 0-based input coordinate of output pixel scale*i + phase, relative to i.
        centre = (phase + 0.5) / scale - 0.5
        taps[phase] = cubic(centre - offsets)
        taps[phase] /= taps[phase].sum()
    return torch.einsum("pk,ql->pqkl", taps, taps).reshape(scale * scale, 5, 5)
