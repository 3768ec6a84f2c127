"""Space: configuration spaces, their enumeration and scoring in C++, and fast selection.

- :class:`ConfigSpace`: axes, constraint expressions, enumeration, ``argmin`` / ``pareto_front``;
- :class:`Selector`: the same queries answered in microseconds for schedulers;
- :class:`Selection`: the answer of a query;
- :class:`SequenceSpace`, :class:`SequenceAxis`: ordered sequences (pass pipelines) with
  constraints, enumeration, sampling, neighbourhood moves and features;
- :class:`SLO`: serving limits (TTFT, TPOT/ITL mean or percentile, request rate) for queries;
- :class:`HardwareCheck`: what a GPU type can run for a served model, as constraints;
- :class:`VariantSelector`: run-time choice of a model variant under a latency budget;
- :class:`Axis` and :mod:`~energycore.space.constraints`: the vocabulary of a space.
"""

from __future__ import annotations

from energycore.space.axes import Axis
from energycore.space.configspace import MONOTONE_IN_LENGTHS, OBJECTIVES, ConfigSpace
from energycore.space.hardware import HardwareCheck
from energycore.space.selection import Selection
from energycore.space.selector import Selector
from energycore.space.sequence import SequenceAxis, SequenceConstraint, SequenceSpace
from energycore.space.slo import SLO
from energycore.space.variants import VariantChoice, VariantSelector

__all__ = [
    "MONOTONE_IN_LENGTHS",
    "OBJECTIVES",
    "SLO",
    "Axis",
    "ConfigSpace",
    "HardwareCheck",
    "Selection",
    "Selector",
    "SequenceAxis",
    "SequenceConstraint",
    "SequenceSpace",
    "VariantChoice",
    "VariantSelector",
]
