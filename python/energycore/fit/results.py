"""What a fit returns: how the solver ended, bootstrap replicates, and the identifiability warning."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from energycore._util.columns import FloatArray

__all__ = ["BootstrapResult", "FitResult", "IdentifiabilityWarning", "check_level"]


def check_level(level: float) -> None:
    """Raise ``ValueError`` unless ``level`` lies strictly between 0 and 1."""
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level: must lie strictly between 0 and 1, got {level!r}")


class IdentifiabilityWarning(UserWarning):
    """Some coefficients cannot be determined from the data given to ``fit``."""


@dataclass(frozen=True)
class FitResult:
    """How the Levenberg-Marquardt fit ended.

    Attributes
    ----------
    status : int
        0 maximum iterations reached (not converged), 1 gtol, 2 ftol, 3 xtol (converged),
        -1 failed (non-finite values at the start; a fit never stores such a result).
    message : str
        The stopping reason in words.
    success : bool
        Whether the solver converged (``status > 0``); ``False`` at the iteration limit, where
        the fit also emits a :class:`~energycore.errors.ConvergenceWarning`.
    iterations, n_fev, n_jev : int
        LM iterations, residual and Jacobian evaluations of the winning start.
    cost : float
        Final robust, weighted cost ``0.5 * sum w * f_scale**2 * rho((r / f_scale)**2)``.
    optimality : float
        Infinity norm of the projected, column-scaled gradient at the solution.
    start_index : int
        Which multi-start point won (0 is the typical-value start).
    at_bound : dict
        Coefficients held at a bound by the solver: name -> "lower" or "upper".
    n_samples : int
        Number of rows fitted.
    """

    status: int
    message: str
    success: bool
    iterations: int
    n_fev: int
    n_jev: int
    cost: float
    optimality: float
    start_index: int
    at_bound: dict[str, str] = field(default_factory=dict)
    n_samples: int = 0


@dataclass(frozen=True)
class BootstrapResult:
    """Coefficients refitted on ``n`` resampled data sets (rows drawn with replacement).

    Attributes
    ----------
    names : tuple of str
        Coefficient names, the column order of ``samples``.
    samples : ndarray of shape (n_ok, n_params)
        The refitted coefficients of every successful replicate.
    n_failed : int
        Replicates whose refit failed (dropped from ``samples``).
    """

    names: tuple[str, ...]
    samples: FloatArray
    n_failed: int

    @property
    def stderr(self) -> dict[str, float]:
        """Bootstrap standard error of each coefficient."""
        sd = (
            self.samples.std(axis=0, ddof=1)
            if len(self.samples) > 1
            else np.full(len(self.names), np.nan)
        )
        return dict(zip(self.names, map(float, sd)))

    def interval(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile interval of each coefficient at ``level`` (e.g. 0.95)."""
        check_level(level)
        lo, hi = np.percentile(self.samples, [50 * (1 - level), 50 * (1 + level)], axis=0)
        return {n: (float(a), float(b)) for n, a, b in zip(self.names, lo, hi)}
