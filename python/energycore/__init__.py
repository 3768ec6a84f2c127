"""energycore: energy-optimal deployment and tuning of ML inference.

Measure GPU energy, profile configurations, fit a closed-form energy model, enumerate and
select configurations under latency and power limits, and tune with learned scorers.

The package is grouped by capability, bottom layer first (a test keeps imports one way):

- :mod:`energycore.fit`: ``EnergyModel``, ``TtftModel``, ``TpotModel``, ``LatencyModel``;
- :mod:`energycore.space`: ``ConfigSpace``, ``Selector``, ``Selection``;
- :mod:`energycore.learn`: ``GradientBoosting``, ``ValidityScorer``, ``PerformanceScorer``,
  ``Tuner``, ``CacheReplay`` (also as :mod:`energycore.tune`);
- :mod:`energycore.integrations`: Kernel Tuner strategy;
- :mod:`energycore.measure`: ``EnergyMeter``, ``Measurement`` (NVML, CUDA events);
- :mod:`energycore.campaign`: ``Campaign`` (plans, journal, resume, Ray);
- :mod:`energycore.workloads`: ``OpenAIServer``, ``Launcher`` (profile a real serving stack);
- :mod:`energycore.data`: reading and writing measurements (CSV, Parquet, JSONL, ML.ENERGY);
- :mod:`energycore.simulate`: the physics-based inference-node simulator;
- :mod:`energycore.app`: the ``energycore`` command, the demo, plots.

Every public name is importable from the root and loaded on first use, so ``import energycore``
stays fast (scikit-learn, for instance, is imported only with the scorers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from energycore import _aliases
from energycore._version import __version__
from energycore.errors import NoGPUError

_aliases.install()

#: public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "JournalWarning": "energycore.data",
    "OpenAIServer": "energycore.workloads",
    "Launcher": "energycore.workloads",
    "EnergyModel": "energycore.fit",
    "TtftModel": "energycore.fit",
    "TpotModel": "energycore.fit",
    "MoeTpotModel": "energycore.fit",
    "LatencyModel": "energycore.fit",
    "FitResult": "energycore.fit",
    "BootstrapResult": "energycore.fit",
    "IdentifiabilityWarning": "energycore.fit",
    "ConvergenceWarning": "energycore.errors",
    "discover": "energycore.fit",
    "ConfigSpace": "energycore.space",
    "Selection": "energycore.space",
    "Selector": "energycore.space",
    "SLO": "energycore.space",
    "HardwareCheck": "energycore.space",
    "VariantSelector": "energycore.space",
    "VariantChoice": "energycore.space",
    "SequenceAxis": "energycore.space",
    "SequenceSpace": "energycore.space",
    "GradientBoosting": "energycore.learn",
    "ValidityScorer": "energycore.learn",
    "PerformanceScorer": "energycore.learn",
    "Tuner": "energycore.learn",
    "TransferScorer": "energycore.learn",
    "CacheReplay": "energycore.learn",
    "EnergyMeter": "energycore.measure",
    "Measurement": "energycore.measure",
    "Campaign": "energycore.campaign",
}
#: subpackages reachable as attributes (``energycore.simulate``) without an explicit import
_SUBMODULES = (
    "app",
    "campaign",
    "data",
    "errors",
    "fit",
    "integrations",
    "learn",
    "measure",
    "simulate",
    "space",
    "tune",
    "workloads",
)

if TYPE_CHECKING:
    from energycore import (  # noqa: F401  (subpackages, for type checkers)
        app,
        campaign,
        data,
        errors,
        fit,
        learn,
        measure,
        simulate,
        space,
        workloads,
    )
    from energycore.campaign import Campaign
    from energycore.data import JournalWarning
    from energycore.errors import ConvergenceWarning
    from energycore.fit import (
        BootstrapResult,
        EnergyModel,
        FitResult,
        IdentifiabilityWarning,
        LatencyModel,
        MoeTpotModel,
        TpotModel,
        TtftModel,
    )
    from energycore.learn import (
        CacheReplay,
        GradientBoosting,
        PerformanceScorer,
        TransferScorer,
        Tuner,
        ValidityScorer,
    )
    from energycore.measure import EnergyMeter, Measurement
    from energycore.space import (
        SLO,
        ConfigSpace,
        HardwareCheck,
        Selection,
        Selector,
        SequenceAxis,
        SequenceSpace,
        VariantChoice,
        VariantSelector,
    )
    from energycore.workloads import Launcher, OpenAIServer

__all__ = [
    "SLO",
    "BootstrapResult",
    "CacheReplay",
    "Campaign",
    "ConfigSpace",
    "ConvergenceWarning",
    "EnergyMeter",
    "EnergyModel",
    "FitResult",
    "GradientBoosting",
    "HardwareCheck",
    "IdentifiabilityWarning",
    "JournalWarning",
    "LatencyModel",
    "Launcher",
    "Measurement",
    "MoeTpotModel",
    "NoGPUError",
    "OpenAIServer",
    "PerformanceScorer",
    "Selection",
    "Selector",
    "SequenceAxis",
    "SequenceSpace",
    "TpotModel",
    "TransferScorer",
    "TtftModel",
    "Tuner",
    "ValidityScorer",
    "VariantChoice",
    "VariantSelector",
    "__version__",
    "campaign",
    "data",
    "fit",
    "learn",
    "measure",
    "simulate",
    "space",
    "workloads",
]


def __getattr__(name: str) -> Any:
    """Import a public name or subpackage on first access (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"energycore.{name}")
    elif name == "profile":  # the old name of energycore.campaign's module, for one release
        value = importlib.import_module("energycore.profile")
    else:
        raise AttributeError(f"module 'energycore' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
