"""
energycore C++ core (private: use the energycore package)
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['bootstrap_template', 'fit_template', 'fit_template_batch', 'least_squares', 'loss_terms', 'nnls', 'template_info', 'template_jacobian', 'template_names', 'template_phases', 'template_value']
def bootstrap_template(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], y: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], theta0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], fixed: collections.abc.Sequence[bool], fixed_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], lower: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], upper: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], loss: str = 'soft_l1', f_scale: typing.SupportsFloat | typing.SupportsIndex = 0.1, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, max_iter: typing.SupportsInt | typing.SupportsIndex = 200, n: typing.SupportsInt | typing.SupportsIndex = 1000, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, n]"]:
    """
    n refits on resampled rows, all in one call across threads (n x n_params; NaN rows failed).
    """
def fit_template(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], y: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], fixed: collections.abc.Sequence[bool], fixed_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], lower: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], upper: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], loss: str = 'soft_l1', f_scale: typing.SupportsFloat | typing.SupportsIndex = 0.1, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, max_iter: typing.SupportsInt | typing.SupportsIndex = 200, n_starts: typing.SupportsInt | typing.SupportsIndex = 8, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 0, x0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"] = ...) -> dict:
    """
    Fit a template to y > 0 by log-ratio residuals; x0 given: one start from x0, else multi-start from NNLS-based starting points.
    """
def fit_template_batch(name: str, Xs: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], ys: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], ws: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], fixed: collections.abc.Sequence[collections.abc.Sequence[bool]], fixed_values: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], loss: str = 'soft_l1', f_scale: typing.SupportsFloat | typing.SupportsIndex = 0.1, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, max_iter: typing.SupportsInt | typing.SupportsIndex = 200, n_starts: typing.SupportsInt | typing.SupportsIndex = 8, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> list:
    """
    Fit independent problems (one per group) across threads; a list of result dicts.
    """
def least_squares(fun: collections.abc.Callable, jac: collections.abc.Callable, x0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], lower: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], upper: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], fixed: collections.abc.Sequence[bool], weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], m: typing.SupportsInt | typing.SupportsIndex, loss: str = 'linear', f_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, max_iter: typing.SupportsInt | typing.SupportsIndex = 200) -> dict:
    """
    Levenberg-Marquardt on Python residual/Jacobian callables (GIL held while they run).
    """
def loss_terms(loss: str, z: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, float, float]:
    """
    rho(z), rho'(z), rho''(z) of a robust loss.
    """
def nnls(A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, n]"], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"]:
    """
    Lawson-Hanson non-negative least squares.
    """
def template_info(name: str) -> dict:
    """
    Metadata of a template: coefficients (name, unit, bounds), phases.
    """
def template_jacobian(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], theta: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, n]"]:
    """
    d value / d theta for each row of X (n x n_params).
    """
def template_names() -> list[str]:
    """
    Names of the registered model templates.
    """
def template_phases(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], theta: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, n]"]:
    """
    The value split into phases (n x k).
    """
def template_value(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], theta: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"]:
    """
    Template value for each row of X (n x 5: tp, pp, batch, input_len, output_len).
    """
