"""
energycore C++ core (private: use the energycore package)
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['CudaError', 'CudaEventTimer', 'CudaRuntime', 'GbdtCodedRows', 'GbdtModel', 'NvmlError', 'NvmlSession', 'PowerSampler', 'SpaceEngine', 'SpaceSelector', 'bootstrap_template', 'features_valid', 'fit_template', 'fit_template_arrays', 'fit_template_batch', 'gbdt_pairwise_accuracy', 'gbdt_train', 'least_squares', 'loss_terms', 'monotonic_s', 'nnls', 'template_identify', 'template_info', 'template_jacobian', 'template_names', 'template_phases', 'template_residuals', 'template_value', 'term_sum_value']
class SpaceEngine:
    """
    Enumeration and scoring engine of a ConfigSpace.
    """
    def __init__(self, axes: collections.abc.Sequence[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]], params: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], derived: collections.abc.Sequence[collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]], constraints: collections.abc.Sequence[collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]], feature_slot: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], key_axis: typing.SupportsInt | typing.SupportsIndex, energy: tuple[str | tuple[collections.abc.Sequence[collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex]]], typing.SupportsInt | typing.SupportsIndex], collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]]] | None, ttft: tuple[str | tuple[collections.abc.Sequence[collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex]]], typing.SupportsInt | typing.SupportsIndex], collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]]] | None, tpot: tuple[str | tuple[collections.abc.Sequence[collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex]]], typing.SupportsInt | typing.SupportsIndex], collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]]] | None, n_threads: typing.SupportsInt | typing.SupportsIndex = 0, ttft_bound: tuple[collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, n]"]], collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], typing.SupportsFloat | typing.SupportsIndex] | None = None, tpot_bound: tuple[collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, n]"]], collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], typing.SupportsFloat | typing.SupportsIndex] | None = None, rows: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, energy_bound: tuple[collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, n]"]], collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], typing.SupportsFloat | typing.SupportsIndex] | None = None) -> None:
        ...
    def argmin(self, slot: typing.SupportsInt | typing.SupportsIndex, maximize: bool, limits: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]], where: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]) -> dict:
        """
        Constrained argmin: best feasible point, or the nearest when none is (a dict).
        """
    def count_valid(self, where: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]) -> int:
        """
        Number of points passing the constraints and `where`.
        """
    def objective_slot(self, k: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        Slot of objective k (0 energy_j ... 5 power_w, 6-8 the latency upper bounds, 9 energy_upper_j, 10 power_upper_w).
        """
    def pareto(self, slots: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], maximize: collections.abc.Sequence[bool], where: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]) -> numpy.typing.NDArray[numpy.int64]:
        """
        Indices of the valid points not dominated in the given slots.
        """
    def rows(self, indices: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], params: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex] | None = None) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, n]"]:
        """
        All slots of the given points (n x n_slots), scored; `params` overrides the fixed values (models then evaluated directly).
        """
    def top_k(self, slot: typing.SupportsInt | typing.SupportsIndex, maximize: bool, k: typing.SupportsInt | typing.SupportsIndex, where: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]) -> numpy.typing.NDArray[numpy.int64]:
        """
        Indices of the k valid points with the smallest (largest) slot value; ties by index.
        """
    def valid_indices(self, limit: typing.SupportsInt | typing.SupportsIndex, where: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]) -> numpy.typing.NDArray[numpy.int64]:
        """
        Indices of the first `limit` valid points, in enumeration order.
        """
    @property
    def n_slots(self) -> int:
        ...
    @property
    def size(self) -> int:
        ...
    @property
    def uses_table(self) -> bool:
        ...
class SpaceSelector:
    """
    Precomputed workload-cell orderings of a space.
    """
    def __init__(self, engine: SpaceEngine, slot: typing.SupportsInt | typing.SupportsIndex, maximize: bool, monotone: bool, lin_slot: typing.SupportsInt | typing.SupportsIndex, lout_slot: typing.SupportsInt | typing.SupportsIndex, lin_edges: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], lout_edges: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]) -> None:
        ...
    def best(self, input_len: typing.SupportsFloat | typing.SupportsIndex, output_len: typing.SupportsFloat | typing.SupportsIndex, limits: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]]) -> tuple[bool, int, float, int, float]:
        """
        (feasible, index, objective, nearest, violation) of the best point for a workload.
        """
    @property
    def n_candidates(self) -> int:
        ...
class NvmlError(RuntimeError):
    pass
