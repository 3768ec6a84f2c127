"""The constraint language: parse errors that point at the bad part, and Python semantics of the
compiled C++ bytecode on floats (checked against Python itself on hypothesis-drawn values)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energycore import ConfigSpace, _core
from energycore.space.constraints import OP, Expression, Slots


def values_of(expr: str, axes: dict[str, list[Any]]) -> list[float]:
    """The value of ``expr`` at every point, through a derived column of the C++ engine."""
    space = ConfigSpace(axes, derived={"v": expr})
    return space.to_frame(None, as_frame=False)["v"].tolist()


@pytest.mark.parametrize(
    ("source", "match", "caret"),
    [
        (
            "tp*pp <= 8 and batchh % tp == 0",
            "unknown name 'batchh' \\(did you mean 'batch'\\?\\)",
            "^^^^^^",
        ),
        ("tp <= ", "malformed expression", "^"),
        ("tp.real > 1", "unsupported syntax \\(Attribute\\)", "^^^^^^^"),
        ("sqrt(tp) > 1", "unknown function", "^^^^"),
        ("min(tp, key=1) > 1", "keyword arguments", None),
        ("abs(tp, 2) > 1", "wrong number of arguments", None),
        ("tp if batch else pp", "unsupported syntax \\(IfExp\\)", None),
        ("tp in batch", "'in' needs a non-empty literal", None),
        ("tp << 1", "unsupported operator LShift", None),
        ("tp is 1", "unsupported comparison Is", None),
        ('gpu == "H200"', "'H200' is not a value of axis 'gpu'", "^^^^^^"),
        ('gpu == "h100"', "did you mean 'H100'", None),
        ('tp == "H100"', "only be compared with a categorical axis", None),
        ('gpu < "H100"', "categories compare with == or != only", None),
        ('{"H100": 1}[gpu] > 0', "no entry for 'A100'", None),
        ("{1: tp}[tp] > 0", "lookup values must be numbers", None),
        ("[1, 2][tp] > 0", "only a lookup", None),
        ("__import__('os')", "unknown function", None),
        ("", "empty expression", None),
        ("x = 1", "malformed expression", None),
        ("b'1' == tp", "unsupported constant", None),
    ],
)
def test_bad_expressions_quote_and_point(source: str, match: str, caret: str | None) -> None:
    with pytest.raises(ValueError, match=match) as info:
        ConfigSpace({"tp": [1, 2], "batch": [1, 4], "gpu": ["H100", "A100"]}, constraints=[source])
    msg = str(info.value)
    assert msg.startswith("constraint") and (repr(source.strip()) in msg or not source)
    if caret is not None:
        src_line, caret_line = msg.splitlines()[1:3]
        start = caret_line.index("^")
        assert caret_line.strip() == caret
        bad = src_line[start : start + len(caret)]
        assert bad.strip() and bad in source


def test_non_string_constraint() -> None:
    with pytest.raises(ValueError, match="expected an expression string"):
        Expression(3)  # type: ignore[arg-type]


numbers = st.one_of(
    st.integers(-20, 20),
    st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 3)),
)


@given(a=numbers, b=numbers)
def test_arithmetic_follows_python_on_floats(a: float, b: float) -> None:
    axes = {"x": [float(a)], "y": [float(b)]}
    x, y = float(a), float(b)
    cases = {
        "x + y": x + y,
        "x - y": x - y,
        "x * y": x * y,
        "-x": -x,
        "abs(x)": abs(x),
        "min(x, y, 3)": min(x, y, 3),
        "max(x, y)": max(x, y),
        "(x < y) + (x <= y) * 2 + (x == y) * 4 + (x != y) * 8 + (x > y) * 16 + (x >= y) * 32": (
            (x < y) + (x <= y) * 2 + (x == y) * 4 + (x != y) * 8 + (x > y) * 16 + (x >= y) * 32
        ),
        "(x > 0 and y > 0) + 2 * (x > 0 or y > 0) + 4 * (not x > 0)": (
            (x > 0 and y > 0) + 2 * (x > 0 or y > 0) + 4 * (not x > 0)
        ),
        "-5 < x <= y": -5 < x <= y,
        "x in (1, 2, 3.5)": x in (1, 2, 3.5),
        "x not in (1, 2)": x not in (1, 2),
    }
    if y != 0:
        cases.update({"x / y": x / y, "x % y": x % y, "x // y": x // y})
    else:
        cases.update({"x / y": math.nan, "x % y": math.nan, "x // y": math.nan})
    if x > 0:
        cases["x ** 0.5 + x ** 2"] = x**0.5 + x**2
    for expr, want in cases.items():
        (got,) = values_of(expr, axes)
        if math.isnan(float(want)):
            assert math.isnan(got), expr
        else:
            assert got == float(want), (expr, got, want)


def test_division_by_zero_is_nan_and_nan_fails_a_constraint() -> None:
    space = ConfigSpace({"x": [0, 1, 2]}, constraints=["4 / x >= 2"])
    assert space.to_frame(None, as_frame=False)["x"].tolist() == [1, 2]
    assert ConfigSpace({"x": [0, 1]}, constraints=["not (4 % x > 9)"]).count_valid() == 2


def test_categorical_and_boolean_axes_in_expressions() -> None:
    axes = {"gpu": ["H100", "A100", "L4"], "flag": [True, False]}
    got = values_of(
        '(gpu in ("A100", "L4")) * 10 + flag + {"H100": 0.5, "A100": 0.25, "L4": 0}[gpu]', axes
    )
    assert got == [1.5, 0.5, 11.25, 10.25, 11.0, 10.0]
    assert values_of('"L4" != gpu', axes) == [1, 1, 1, 1, 0, 0]
    assert values_of(
        "{1: 10, 2: 20, 5: 0}[tp] + {True: 1, False: 0}[flag]",
        {"tp": [1, 2], "flag": [True, False]},
    ) == [
        11,
        10,
        21,
        20,
    ]


def test_lookup_ignores_keys_absent_from_the_axis() -> None:
    assert values_of('{"H100": 80, "A100": 40, "B200": 192}[gpu]', {"gpu": ["A100", "H100"]}) == [
        40,
        80,
    ]


def test_compiled_code_and_engine_validation() -> None:
    e = Expression("tp * 2 <= 8", what="where")
    code = e.compile(Slots({"tp": 0}, {"tp": [1, 2]}))
    assert code == [
        (OP["load"], 0, 0.0),
        (OP["const"], 0, 2.0),
        (OP["mul"], 0, 0.0),
        (OP["const"], 0, 8.0),
        (OP["le"], 0, 0.0),
    ]
    assert e.names == frozenset({"tp"}) and str(e) == "tp * 2 <= 8"
    ok = ([[1.0]], [], [], [], [-1] * 5, -1, None, None, None, 1)
    for bad, match in (
        ([(OP["add"], 0, 0.0)], "stack underflow"),
        ([(OP["load"], 99, 0.0)], "slot 99 out of range"),
        ([(77, 0, 0.0)], "unknown op 77"),
        ([(OP["const"], 0, 1.0), (OP["const"], 0, 1.0)], "leaves 2 values"),
        ([(OP["min"], 0, 0.0)], "at least one operand"),
        ([(OP["const"], 0, 1.0)] * 70 + [(OP["add"], 0, 0.0)] * 69, "deeper than 64"),
    ):
        with pytest.raises(ValueError, match=match):
            _core.SpaceEngine(ok[0], ok[1], ok[2], [bad], *ok[4:])
