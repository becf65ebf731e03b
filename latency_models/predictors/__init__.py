"""Latency predictors. Importing this package registers every artefact kind with
:mod:`latency_models.artifact`; heavy dependencies (scipy, onnxruntime) load lazily."""

from latency_models.predictors.additive import AdditivePredictor
from latency_models.predictors.base import LatencyPredictor
from latency_models.predictors.lut import BlockLUTPredictor
from latency_models.predictors.published import PublishedBlockPredictor
from latency_models.predictors.surrogate import SRSurrogate

__all__ = ["AdditivePredictor", "BlockLUTPredictor", "LatencyPredictor", "PublishedBlockPredictor", "SRSurrogate"]
