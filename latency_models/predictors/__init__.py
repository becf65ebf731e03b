"""Latency predictors. Importing this package registers every artefact kind with
:mod:`latency_models.artifact`; heavy dependencies (sklearn, onnxruntime, torch) load lazily."""

from latency_models.predictors.base import LatencyPredictor
from latency_models.predictors.published import PublishedBlockPredictor

__all__ = ["LatencyPredictor", "PublishedBlockPredictor"]
