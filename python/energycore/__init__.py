"""energycore: energy-optimal deployment and tuning of ML inference.

Measure GPU energy, profile configurations, fit a closed-form energy model, enumerate and
select configurations under latency and power limits, and tune with learned scorers.
"""

from __future__ import annotations

from energycore import simulate
from energycore._version import __version__
from energycore.errors import NoGPUError
from energycore.model import (
    BootstrapResult,
    EnergyModel,
    FitResult,
    IdentifiabilityWarning,
    TpotModel,
    TtftModel,
)

__all__ = [
    "BootstrapResult",
    "EnergyModel",
    "FitResult",
    "IdentifiabilityWarning",
    "NoGPUError",
    "TpotModel",
    "TtftModel",
    "__version__",
    "simulate",
]
