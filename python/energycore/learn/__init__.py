"""Learn: C++ gradient-boosted trees and the scorers a tuner uses.

- :class:`GradientBoosting`: histogram GBDT (regression, classification, pairwise ranking);
- :class:`ValidityScorer`: which configurations fail; :class:`PerformanceScorer`: how fast the
  valid ones run. Both scikit-learn compatible.

Importing this package imports scikit-learn (the estimator base classes).
"""

from __future__ import annotations

from energycore.learn.gbdt import GradientBoosting
from energycore.learn.scorers import PerformanceScorer, ValidityScorer

__all__ = ["GradientBoosting", "PerformanceScorer", "ValidityScorer"]