class NvmlSession:
    """
    NVML opened with dlopen and initialised.
    """
    def __init__(self, path: str = '') -> None:
        ...
    def counter_supported(self, physical: typing.SupportsInt | typing.SupportsIndex) -> bool:
        ...
    def devices(self, visible: str | None = None) -> list:
        """
        Visible devices under a CUDA_VISIBLE_DEVICES value (None: all GPUs).
        """
    def energy_mj(self, physical: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        Total-energy counter, mJ.
        """
    def energy_snapshot(self, physical: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> tuple[float, list[int]]:
        """
        (monotonic time, energy counters in mJ) of several GPUs, read together.
        """
    def physical_count(self) -> int:
        ...
    def power_mw(self, physical: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        Instant power, mW.
        """
    @property
    def path(self) -> str:
        ...
class PowerSampler:
    """
    A thread sampling the power of some GPUs into a timeline.
    """
    def __init__(self, session: NvmlSession, physical: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], period_s: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    def count(self, t0: typing.SupportsFloat | typing.SupportsIndex, t1: typing.SupportsFloat | typing.SupportsIndex) -> int:
        ...
    def discard_before(self, t: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    def integrate(self, t0: typing.SupportsFloat | typing.SupportsIndex, t1: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
        """
        Energy per GPU (J) between t0 and t1 (trapezoids).
        """
    def sample_now(self) -> None:
        ...
    def size(self) -> int:
        ...
    def start(self) -> None:
        ...
    def stop(self) -> None:
        ...
    def timeline(self, t0: typing.SupportsFloat | typing.SupportsIndex, t1: typing.SupportsFloat | typing.SupportsIndex) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
        """
        Samples in [t0, t1]: (times, power W per GPU).
        """
    @property
    def error(self) -> typing.Any:
        """
        None, or (code, function, message) of the error that stopped sampling.
        """
    @property
    def n_gpus(self) -> int:
        ...
    @property
    def period_s(self) -> float:
        ...
    @property
    def running(self) -> bool:
        """
        Whether the thread is sampling (false once stopped or failed).
        """
class CudaError(RuntimeError):
    pass
class CudaRuntime:
    """
    The CUDA driver opened with dlopen and initialised (cuInit).
    """
    def __init__(self, path: str = '') -> None:
        ...
    @property
    def path(self) -> str:
        ...
class CudaEventTimer:
    """
    Two CUDA events timing work on a caller's stream.
    """
    def __init__(self, runtime: CudaRuntime) -> None:
        ...
    def elapsed_s(self) -> float:
        ...
    def start(self, stream: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def stop(self, stream: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class GbdtCodedRows:
    """
    A fixed row set coded once (per-column ranks of distinct values) for fast repeated prediction by any model with the same feature count (immutable).
    """
    def __init__(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> None:
        """
        Codes the rows of X (n x p, NaN allowed); ValueError if a column holds more than 256 distinct values (NaN counts as one).
        """
    @property
    def n_features(self) -> int:
        ...
    @property
    def n_rows(self) -> int:
        ...
class GbdtModel:
    """
    A fitted gradient-boosting model (immutable, thread-safe).
    """
    @staticmethod
    def from_state(state: dict) -> GbdtModel:
        """
        A model from `state()`; ValueError naming the problem if it is not valid.
        """
    def __getstate__(self) -> dict:
        ...
    def __setstate__(self, arg0: dict) -> None:
        ...
    def importance(self, kind: str = 'gain') -> list[float]:
        """
        Per-feature importance: 'gain' (sum of split gains) or 'split' (split count).
        """
    def predict(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], raw: bool = False, n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float64]:
        """
        Predictions for the rows of X (n x n_features): transformed by the objective's link (probability for logistic) unless raw.
        """
    def predict_coded(self, rows: GbdtCodedRows, raw: bool = False, n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.float64]:
        """
        Predictions for every row of a GbdtCodedRows set; equal to predict() on the rows it was coded from.
        """
    def predict_row(self, row: typing.Any) -> float:
        """
        Prediction for one row (list, tuple or 1-D array of n_features numbers).
        """
    def state(self) -> dict:
        """
        The model as plain arrays (what save/load write and read).
        """
    @property
    def base_score(self) -> float:
        ...
    @property
    def n_features(self) -> int:
        ...
    @property
    def n_nodes(self) -> int:
        ...
    @property
    def n_trees(self) -> int:
        ...
    @property
    def objective(self) -> str:
        ...
def bootstrap_template(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], y: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], theta0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], fixed: collections.abc.Sequence[bool], fixed_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], lower: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], upper: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], loss: str = 'soft_l1', f_scale: typing.SupportsFloat | typing.SupportsIndex = 0.1, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, max_iter: typing.SupportsInt | typing.SupportsIndex = 200, n: typing.SupportsInt | typing.SupportsIndex = 1000, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, n]"]:
    """
    n refits on resampled rows, all in one call across threads (n x n_params; NaN rows failed).
    """
def features_valid(X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], limit: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]) -> bool:
    """
    Whether every row of an (n, 5) feature table passes the feature checks (finite; tp, pp integers; tp, pp, batch > 0; lengths >= 0; at most limit per column).
    """
