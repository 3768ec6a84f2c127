"""Learned scorers for tuning: which configurations fail, and how fast the others run.

The two levels of ML²Tuner's idea: a tuner first drops the configurations that
``ValidityScorer`` says will fail to compile or run, then measures the valid ones in the order
``PerformanceScorer`` predicts. Both are gradient-boosted trees in C++ (``energycore.learn.gbdt``) with
scikit-learn's estimator conventions (``get_params``/``set_params``, ``fit`` returns self,
``n_features_in_``, ``feature_names_in_`` from DataFrames). Inputs are the numeric columns a
``ConfigSpace`` produces (categorical axes coded as integers), optionally with extra columns per
configuration (compiler statistics, hardware specs). NaN means missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from energycore.learn._estimator import (
    ClassifierMixin,
    RegressorMixin,
    check_target,
    column_y,
    store_params,
)
from energycore.learn.gbdt import BoostingBase

__all__ = ["PerformanceScorer", "ValidityScorer"]


class ValidityScorer(ClassifierMixin, BoostingBase):
    """Probability that a configuration is valid (compiles and runs), binary logistic trees.

    Labels are any two values; the second of the sorted two (``classes_[1]``: 1 for 0/1, True
    for booleans) means "valid". ``predict_proba(X)[:, 1]`` is P(valid).
    Parameters are those of :class:`energycore.learn.gbdt.GradientBoosting`.

    ``threshold_for_recall(r)`` gives the probability cut that keeps a fraction ``r`` of the
    valid configurations, so a tuner can drop everything below it.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_depth: int | None = 6,
        num_leaves: int | None = None,
        growth: str = "depthwise",
        reg_lambda: float = 1.0,
        min_child_weight: float = 1.0,
        min_child_samples: int = 1,
        min_split_gain: float = 0.0,
        subsample: float = 1.0,
        colsample: float = 1.0,
        max_bin: int = 255,
        monotone: Any = None,
        early_stopping_rounds: int | None = None,
        random_state: Any = 0,
        n_jobs: int | None = None,
    ) -> None:
        store_params(self, locals())

    classes_: np.ndarray

    def _objective(self) -> str:
        return "logistic"

    @staticmethod
    def _classes(y: Any) -> np.ndarray:
        """The two sorted labels of y; ``ValueError`` for anything else."""
        labels = column_y(y)
        if labels.dtype.kind == "c":
            raise ValueError("y: Complex data not supported")
        if labels.dtype.kind == "f":
            if np.isnan(labels).any():
                raise ValueError("y: Input y contains NaN")
            if np.isinf(labels).any():
                raise ValueError("y: Input y contains infinity")
            if (labels != np.round(labels)).any():
                raise ValueError(
                    "y: Unknown label type: continuous (validity labels are two classes, "
                    "e.g. 0/1 or False/True)"
                )
        elif labels.dtype.kind == "O" and any(v is None for v in labels):
            raise ValueError("y: contains None")
        elif labels.dtype.kind not in "OUSbiu":
            raise ValueError(f"y: unsupported label type {labels.dtype}")
        try:
            classes = np.unique(labels)
        except TypeError:
            raise ValueError("y: labels of mixed types") from None
        if classes.size > 2:
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                "multiclass: a validity label has two values."
            )
        if classes.size < 2:
            raise ValueError(
                f"y: only one class present ({classes[0]!r}); a validity classifier needs "
                "both valid and failing configurations"
            )
        return classes

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.ravel()
        known = np.isin(labels, self.classes_)
        if labels.ndim != 1 or not known.all():
            raise ValueError(f"y: labels must be {self.classes_[0]!r} or {self.classes_[1]!r}")
        return check_target((labels == self.classes_[1]).astype(np.float64), n, kind="binary")

    def _before_fit(self, y: Any) -> None:
        self.classes_ = self._classes(y)

    def _after_fit(self, X: np.ndarray, y: np.ndarray) -> None:
        p = self.model_.predict(X, False, 1 if self.n_jobs == 1 else 0)
        self.train_valid_scores_ = np.sort(p[y == 1.0])

    def _extra_state(self) -> dict[str, Any]:
        return {
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
            "train_valid_scores": self.train_valid_scores_.tolist(),
        }

    def _set_extra_state(self, state: Mapping[str, Any]) -> None:
        classes, scores = state.get("classes"), state.get("train_valid_scores")
        if not isinstance(classes, list) or len(classes) != 2 or not isinstance(scores, list):
            raise ValueError("ValidityScorer file: bad 'extra' (classes, train_valid_scores)")
        try:
            self.classes_ = np.asarray(classes)
            self.train_valid_scores_ = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("ValidityScorer file: bad 'extra' values") from None
        if self.train_valid_scores_.ndim != 1:
            raise ValueError("ValidityScorer file: bad train_valid_scores")

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, 2): P(failing), P(valid) for each row."""
        p = self._predict(X)
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of being valid."""
        return self._predict(X, raw=True)

    def predict(self, X: Any) -> np.ndarray:
        """The label of each row (``classes_[1]`` where P(valid) >= 0.5)."""
        p = self._predict(X)
        return self.classes_[(p >= 0.5).astype(np.intp)]

    def threshold_for_recall(self, recall: float, X: Any = None, y: Any = None) -> float:
        """The largest P(valid) cut that keeps at least ``recall`` of the valid configurations.

        Measured on (X, y) when given (held-out data: the honest choice), else on the training
        rows (optimistic: the trees have seen them). Rows with ``predict_proba(X)[:, 1] >= t``
        are kept.
        """
        if isinstance(recall, bool) or not isinstance(recall, int | float):
            raise ValueError(f"recall: expected a number in (0, 1], got {recall!r}")
        if not 0.0 < float(recall) <= 1.0:
            raise ValueError(f"recall: must be in (0, 1], got {recall!r}")
        if X is None and y is None:
            self._model()
            scores = self.train_valid_scores_
        elif X is None or y is None:
            raise ValueError("threshold_for_recall: give both X and y, or neither")
        else:
            p = self._predict(X)
            labels = np.asarray(y)
            if labels.shape != p.shape:
                raise ValueError(f"y: expected {p.shape[0]} labels, got shape {labels.shape}")
            scores = np.sort(p[labels == self.classes_[1]])
        if scores.size == 0:
            raise ValueError("threshold_for_recall: no valid configurations to measure recall on")
        keep = math.ceil(float(recall) * scores.size - 1e-9)
        return float(scores[scores.size - keep])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


