"""The 8 symmetries of the square applied to aligned (LR, HR) batches with kornia's augmentations.

The flips are drawn once per sample by the caller's generator (deterministic under the run's seed,
and resumable with it) and handed to kornia as parameters, so the LR and the HR batch, of different
sizes, get the same transform. kornia has no transpose (its 90-degree rotation warps through an affine
grid, which resamples); :class:`RandomTranspose` adds the exact one in kornia's augmentation form.
"""

from __future__ import annotations

from typing import Any

import torch
from kornia.augmentation import GeometricAugmentationBase2D, RandomHorizontalFlip, RandomVerticalFlip


class RandomTranspose(GeometricAugmentationBase2D):
    """Swap the last two axes of a square batch per sample, with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=p, same_on_batch=False)

    def compute_transformation(self, input: torch.Tensor, params: dict[str, torch.Tensor],
                               flags: dict[str, Any]) -> torch.Tensor:
        swap = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], device=input.device)
        return swap.expand(input.shape[0], 3, 3)

    def apply_transform(self, input: torch.Tensor, params: dict[str, torch.Tensor], flags: dict[str, Any],
                        transform: torch.Tensor | None = None) -> torch.Tensor:
        return input.transpose(-1, -2)


_STEPS = (RandomHorizontalFlip(), RandomVerticalFlip(), RandomTranspose())  # applied in this order


def dihedral(lr: torch.Tensor, hr: torch.Tensor, flips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``flips``: bool ``(B, 3)``, whether each sample is flipped horizontally, vertically and
    transposed (in that order). Returns the transformed ``(lr, hr)``, on their own device."""
    flips = flips.to(lr.device)
    out = []
    for batch in (lr, hr):
        for k, step in enumerate(_STEPS):
            params = {"batch_prob": flips[:, k], "forward_input_shape": torch.tensor(batch.shape)}
            batch = step(batch, params=params)
        out.append(batch)
    return out[0], out[1]
