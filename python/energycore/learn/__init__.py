"""Learn: C++ gradient-boosted trees and the scorers a tuner uses.

- :class:`GradientBoosting`: histogram GBDT (regression, classification, pairwise ranking);
- :class:`ValidityScorer`: which configurations fail; :class:`PerformanceScorer`: how fast the
  valid ones run. Both scikit-learn compatible;
- :class:`Tuner`: the validity -> performance -> measure loop (ask/tell, journal, resume);
  :class:`CacheReplay`: Kernel Tuner cache files as replayable measurements;
- :class:`TransferScorer`: rank configurations on an unseen GPU from source-GPU models.

Importing this package imports scikit-learn (the estimator base classes).
"""

from __future__ import annotations

from energycore.learn.cache import CacheReplay
from energycore.learn.gbdt import CodedRows, GradientBoosting
from energycore.learn.scorers import PerformanceScorer, ValidityScorer
from energycore.learn.transfer import TransferScorer
from energycore.learn.tuner import Tuner

__all__ = [
    "CacheReplay",
    "CodedRows",
    "GradientBoosting",
    "PerformanceScorer",
    "TransferScorer",
    "Tuner",
    "ValidityScorer",
]
