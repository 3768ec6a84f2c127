"""Synthetic data from the energy template itself, for fit tests (shared by several test files)."""

from __future__ import annotations

import numpy as np

from energycore import _core

FEATURES = ("tp", "pp", "batch", "input_len", "output_len")


def draw_design(rng: np.random.Generator, n: int = 50) -> dict[str, np.ndarray]:
    """A design that varies every feature (tp, pp, batch and both lengths)."""
    return {
        "tp": rng.choice([1, 2, 4, 8], n),
        "pp": rng.choice([1, 2, 4], n),
        "batch": rng.choice([1, 2, 4, 8, 16, 32, 64, 128], n),
        "input_len": rng.integers(16, 8192, n),
        "output_len": rng.integers(16, 2048, n),
    }


def draw_theta(rng: np.random.Generator) -> np.ndarray:
    """Coefficients of realistic magnitude, spanning about eight orders of magnitude."""
    u = rng.uniform
    return np.array(
        [
            10 ** u(-4, -2), 10 ** u(-9, -7), u(-0.5, 1.5), u(0, 0.5), 10 ** u(-5, -3),
            10 ** u(-1, 1), 10 ** u(-3, -1), 10 ** u(-8, -6), u(-0.5, 1.5), u(0, 0.5),
            10 ** u(-4, -2), 10 ** u(-1, 1.5),
        ]
    )  # fmt: skip


def table(X: dict[str, np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(np.column_stack([X[k] for k in FEATURES]), dtype=np.float64)


#: The template EnergyModel fits unless told otherwise.
DEFAULT = "energy_v2"


def energy(X: dict[str, np.ndarray], theta: np.ndarray, template: str = DEFAULT) -> np.ndarray:
    return _core.template_value(template, table(X), theta)


def noisy_problem(seed: int, n: int = 50, noise: float = 0.01, template: str = DEFAULT):
    rng = np.random.default_rng(seed)
    X = draw_design(rng, n)
    theta = draw_theta(rng)
    y = energy(X, theta, template) * np.exp(rng.normal(0.0, noise, n))
    return X, y, theta
