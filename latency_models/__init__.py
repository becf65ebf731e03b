"""Latency toolkit: measure models on a device, trace them into ops, fit and ship predictors.

Public API (scipy only needed to fit; loading needs numpy and torch)::

    latency_models.load(path)                    # any .hwlat artefact -> predictor
    latency_models.load_published("s21", 2)      # shipped Galaxy S21 WDSR-B block model
    latency_models.for_device("cpu", threads=1)  # this host's predictor (fitted on first use)
    latency_models.fit(samples)                  # (module, input_shape, latency_ms) -> predictor

Every predictor has ``manifest``, ``predict_archs(archs, input_hw)``, ``predict(module,
input_shape)`` and ``save(path)``; all latencies are milliseconds. Predictors live in
:mod:`latency_models.predictors` (additive per-op, published phone block MLP, WDSR-B block
lookup table, differentiable SR surrogate); op tracing in :mod:`latency_models.features` and :mod:`latency_models.graph`;
CLI: ``python -m latency_models collect | fit | evaluate | export | predict``.
"""

from typing import Any

# `collect` and `measure` are imported eagerly on purpose: their submodules share the functions'
# names, and a lazy import would let the import system rebind the package attribute to the module.
from latency_models.artifact import LatencyArtifactError, load
from latency_models.collect import collect
from latency_models.devices import NoLatencyDataError, for_device, load_published
from latency_models.measure import measure


def fit(samples: Any, **kwargs: Any) -> Any:
    """Fit an additive per-op predictor on ``(module, input_shape, latency_ms)`` samples: from the
    timings alone by default, ``kernels=`` a backend to profile kernels on the target, ``prior=``
    other devices' predictors to adapt from few samples. See :func:`latency_models.learn.fit`.
    """
    from latency_models.learn import fit as _fit

    return _fit(samples, **kwargs)


__all__ = ["LatencyArtifactError", "NoLatencyDataError", "collect", "fit", "for_device", "load", "load_published",
           "measure"]
