"""Our Levenberg-Marquardt against scipy.optimize.least_squares on the same problem and start."""

from __future__ import annotations

import numpy as np
import pytest

from energycore import EnergyModel, _core
from tests.helpers import noisy_problem, table

scipy_optimize = pytest.importorskip("scipy.optimize")

LOSSES = ["linear", "soft_l1", "huber", "cauchy", "arctan"]


TEMPLATES = ["energy_v2", "energy_v1"]


def scipy_fit(Xt, y, x0, loss, f_scale, lower, upper, template="energy_v2"):
    def fun(theta):
        return np.log(_core.template_value(template, Xt, theta) / y)

    def jac(theta):
        v = _core.template_value(template, Xt, theta)
        return _core.template_jacobian(template, Xt, theta) / v[:, None]

    return scipy_optimize.least_squares(
        fun, x0, jac=jac, bounds=(lower, upper), method="trf", x_scale="jac", loss=loss,
        f_scale=f_scale, ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=20000,
    )  # fmt: skip


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_same_cost_and_coefficients_as_scipy(loss: str, seed: int, template: str) -> None:
    X, y, theta = noisy_problem(seed, n=120, noise=0.01, template=template)
    Xt = table(X)
    info = _core.template_info(template)["params"]
    lower = np.array([p["lower"] for p in info])
    upper = np.array([p["upper"] for p in info])
    rng = np.random.default_rng(100 + seed)
    x0 = np.clip(theta * np.exp(rng.normal(0, 0.1, theta.size)), lower, upper)
    f_scale = 0.05
    ref = scipy_fit(Xt, y, x0, loss, f_scale, lower, upper, template)
    ours = EnergyModel(loss=loss, f_scale=f_scale, template=template, tol=1e-12).fit(X, y, x0=x0)
    assert ours.fit_result_.success
    # Same final cost to 1e-6 relative (ours may only be better, never worse).
    assert ours.fit_result_.cost <= ref.cost * (1 + 1e-6)
    if ours.fit_result_.cost < ref.cost * (1 - 1e-6):
        # scipy stopped in a worse valley (non-convex losses): started from our solution it
        # must agree that ours is a minimum, with the same cost and coefficients.
        ref = scipy_fit(Xt, y, ours.coef_, loss, f_scale, lower, upper, template)
    assert ours.fit_result_.cost == pytest.approx(ref.cost, rel=1e-6)
    # Same coefficients to 1e-4 where the data identify them (relative stderr below 50 %).
    names = EnergyModel.param_names()
    coef = ours.coef_
    for j, name in enumerate(names):
        se = ours.stderr_[name]
        if np.isfinite(se) and se < 0.5 * abs(coef[j]) and name not in ours.fit_result_.at_bound:
            assert coef[j] == pytest.approx(ref.x[j], rel=1e-4, abs=1e-12), name


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_terms_match_scipy(loss: str) -> None:
    from scipy.optimize._lsq.least_squares import IMPLEMENTED_LOSSES

    z = np.array([0.0, 0.3, 1.0, 2.5, 40.0])
    fn = IMPLEMENTED_LOSSES[loss]
    if fn is None:  # scipy's linear loss is implicit
        ref = np.vstack([z, np.ones_like(z), np.zeros_like(z)])
    else:
        ref = np.empty((3, z.size))
        fn(z.copy(), ref, cost_only=False)
    got = np.array([_core.loss_terms(loss, float(v)) for v in z]).T
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)


def test_generic_solver_on_rosenbrock_with_bounds() -> None:
    def fun(x):
        return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])

    def jac(x):
        return np.array([[-20 * x[0], 10.0], [-1.0, 0.0]])

    lower, upper = np.array([-2.0, -2.0]), np.array([0.8, 2.0])
    x0 = np.array([-1.2, 1.0])
    ours = _core.least_squares(fun, jac, x0, lower, upper, [], np.empty(0), 2)
    ref = scipy_optimize.least_squares(
        fun, x0, jac=jac, bounds=(lower, upper), ftol=1e-15, xtol=1e-15, gtol=1e-15
    )
    assert ours["success"]
    np.testing.assert_allclose(ours["x"], ref.x, rtol=1e-6)
    assert ours["active"][0] == 1  # x0 held at its upper bound 0.8
    assert ours["cost"] == pytest.approx(ref.cost, rel=1e-8)
