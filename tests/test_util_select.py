"""energycore._util.select: the numpy Pareto front and constrained argmin against brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from energycore._util.select import constrained_argmin, pareto_indices, pareto_mask

values = st.lists(
    st.tuples(
        st.sampled_from([0.0, 1.0, 2.0, 3.0, np.nan, np.inf]),
        st.sampled_from([0.0, 1.0, 2.0, np.nan]),
    ),
    min_size=0,
    max_size=12,
)


def _dominated(x, y, i):
    return any(
        (x[j] <= x[i] and y[j] <= y[i] and (x[j] < x[i] or y[j] < y[i]))
        for j in range(len(x))
        if np.isfinite(x[j]) and np.isfinite(y[j])
    )


@settings(max_examples=200, deadline=None)
@given(values)
def test_pareto_front_equals_brute_force(pts):
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    idx = pareto_indices(x, y)
    finite = np.isfinite(x) & np.isfinite(y)
    on_front = {i for i in range(len(x)) if finite[i] and not _dominated(x, y, i)}
    # every kept row is non-dominated and every non-dominated (x, y) value is represented once
    assert set(idx.tolist()) <= on_front
    assert {(x[i], y[i]) for i in idx} == {(x[i], y[i]) for i in on_front}
    assert len(idx) == len({(x[i], y[i]) for i in on_front})
    assert list(x[idx]) == sorted(x[idx])
    assert pareto_mask(x, y).sum() == len(idx)


def test_constrained_argmin_respects_feasibility_and_limit():
    obj = np.array([1.0, 0.5, 2.0, np.nan])
    feasible = np.array([True, False, True, True])
    assert constrained_argmin(obj, feasible) == 0
    lat = np.array([3.0, 0.1, 1.0, 0.1])
    assert constrained_argmin(obj, feasible, lat, 2.0) == 2
    assert constrained_argmin(obj, feasible, lat, 0.5) is None


def test_front_example() -> None:
    x = np.array([1.0, 2.0, 3.0, 2.5, np.nan])
    y = np.array([5.0, 3.0, 1.0, 4.0, 0.1])
    assert list(pareto_indices(x, y)) == [0, 1, 2]
