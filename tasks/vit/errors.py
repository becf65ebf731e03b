"""The one error type of the ViT token-pruning library."""

from __future__ import annotations


class TokenPruneError(ValueError):
    """Bad keep rates, stages, model family, checkpoint or data for token pruning."""
