"""Input checks and the estimator base of the gradient-boosting models (scikit-learn conventions).

scikit-learn is optional: when it is installed the estimators inherit its ``BaseEstimator`` (so
``clone``, tags, pipelines and ``check_estimator`` work) and raise its ``NotFittedError`` and
``DataConversionWarning``; without it a small base gives ``get_params``/``set_params``. Input
checks are our own, so that the behaviour and the messages are the same either way.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

try:  # pragma: no branch
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import DataConversionWarning, NotFittedError
except ImportError:  # pragma: no cover - exercised by the test that hides scikit-learn

    class NotFittedError(ValueError, AttributeError):  # type: ignore[no-redef]
        """The estimator is used before ``fit``."""

    class DataConversionWarning(UserWarning):  # type: ignore[no-redef]
        """An input was converted (a column vector y flattened)."""

    class BaseEstimator:  # type: ignore[no-redef]
        """``get_params``/``set_params`` from the ``__init__`` signature."""

        @classmethod
        def _get_param_names(cls) -> list[str]:
            sig = inspect.signature(cls.__init__)
            return sorted(p for p in sig.parameters if p != "self")

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            return {k: getattr(self, k) for k in self._get_param_names()}

        def set_params(self, **params: Any) -> Any:
            valid = self._get_param_names()
            for k, v in params.items():
                if k not in valid:
                    raise ValueError(f"Invalid parameter {k!r} for estimator {self!r}")
                setattr(self, k, v)
            return self

        def __repr__(self) -> str:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class ClassifierMixin:  # type: ignore[no-redef]
        _estimator_type = "classifier"

    class RegressorMixin:  # type: ignore[no-redef]
        _estimator_type = "regressor"


__all__ = [
    "BaseEstimator",
    "ClassifierMixin",
    "DataConversionWarning",
    "NotFittedError",
    "RegressorMixin",
    "check_X",
    "check_group",
    "check_sample_weight",
    "check_target",
    "column_y",
    "store_params",
]


def store_params(est: Any, params: dict[str, Any]) -> None:
    """``__init__`` of an estimator: every argument stored as given, under its own name
    (scikit-learn's rule; call with ``locals()`` first thing)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


def _is_frame(X: Any) -> bool:
    return hasattr(X, "dtypes") and hasattr(X, "columns") and hasattr(X, "iloc")


def _categories(values: list[Any], name: Any) -> list[Any]:
    """Sorted distinct non-missing values of a text (categorical) column."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
    if not all(isinstance(v, str | int | float) for v in present):
        raise ValueError(f"X: column {name!r} holds values that are neither text nor numbers")
    seen = set(present)
    try:
        return sorted(seen)
    except TypeError:
        raise ValueError(f"X: column {name!r} mixes text and numbers") from None


def _encode(est: Any, names: list[Any], columns: list[Any], reset: bool) -> np.ndarray:
    """Columns to a float table. Numeric columns as they are; text (or pandas category)
    columns are categorical: coded by their sorted values, learnt at fit (``categories_``);
    a value not seen in fit, or None, is missing (NaN)."""
    n = len(columns[0]) if columns else 0
    out = np.empty((n, len(columns)), dtype=np.float64)
    cats: dict[Any, list[Any]] = {} if reset else getattr(est, "categories_", {})
    for j, (name, col) in enumerate(zip(names, columns)):
        arr = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"X: column {name!r} has shape {arr.shape}, expected ({n},)")
        if arr.dtype.kind == "c":
            raise ValueError(f"X: Complex data not supported (column {name!r})")
        if arr.dtype.kind in "biuf" and name not in cats:
            out[:, j] = arr
            continue
        values = arr.tolist()
        if reset:
            cats[name] = _categories(values, name)
        elif name not in cats:
            raise ValueError(f"X: column {name!r} is not numeric (it was at fit)")
        code = {v: float(i) for i, v in enumerate(cats[name])}
        try:
            out[:, j] = [code.get(v, np.nan) if v is not None else np.nan for v in values]
        except TypeError:  # an unhashable value
            raise ValueError(
                f"X: column {name!r} holds values that are neither text nor numbers"
            ) from None
    if reset:
        est.categories_ = cats
    return out


def _table(est: Any, X: Any, reset: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """X as a 2-D float array, and its column names (None for a plain array)."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("X: sparse input is not supported; pass a dense array")
    if X is None:
        raise ValueError("X: expected an array-like, got None")
    if _is_frame(X):
        labels = list(X.columns)
        names = (
            np.asarray(labels, dtype=object)
            if labels and all(isinstance(c, str) for c in labels)
            else None
        )
        if all(d.kind in "biuf" for d in X.dtypes) and (reset or not est.categories_):
            if reset:
                est.categories_ = {}
            return X.to_numpy(dtype=np.float64), names
        return _encode(est, labels, [X.iloc[:, j] for j in range(len(labels))], reset), names
    if isinstance(X, Mapping):  # columns by name, e.g. ConfigSpace.to_frame(as_frame=False)
        if reset:
            labels = list(X)
            if not labels or not all(isinstance(c, str) for c in labels):
                raise ValueError("X: a mapping of columns needs text column names")
        else:
            fitted = getattr(est, "feature_names_in_", None)
            if fitted is None:
                raise ValueError("X: a mapping of columns needs a model fitted with named columns")
            labels = list(fitted)
            missing = [c for c in labels if c not in X]
            if missing:
                raise ValueError(f"X: columns {missing} are missing")
        table = _encode(est, labels, [X[c] for c in labels], reset)
        return table, np.asarray(labels, dtype=object)
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise ValueError("X: Complex data not supported")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except ValueError:
            raise ValueError("X: contains non-numeric values") from None
    if reset:
        est.categories_ = {}
    return arr, None


def check_X(est: Any, X: Any, *, reset: bool) -> np.ndarray:
    """Validate X; on ``reset`` record ``n_features_in_``, ``feature_names_in_`` and
    ``categories_``, otherwise check X against them (scikit-learn's rules and messages)."""
    arr, names = _table(est, X, reset)
    if arr.ndim != 2:
        raise ValueError(
            f"X: Expected 2D array, got {arr.ndim}D array instead. Reshape your data "
            "either using X.reshape(-1, 1) if your data has a single feature or "
            "X.reshape(1, -1) if it contains a single sample."
        )
    if arr.shape[0] == 0:
        raise ValueError(
            f"X: Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if arr.shape[1] == 0:
        raise ValueError(
            f"X: Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 "
            "is required."
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if np.isinf(arr).any():
        raise ValueError("X: contains infinity (NaN is allowed: it means missing)")
    cls = type(est).__name__
    if reset:
        est.n_features_in_ = arr.shape[1]
        if names is not None:
            est.feature_names_in_ = names
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
        return arr
    fitted = getattr(est, "feature_names_in_", None)
    if isinstance(X, Mapping):
        pass  # columns taken by name above
    elif fitted is not None and names is None:
        warnings.warn(
            f"X does not have valid feature names, but {cls} was fitted with feature names",
            UserWarning,
            stacklevel=3,
        )
    elif fitted is None and names is not None:
        warnings.warn(
            f"X has feature names, but {cls} was fitted without feature names",
            UserWarning,
            stacklevel=3,
        )
    elif fitted is not None and names is not None and list(fitted) != list(names):
        raise ValueError(
            "The feature names should match those that were passed during fit: "
            f"expected {list(fitted)}, got {list(names)}"
        )
    if arr.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {cls} is expecting {est.n_features_in_} "
            "features as input."
        )
    return arr


def column_y(y: Any, what: str = "y") -> np.ndarray:
    """y as a 1-D array (a column vector is flattened with a ``DataConversionWarning``)."""
    if y is None:
        raise ValueError(
            f"{what}: this estimator requires y to be passed, but the target y is None"
        )
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is flattened "
            "(use y.ravel())",
            DataConversionWarning,
            stacklevel=4,
        )
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{what}: y should be a 1d array, got an array of shape {arr.shape}")
    return arr


def check_target(y: Any, n: int, *, kind: str) -> np.ndarray:
    """y as float64 of length n: finite numbers (``kind="regression"``) or 0/1
    (``kind="binary"``); ``ValueError`` naming the problem."""
    arr = column_y(y)
    if arr.shape[0] != n:
        raise ValueError(f"y: {arr.shape[0]} values for {n} rows of X")
    try:
        out = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("y: contains non-numeric values") from None
    if np.isnan(out).any():
        raise ValueError("y: Input y contains NaN")
    if np.isinf(out).any():
        raise ValueError("y: Input y contains infinity")
    if kind == "binary" and not np.isin(out, (0.0, 1.0)).all():
        bad = out[~np.isin(out, (0.0, 1.0))][0]
        raise ValueError(f"y: labels must be 0 or 1, got {bad!r}")
    return np.ascontiguousarray(out)


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """Non-negative finite weights, one per row, not all zero; ``None`` stays ``None``."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight: expected shape ({n},), got {w.shape}")
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("sample_weight: contains non-numeric values") from None
    if not np.isfinite(w).all():
        raise ValueError("sample_weight: contains NaN or infinity")
    if (w < 0).any():
        raise ValueError("sample_weight: weights must be non-negative")
    if not (w > 0).any():
        raise ValueError("sample_weight: all weights are zero")
    return np.ascontiguousarray(w)


def check_group(group: Any, n: int) -> np.ndarray | None:
    """Query-group ids (integers), one per row."""
    if group is None:
        return None
    g = np.asarray(group)
    if g.ndim != 1 or g.shape[0] != n:
        raise ValueError(f"group: expected shape ({n},), got {g.shape}")
    if g.dtype.kind not in "biu":
        try:
            _, g = np.unique(g, return_inverse=True)
        except TypeError:
            raise ValueError("group: ids must be sortable (integers or strings)") from None
    return np.ascontiguousarray(g, dtype=np.int64)
