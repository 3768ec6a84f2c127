"""The C++ templates against the equations written out independently in numpy (DESIGN.md)."""

from __future__ import annotations

import numpy as np
import pytest

from energycore import _core
from tests.helpers import draw_design, table


def _design(seed: int = 11, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = draw_design(rng, n)
    # more distinct tp values (20) than the power cache holds (16): its spill path runs too
    X["tp"] = rng.choice(np.arange(1, 21), n)
    X["batch"] = rng.uniform(1, 300, n)  # a float batch (mean concurrency) is accepted
    return table(X)


def _energy(X: np.ndarray, t: np.ndarray, share) -> np.ndarray:
    tp, pp, b, lin, lout = X.T
    pre = (t[0] * b * lin + t[1] * b * lin**2) * tp ** t[2] * (1 + t[3] * (pp - 1))
    pre = pre + t[4] * b * lin * share(tp)
    dec = lout * (t[5] + t[6] * b + t[7] * b * (lin + lout / 2)) * tp ** t[8]
    dec = dec * (1 + t[9] * (pp - 1)) + t[10] * b * lout * share(tp)
    return np.column_stack([pre, dec, t[11] * tp * pp])


def _ttft(X: np.ndarray, a: np.ndarray) -> np.ndarray:
    tp, pp, b, lin, _ = X.T
    compute = (a[0] * b * lin + a[1] * b * lin**2) * tp ** a[2] * pp ** a[3]
    return np.column_stack([compute, a[4] * b * lin * (1 - 1 / tp), np.full(len(tp), a[5])])


def _tpot(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    tp, pp, b, lin, lout = X.T
    compute = (c[0] + c[1] * b + c[2] * b * (lin + lout / 2)) * tp ** c[3] * pp ** c[4]
    return np.column_stack([compute, c[5] * b * (1 - 1 / tp)])


def _tpot_v2(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    tp, pp, b, lin, lout = X.T
    compute = (
        (c[0] + c[1] * b ** (1 + c[6]) + c[2] * b * (lin + lout / 2)) * tp ** c[3] * pp ** c[4]
    )
    return np.column_stack([compute, c[5] * b * (1 - 1 / tp)])


def _tpot_moe(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    tp, pp, b, lin, lout = X.T
    scale = tp ** c[3] * pp ** c[4]
    dense = (c[0] + c[1] * b + c[2] * b * (lin + lout / 2)) * scale
    experts = c[6] * (1 - (1 - c[7]) ** b) * scale
    return np.column_stack([dense, experts, c[5] * b * (1 - 1 / tp)])


ORACLES = {
    "energy_v1": lambda X, t: _energy(X, t, lambda tp: 1 - 1 / tp),
    "energy_v2": lambda X, t: _energy(X, t, lambda tp: tp - 1),
    "ttft_v1": _ttft,
    "tpot_v1": _tpot,
    "tpot_v2": _tpot_v2,
    "tpot_moe_v1": _tpot_moe,
}


@pytest.mark.parametrize("name", sorted(ORACLES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_value_phases_and_gradient_match_the_equations(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = _design(seed)
    info = _core.template_info(name)["params"]
    theta = np.array(
        [p["typical"] * 10 ** rng.uniform(-1, 1) if p["linear"] else rng.uniform(-0.8, 0.9)
         for p in info]
    )  # fmt: skip
    theta = np.clip(theta, [p["lower"] for p in info], [p["upper"] for p in info])
    want = ORACLES[name](X, theta)
    assert len(_core.template_info(name)["phases"]) == want.shape[1]
    # the batched path (value, Jacobian) and the per-row path (phases) against the oracle
    np.testing.assert_allclose(_core.template_phases(name, X, theta), want, rtol=1e-12)
    np.testing.assert_allclose(_core.template_value(name, X, theta, 1), want.sum(1), rtol=1e-12)
    # threads split rows into chunks: same answer bit for bit
    big = np.repeat(X, 30, axis=0)
    np.testing.assert_array_equal(
        _core.template_value(name, big, theta, 1), _core.template_value(name, big, theta, 2)
    )
    J = _core.template_jacobian(name, X, theta)
    for j in range(len(theta)):
        step = 1e-6 * max(abs(theta[j]), 0.1 if not info[j]["linear"] else 1e-3)
        hi, lo = theta.copy(), theta.copy()
        hi[j] += step
        lo[j] -= step
        fd = (ORACLES[name](X, hi).sum(1) - ORACLES[name](X, lo).sum(1)) / (2 * step)
        # central differences at a 1e-6 relative step: measured error up to 2.1e-5
        np.testing.assert_allclose(J[:, j], fd, rtol=5e-5, atol=1e-9 * want.sum(1).max())


def test_every_registered_template_has_an_oracle() -> None:
    assert sorted(_core.template_names()) == sorted(ORACLES)
