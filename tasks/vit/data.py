"""Loader-ish data: tensors, datasets or batch iterables, turned into (images, labels) batches."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from tasks.vit.errors import TokenPruneError

# (images (N, C, H, W) float, labels (N,) int64), a map-style Dataset of (image, label), or any
# iterable of (images, labels) batches such as a DataLoader.
Data = tuple[torch.Tensor, torch.Tensor] | Dataset | Iterable[Any]


def iter_batches(data: Data, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                 for_gpu: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over ``data`` as (images, labels) batches (tensor pairs are sliced directly).
    ``for_gpu``: a dataset is decoded by worker processes into pinned memory, so the copy to the
    GPU overlaps the step (on the CPU, workers would only take cores from training)."""
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        images, labels = data
        if images.shape[0] != labels.shape[0]:
            raise TokenPruneError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        n = images.shape[0]
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield images[idx], labels[idx]
        return
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        workers = min(4, len(os.sched_getaffinity(0)) - 1) if for_gpu else 0
        data = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                          num_workers=max(workers, 0), pin_memory=for_gpu)
    for batch in data:
        images, labels = batch[0], batch[1]
        yield images, torch.as_tensor(labels)


def endless_batches(data: Data, batch_size: int, generator: torch.Generator | None = None,
                    for_gpu: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled epochs of ``data`` without end (for step-counted training)."""
    while True:
        empty = True
        for batch in iter_batches(data, batch_size, shuffle=True, generator=generator, for_gpu=for_gpu):
            empty = False
            yield batch
        if empty:
            raise TokenPruneError("training data yielded no batches")
