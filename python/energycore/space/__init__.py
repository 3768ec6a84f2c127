"""Space: configuration spaces, their enumeration and scoring in C++, and fast selection.

- :class:`ConfigSpace`: axes, constraint expressions, enumeration, ``argmin`` / ``pareto_front``;
- :class:`Selector`: the same queries answered in microseconds for schedulers;
- :class:`Selection`: the answer of a query;
- :class:`Axis` and :mod:`~energycore.space.constraints`: the vocabulary of a space.
"""

from __future__ import annotations

from energycore.space.axes import Axis
from energycore.space.configspace import MONOTONE_IN_LENGTHS, OBJECTIVES, ConfigSpace
from energycore.space.selection import Selection
from energycore.space.selector import Selector

__all__ = ["MONOTONE_IN_LENGTHS", "OBJECTIVES", "Axis", "ConfigSpace", "Selection", "Selector"]
