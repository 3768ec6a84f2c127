"""energycore: energy-optimal deployment and tuning of ML inference.

Measure GPU energy, profile configurations, fit a closed-form energy model, enumerate and
select configurations under latency and power limits, and tune with learned scorers.
"""

from __future__ import annotations

from energycore import measure, profile, simulate
from energycore._version import __version__
from energycore.errors import NoGPUError
from energycore.gbdt import GradientBoosting
from energycore.latency import LatencyModel
from energycore.measure import EnergyMeter, Measurement
from energycore.model import (
    BootstrapResult,
    EnergyModel,
    FitResult,
    IdentifiabilityWarning,
    TpotModel,
    TtftModel,
)
from energycore.profile import Campaign
from energycore.scorers import PerformanceScorer, ValidityScorer
from energycore.selector import Selector
from energycore.space import ConfigSpace, Selection
from energycore.tune import Tuner

__all__ = [
    "BootstrapResult",
    "Campaign",
    "ConfigSpace",
    "EnergyMeter",
    "EnergyModel",
    "FitResult",
    "GradientBoosting",
    "IdentifiabilityWarning",
    "LatencyModel",
    "Measurement",
    "NoGPUError",
    "PerformanceScorer",
    "Selection",
    "Selector",
    "TpotModel",
    "TtftModel",
    "Tuner",
    "ValidityScorer",
    "__version__",
    "measure",
    "profile",
    "simulate",
]
