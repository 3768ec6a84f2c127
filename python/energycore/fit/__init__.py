"""Fit: closed-form energy and latency models on the C++ Levenberg-Marquardt solver.

- :class:`EnergyModel`: joules per batch over all GPUs (template ``energy_v2``; docs/model.md);
- :class:`TtftModel`, :class:`TpotModel`, :class:`LatencyModel`: time to first token and time
  per output token in the same shape; :class:`MoeTpotModel` adds mixture-of-experts expert
  coverage to the decode step; :class:`NeighbourResiduals` carries a fitted model's residuals
  at measured configurations to their neighbours;
- :func:`discover`: structure discovery, a search over sparse sums of candidate terms
  (:class:`Discovery`, :class:`DiscoveredModel`; docs/discover.md);
- :class:`FitResult`, :class:`BootstrapResult`: how a fit ended, bootstrap replicates;
  :class:`FitManyResult`: thousands of small fits as arrays (``fit_many(..., as_arrays=True)``).
"""

from __future__ import annotations

from energycore.fit.discover import Constraints, DiscoveredModel, Discovery, Term, discover
from energycore.fit.energy import (
    EnergyModel,
    FitManyResult,
    MoeTpotModel,
    SolverParams,
    TemplateModel,
    TpotModel,
    TtftModel,
)
from energycore.fit.latency import LatencyModel, NeighbourResiduals
from energycore.fit.results import BootstrapResult, FitResult, IdentifiabilityWarning

__all__ = [
    "BootstrapResult",
    "Constraints",
    "DiscoveredModel",
    "Discovery",
    "EnergyModel",
    "FitManyResult",
    "FitResult",
    "IdentifiabilityWarning",
    "LatencyModel",
    "MoeTpotModel",
    "NeighbourResiduals",
    "SolverParams",
    "TemplateModel",
    "Term",
    "TpotModel",
    "TtftModel",
    "discover",
]
