"""Issue 18: a fit that stops at the iteration limit says so; gross outliers are flagged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from energycore import EnergyModel, LatencyModel, _core
from energycore.errors import ConvergenceWarning
from tests.helpers import noisy_problem


def test_iteration_limit_is_not_success_and_warns_at_the_callers_line() -> None:
    X, y, _ = noisy_problem(0, n=50, noise=0.02)
    with pytest.warns(ConvergenceWarning, match="max_iter=1") as rec:
        m = EnergyModel(max_iter=1, n_threads=1, reduce=False).fit(X, y)
    assert rec[0].filename == __file__
    r = m.fit_result_
    assert (r.status, r.success) == (0, False)
    assert r.message.startswith("max_iter")
    assert "max_iter" in repr(m)
    # the stored result keeps saying so
    assert EnergyModel.from_dict(m.to_dict()).fit_result_.success is False


def test_converged_fit_is_success_without_warning() -> None:
    X, y, _ = noisy_problem(1, n=50, noise=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = EnergyModel(n_threads=1).fit(X, y)
    assert m.fit_result_.status > 0 and m.fit_result_.success


def test_latency_model_warns_when_a_half_stops_at_the_limit() -> None:
    X, y, _ = noisy_problem(2, n=50, noise=0.02)
    with pytest.warns(ConvergenceWarning) as rec:
        LatencyModel(max_iter=1, n_threads=1, reduce=False).fit(X, y * 1e-4, y * 1e-6)
    assert all(w.filename == __file__ for w in rec)


def test_core_least_squares_reports_the_iteration_limit() -> None:
    t = np.linspace(0, 1, 20)
    yv = np.exp(-3 * t)

    def fun(x: np.ndarray) -> np.ndarray:
        return np.exp(-x[0] * t) - yv

    def jac(x: np.ndarray) -> np.ndarray:
        return (-t * np.exp(-x[0] * t))[:, None]

    args = (fun, jac, np.array([0.1]), np.array([-10.0]), np.array([10.0]), [], np.ones(20), 20)
    one = _core.least_squares(*args, max_iter=1)
    assert (one["status"], one["success"]) == (0, False)
    full = _core.least_squares(*args)
    assert full["success"] and full["status"] > 0
    assert abs(full["x"][0] - 3) < 1e-6