class PerformanceScorer(RegressorMixin, BoostingBase):
    """Predicted performance of a configuration (e.g. log run time), or a ranking score.

    ``objective="squared_error"`` (default) or ``"huber"`` regress y; ``"pairwise"`` learns
    scores that order the configurations of each query group (``fit(..., group=)``; one group
    if none) like y, which is all a tuner needs to choose what to measure next. Other
    parameters are those of :class:`energycore.learn.gbdt.GradientBoosting`.
    """

    def __init__(
        self,
        objective: str = "squared_error",
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_depth: int | None = 6,
        num_leaves: int | None = None,
        growth: str = "depthwise",
        reg_lambda: float = 1.0,
        min_child_weight: float = 1.0,
        min_child_samples: int = 1,
        min_split_gain: float = 0.0,
        subsample: float = 1.0,
        colsample: float = 1.0,
        max_bin: int = 255,
        huber_delta: float = 1.0,
        pairs_per_sample: int = 8,
        monotone: Any = None,
        early_stopping_rounds: int | None = None,
        random_state: Any = 0,
        n_jobs: int | None = None,
    ) -> None:
        store_params(self, locals())

    _OBJECTIVES = ("squared_error", "huber", "pairwise")

    def _objective(self) -> str:
        if self.objective not in self._OBJECTIVES:
            raise ValueError(
                f"objective: expected one of {self._OBJECTIVES}, got {self.objective!r}"
            )
        return str(self.objective)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted y (regression) or ranking score (pairwise) of each row."""
        return self._predict(X)
