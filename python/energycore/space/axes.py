"""Axes of a configuration space: values, kinds, coding for the C++ engine and decoding back."""

from __future__ import annotations

import keyword
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MAX_EXACT_INT", "RESERVED", "Axis", "check_name"]

#: The largest integer magnitude an axis may hold: the engine computes in float64, which is
#: exact for integers up to 2**53 only (2**53 + 1 would silently become 2**53).
MAX_EXACT_INT = 2**53

#: Names no axis, fixed value or derived column may take: scores and built-ins.
RESERVED = frozenset(
    {"energy_j", "energy_per_request_j", "ttft_s", "tpot_s", "latency_s", "power_w"}
    | {"ttft_upper_s", "tpot_upper_s", "latency_upper_s"}
    | {"n_gpus", "min", "max", "abs", "True", "False"}
)


@dataclass(frozen=True)
class Axis:
    """One axis of a space.

    Attributes
    ----------
    name : str
    kind : {"int", "float", "bool", "category"}
    values : tuple
        The values in order; for a categorical axis the strings, whose position is their code.
    """

    name: str
    kind: str
    values: tuple[Any, ...]

    @staticmethod
    def make(name: str, values: Any) -> Axis:
        """Build and validate an axis from a list, range, numpy array or tuple."""
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ValueError(
                f"axes: axis {name!r} needs a sequence of values, got {type(values).__name__}"
            )
        vals = list(values.tolist() if isinstance(values, np.ndarray) else values)
        if not vals:
            raise ValueError(f"axes: axis {name!r} has no values")
        if all(isinstance(v, (bool, np.bool_)) for v in vals):
            kind, vals = "bool", [bool(v) for v in vals]
        elif all(isinstance(v, str) for v in vals):
            kind = "category"
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            kind, vals = "int", [int(v) for v in vals]
            bad = [i for i, v in enumerate(vals) if abs(v) > MAX_EXACT_INT]
            if bad:
                raise ValueError(
                    f"axes: axis {name!r} value {vals[bad[0]]} (at position {bad[0]}) is past "
                    "2**53 in magnitude, where the engine's float64 numbers stop being exact "
                    "integers"
                )
        elif all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in vals
        ):
            try:
                kind, vals = "float", [float(v) for v in vals]
            except OverflowError:
                raise ValueError(
                    f"axes: axis {name!r} has a value too large for a float64 number"
                ) from None
            bad = [i for i, v in enumerate(vals) if not math.isfinite(v)]
            if bad:
                raise ValueError(
                    f"axes: axis {name!r} has a non-finite value ({vals[bad[0]]}) at {bad[0]}"
                )
        else:
            kinds = sorted({type(v).__name__ for v in vals})
            raise ValueError(
                f"axes: axis {name!r} mixes value types ({', '.join(kinds)}); use numbers, "
                "strings or booleans"
            )
        seen: set[Any] = set()
        for i, v in enumerate(vals):
            if v in seen:
                raise ValueError(f"axes: axis {name!r} repeats the value {v!r} (at position {i})")
            seen.add(v)
        return Axis(name, kind, tuple(vals))

    def codes(self) -> list[float]:
        """The numbers the C++ engine sees: categories by position, booleans as 0/1."""
        if self.kind == "category":
            return [float(i) for i in range(len(self.values))]
        return [float(v) for v in self.values]

    def decode(self, x: np.ndarray) -> np.ndarray:
        """Engine numbers back to the axis' values."""
        if self.kind == "category":
            return np.asarray(self.values, dtype=object)[x.astype(np.int64)]
        if self.kind == "bool":
            return x != 0
        if self.kind == "int":
            return x.astype(np.int64)
        return x

    def to_python(self, x: float) -> Any:
        if self.kind == "category":
            return self.values[int(x)]
        if self.kind == "bool":
            return bool(x)
        return int(x) if self.kind == "int" else float(x)


def check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"{what}: {name!r} is not a valid column name (a Python identifier)")
    norm = unicodedata.normalize("NFKC", name)
    if norm != name:
        raise ValueError(
            f"{what}: {name!r} is not in NFKC normal form: expressions read it as {norm!r} "
            f"(Python normalises identifiers), so name it {norm!r}"
        )
    if name in RESERVED:
        raise ValueError(f"{what}: {name!r} is reserved (an objective or built-in name)")
    return name
