"""Selection: the answer of a constrained argmin (ConfigSpace.argmin, Selector.best)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Selection"]


@dataclass(frozen=True, repr=False)
class Selection:
    """The answer of :meth:`ConfigSpace.argmin` and :meth:`Selector.best`.

    Attributes
    ----------
    feasible : bool
        Whether a valid point meets every limit.
    objective : str
        The objective minimised (or maximised).
    value : float
        Its value at the chosen point (NaN when infeasible).
    index : int
        The chosen point's index in enumeration order (-1 when infeasible).
    nearest_index : int
        When infeasible: the valid point missing the limits by the least total relative amount
        (-1 when feasible or when no point is valid at all).
    violation : float
        That total relative amount (0 when feasible).
    n_valid, n_feasible : int
        Points passing the constraints / also the limits (-1 from a Selector, which does not
        count them).
    """

    feasible: bool
    objective: str
    value: float
    index: int
    nearest_index: int
    violation: float
    n_valid: int
    n_feasible: int
    _row: Callable[[int], dict[str, Any]] = field(compare=False)

    @functools.cached_property
    def config(self) -> dict[str, Any] | None:
        """The chosen point: axes decoded, fixed values, derived columns and scores."""
        return self._row(self.index) if self.index >= 0 else None

    @functools.cached_property
    def nearest(self) -> dict[str, Any] | None:
        """When infeasible, the nearest valid point (same columns as :attr:`config`)."""
        return self._row(self.nearest_index) if self.nearest_index >= 0 else None

    @property
    def message(self) -> str:
        """What happened, in words."""
        if self.feasible:
            return f"best {self.objective} = {self.value:.6g} at point {self.index}"
        if self.nearest_index < 0:
            return "no valid configuration: every point fails a constraint"
        return (
            "infeasible: no valid configuration meets the limits; the nearest misses them by "
            f"{self.violation:.3g} (relative) at point {self.nearest_index}"
        )

    def __bool__(self) -> bool:
        return self.feasible

    def __repr__(self) -> str:
        row = self.config if self.feasible else self.nearest
        shown = "" if row is None else ", ".join(f"{k}={_fmt(v)}" for k, v in row.items())
        label = "config" if self.feasible else "nearest"
        return f"Selection({self.message}; {label}: {shown or '-'})"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)