def fit_template(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], y: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], fixed: collections.abc.Sequence[bool], fixed_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], lower: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], upper: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], loss: str = 'soft_l1', f_scale: typing.SupportsFloat | typing.SupportsIndex = 0.1, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, max_iter: typing.SupportsInt | typing.SupportsIndex = 200, n_starts: typing.SupportsInt | typing.SupportsIndex = 8, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 0, x0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"] = ...) -> dict:
    """
    Fit a template to y > 0 by log-ratio residuals; x0 given: one start from x0, else multi-start from NNLS-based starting points.
    """
def fit_template_arrays(name: str, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], fixed: collections.abc.Sequence[bool], fixed_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], loss: str = 'soft_l1', f_scale: typing.SupportsFloat | typing.SupportsIndex = 0.1, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, max_iter: typing.SupportsInt | typing.SupportsIndex = 200, n_starts: typing.SupportsInt | typing.SupportsIndex = 8, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 0, pin_unidentified: bool = True, covariance: bool = True) -> dict:
    """
    Fit k independent problems of n rows (X: k x n x 5, y: k x n, w: k x n or empty) in one call across threads; a dict of arrays with one row per problem.
    """
def fit_template_batch(name: str, Xs: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], ys: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], ws: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], fixed: collections.abc.Sequence[collections.abc.Sequence[bool]], fixed_values: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], loss: str = 'soft_l1', f_scale: typing.SupportsFloat | typing.SupportsIndex = 0.1, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-08, max_iter: typing.SupportsInt | typing.SupportsIndex = 200, n_starts: typing.SupportsInt | typing.SupportsIndex = 8, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> list:
    """
    Fit independent problems (one per group) across threads; a list of result dicts.
    """
def gbdt_pairwise_accuracy(score: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], group: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> float:
    """
    Fraction of correctly ordered pairs (ties one half) among pairs of rows of the same group with different labels; NaN without such pairs.
    """
def gbdt_train(X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], sample_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, group: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, params: dict = {}, X_val: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, y_val: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, w_val: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, group_val: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None) -> tuple[GbdtModel, list[float]]:
    """
    Train gradient-boosted trees; returns (model, validation metric per round).
    """
def least_squares(fun: collections.abc.Callable, jac: collections.abc.Callable, x0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], lower: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], upper: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], fixed: collections.abc.Sequence[bool], weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], m: typing.SupportsInt | typing.SupportsIndex, loss: str = 'linear', f_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, ftol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, xtol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, gtol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, max_iter: typing.SupportsInt | typing.SupportsIndex = 200) -> dict:
    """
    Levenberg-Marquardt on Python residual/Jacobian callables (GIL held while they run).
    """
def loss_terms(loss: str, z: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, float, float]:
    """
    rho(z), rho'(z), rho''(z) of a robust loss.
    """
def monotonic_s() -> float:
    """
    Seconds on the monotonic clock used by the power sampler.
    """
def nnls(A: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, n]"], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"]) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"]:
    """
    Lawson-Hanson non-negative least squares.
    """
def template_identify(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], fixed: collections.abc.Sequence[bool], values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], reduce: bool, rtol: typing.SupportsFloat | typing.SupportsIndex) -> dict:
    """
    What the rows of positive weight identify: coefficients with no effect (pinned); with reduce, whether the log-scaled Jacobian of the others certainly has full rank (full_rank; else a collinearity is possible); feature ranges (lo, hi); n_rows.
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
def template_residuals(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], y: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], theta: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], percentiles: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], screen_k: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> tuple[typing.Any, typing.Any, int]:
    """
    (log(max(f, 1e-300) / y) per row, quantiles of log(y / f) at the percentiles over the rows of positive weight or None when fewer than two, the rows of positive weight more than screen_k robust sigmas from the median or -1 when not computed).
    """
def template_value(name: str, X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], theta: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 1]"]:
    """
    Template value for each row of X (n x 5: tp, pp, batch, input_len, output_len).
    """
def term_sum_value(terms: tuple[collections.abc.Sequence[collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex]]], typing.SupportsInt | typing.SupportsIndex], X: typing.Annotated[numpy.typing.NDArray[numpy.float64], "[m, 5]", "flags.c_contiguous"], theta: typing.Annotated[numpy.typing.ArrayLike, numpy.float64, "[m, 1]"], gradient: bool = False) -> typing.Any:
    """
    A term-sum model ([[(variable, exponent, free_index), ...] per term], n_free) at each row of X (n x 5: tp, pp, batch, input_len, output_len); with gradient, also d value / d theta (n x n_params). Variables: 0 tp, 1 pp, 2 batch, 3 input_len, 4 output_len, 5 n_gpus, 6 tp-1, 7 pp-1.
    """
