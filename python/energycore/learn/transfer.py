"""Transfer of tuning scorers to an unseen GPU: source-GPU models plus a few target measurements.

:class:`TransferScorer` learns one model per **source** GPU (gradient-boosted trees on the
log objective of every configuration measured there) and uses them as features on the
**target** GPU:

1. each source model's prediction is standardised by its spread on its own training rows, so
   the sources speak in the same units whatever their absolute speed (a change of scale, e.g. a
   GPU twice as fast, leaves the ranking untouched);
2. with no target measurement the score is the mean of the sources (the consensus);
3. with ``k >= 4`` valid target measurements each source gets a weight from how well it orders
   them: ``w_s ~ exp(sharpness * sqrt(k - 3) * atanh(rho_s))`` with ``rho_s`` the Spearman correlation of
   the source's score with the target values (``sqrt(k - 3)`` is one over the standard error of
   Fisher's ``atanh(rho)``, so weights sharpen as evidence grows); the weighted score is then
   put on the target's scale by a least-squares line (slope >= 0);
4. optionally, with ``k >= residual_min`` target rows, shallow trees on the configuration parameters fit
   what the line leaves (a target-specific correction: e.g. an option that pays on the target
   and on no source).

Failures are learnt per source too (:class:`ValidityScorer` where a source has both failing and
valid configurations); ``predict_valid`` is their weighted mean. Everything is refit from the
stored source models in milliseconds, so a tuner can call :meth:`fit_target` every round.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energycore._util.persist import check_format, read_json
from energycore.learn.scorers import PerformanceScorer, ValidityScorer

__all__ = ["TransferScorer", "source_weights"]

FORMAT = "energycore.transfer_scorer"
FORMAT_VERSION = 1


def _as_matrix(X: Any, what: str) -> tuple[np.ndarray, list[str] | None]:
    """(float matrix, column names or None) of a DataFrame, mapping of columns or 2-D array."""
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        names = [str(c) for c in X.columns]
        arr = X.to_numpy(dtype=np.float64)
    elif isinstance(X, Mapping):
        names = [str(k) for k in X]
        cols = [np.asarray(X[k], dtype=np.float64).ravel() for k in X]
        lengths = {c.size for c in cols}
        if len(lengths) > 1:
            raise ValueError(f"{what}: columns of different lengths {sorted(lengths)}")
        arr = np.column_stack(cols) if cols else np.empty((0, 0))
    else:
        names = None
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: expected numeric columns, got {type(X).__name__}") from None
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D table, got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError(f"{what}: contains infinite values")
    return arr, names


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); 0 when either side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(np.mean((ra - ra.mean()) * (rb - rb.mean())) / (sa * sb))


def source_weights(S: np.ndarray, g: np.ndarray, sharpness: float = 1.0) -> np.ndarray:
    """Weights of the sources from ``k`` target rows: softmax of ``sqrt(k-3) * atanh(rho_s)``.

    Parameters
    ----------
    S : (k, n_sources) array
        Each source's standardised score (higher = better) of the measured target rows.
    g : (k,) array
        The target's goodness of the same rows (higher = better, e.g. ``-log(time)``).

    Returns
    -------
    (n_sources,) array summing to 1; uniform when ``k < 4``.
    """
    S = np.asarray(S, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    n_src = S.shape[1]
    k = g.size
    if k < 4 or n_src == 1:
        return np.full(n_src, 1.0 / n_src)
    rho = np.array([_spearman(S[:, j], g) for j in range(n_src)])
    logit = sharpness * math.sqrt(k - 3) * np.arctanh(np.clip(rho, -0.999, 0.999))
    w = np.exp(logit - logit.max())
    return w / w.sum()


class TransferScorer:
    """Ranks configurations on a target GPU from models of source GPUs and a few target rows.

    Parameters
    ----------
    direction : {"minimize", "maximize"}
        Whether lower (run time, energy) or higher (GFLOP/s) objective values are better.
    log : bool
        Model ``log(objective)`` (default; needs positive values), which makes a GPU that is
        uniformly ``c`` times faster a shift the standardisation removes.
    n_estimators, max_depth, learning_rate, subsample : source-model trees
        Of each source's :class:`PerformanceScorer` (squared error on the log objective).
    residual_min : int or None
        Valid target rows needed before the target-specific correction is fitted; ``None``
        (default): never. On random target samples the correction learns the bulk of the
        space, not its best corner, and made the predicted top 5 worse on the
        benchmark-hub GPUs (``docs/transfer.md``).
    residual_estimators, residual_depth : int
        Size of the correction's trees (small: it learns from a handful of rows).
    validity : bool
        Learn each source's failures (``predict_valid``).
    sharpness : float
        Multiplies the evidence ``sqrt(k - 3) * atanh(rho)`` of the source weights (0: the
        plain consensus of the sources whatever the target rows say).
    random_state : int
        Seed of the trees' subsampling.

    Attributes (after ``fit``)
    --------------------------
    sources_ : list of str
        Source names, in the order of :meth:`source_scores`' columns.
    weights_ : dict of str to float
        Each source's weight on the target.
    n_target_ : int
        Valid target rows the last :meth:`fit_target` used.
    """

    def __init__(
        self,
        *,
        direction: str = "minimize",
        log: bool = True,
        n_estimators: int = 100,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        subsample: float = 0.8,
        residual_min: int | None = None,
        residual_estimators: int = 30,
        residual_depth: int = 2,
        validity: bool = True,
        sharpness: float = 0.3,
        random_state: int = 0,
    ) -> None:
        self.sharpness = sharpness
        self.direction = direction
        self.log = log
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.residual_min = residual_min
        self.residual_estimators = residual_estimators
        self.residual_depth = residual_depth
        self.validity = validity
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        del deep
        return {
            k: getattr(self, k)
            for k in ("direction", "log", "n_estimators", "max_depth", "learning_rate",
                      "subsample", "residual_min", "residual_estimators", "residual_depth",
                      "validity", "sharpness", "random_state")
        }  # fmt: skip

    def _check_params(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(
                f"direction: expected 'minimize' or 'maximize', got {self.direction!r}"
            )
        for name in ("n_estimators", "max_depth", "residual_estimators", "residual_depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        v = self.residual_min
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 4):
            raise ValueError(f"residual_min: expected None or an integer >= 4, got {v!r}")
        v = self.sharpness
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
            raise ValueError(f"sharpness: expected a finite number >= 0, got {v!r}")
        if not (isinstance(self.learning_rate, int | float) and 0 < self.learning_rate <= 1):
            raise ValueError(f"learning_rate: must be in (0, 1], got {self.learning_rate!r}")
        if not (isinstance(self.subsample, int | float) and 0 < self.subsample <= 1):
            raise ValueError(f"subsample: must be in (0, 1], got {self.subsample!r}")

    # ------------------------------------------------------------------ helpers
    def _goodness(self, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        """(valid mask, higher-is-better transform of the valid values)."""
        y = np.asarray(y, dtype=np.float64).ravel()
        ok = np.isfinite(y)
        v = y[ok]
        if self.log:
            if (v <= 0).any():
                raise ValueError(
                    f"{what}: log=True needs positive objective values (NaN marks a failure), "
                    f"got {float(v.min())}"
                )
            v = np.log(v)
        return ok, (-v if self.direction == "minimize" else v)

    def _check_X(self, X: Any, what: str) -> np.ndarray:
        arr, names = _as_matrix(X, what)
        if hasattr(self, "features_"):
            if names is not None and names != self.features_:
                missing = [c for c in self.features_ if c not in names]
                extra = [c for c in names if c not in self.features_]
                raise ValueError(
                    f"{what}: parameters {names} do not match the sources' {self.features_}"
                    + (f" (missing {missing})" if missing else "")
                    + (f" (unknown {extra})" if extra else "")
                )
            if arr.shape[1] != len(self.features_) and not (arr.size == 0 and arr.shape[0] == 0):
                raise ValueError(
                    f"{what}: expected {len(self.features_)} parameter columns, got {arr.shape[1]}"
                )
        return arr

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise RuntimeError("this TransferScorer is not fitted yet: call fit() first")

    # ------------------------------------------------------------------ fitting
    def fit(self, sources: Mapping[str, Any], X: Any = None, y: Any = None) -> TransferScorer:
        """Fit the source models, then adapt to the target rows ``(X, y)`` (optional).

        Parameters
        ----------
        sources : mapping of str to (X, y)
            Per source GPU: the configurations (DataFrame / mapping of columns / 2-D array,
            the same parameter columns for every source) and their objective (NaN = failed).
        X, y : optional
            Target measurements (same columns); none for a zero-shot scorer.
        """
        self.fit_sources(sources)
        if X is not None or y is not None:
            if X is None or y is None:
                raise ValueError("fit: give both X and y of the target, or neither")
            self.fit_target(X, y)
        return self

    def fit_sources(self, sources: Mapping[str, Any]) -> TransferScorer:
        """Fit one performance (and validity) model per source; resets the target adaptation."""
        self._check_params()
        if not isinstance(sources, Mapping) or not sources:
            raise ValueError("sources: expected a non-empty mapping of name -> (X, y)")
        for attr in ("features_", "models_"):
            if hasattr(self, attr):
                delattr(self, attr)
        names: list[str] = []
        feats: list[str] | None = None
        ncol: int | None = None
        models, valids, stats = [], [], []
        for s, data in sources.items():
            if not isinstance(s, str) or not s:
                raise ValueError(f"sources: names must be non-empty strings, got {s!r}")
            if not (isinstance(data, Sequence) and len(data) == 2):
                raise ValueError(f"sources[{s!r}]: expected a pair (X, y)")
            Xs, cols = _as_matrix(data[0], f"sources[{s!r}] X")
            if feats is None and ncol is None:
                feats, ncol = cols, Xs.shape[1]
            elif cols != feats or Xs.shape[1] != ncol:
                raise ValueError(
                    f"sources[{s!r}]: parameters {cols or Xs.shape[1]} do not match those of "
                    f"{names[0]!r} ({feats or ncol}); every source needs the same columns"
                )
            ys = np.asarray(data[1], dtype=np.float64).ravel()
            if ys.size != Xs.shape[0]:
                raise ValueError(f"sources[{s!r}] y: expected {Xs.shape[0]} values, got {ys.size}")
            ok, g = self._goodness(ys, f"sources[{s!r}] y")
            if ok.sum() < 2:
                raise ValueError(f"sources[{s!r}] y: needs at least 2 valid measurements")
            seed = int(self.random_state) + len(names)
            m = PerformanceScorer(
                "squared_error", n_estimators=int(self.n_estimators),
                max_depth=int(self.max_depth), learning_rate=float(self.learning_rate),
                subsample=float(self.subsample), random_state=seed, n_jobs=1,
            ).fit(Xs[ok], g)  # fmt: skip
            p = m.predict(Xs[ok])
            sd = float(p.std())
            stats.append((float(p.mean()), sd if sd > 0 else 1.0))
            models.append(m)
            vm = None
            if self.validity and 0 < ok.sum() < ok.size:
                vm = ValidityScorer(
                    n_estimators=60, max_depth=4, learning_rate=0.2, min_child_samples=2,
                    random_state=seed, n_jobs=1,
                ).fit(Xs, ok.astype(np.float64))  # fmt: skip
            valids.append(vm)
            names.append(s)
        self.sources_ = names
        self.features_ = feats if feats is not None else [f"x{j}" for j in range(ncol or 0)]
        self._named = feats is not None
        self.models_ = models
        self.validity_models_ = valids
        self.stats_ = np.asarray(stats)
        self._reset_target()
        return self

    def _reset_target(self) -> None:
        n = len(self.sources_)
        self.weights_ = dict(zip(self.sources_, [1.0 / n] * n))
        self.slope_, self.intercept_ = 1.0, 0.0
        self.residual_model_: PerformanceScorer | None = None
        self.n_target_ = 0

    def source_scores(self, X: Any) -> np.ndarray:
        """(n, n_sources): each source's standardised goodness (higher = better) of each row."""
        self._check_fitted()
        A = self._check_X(X, "X")
        return self._scores(A)

    def _scores(self, A: np.ndarray) -> np.ndarray:
        out = np.empty((A.shape[0], len(self.models_)))
        for j, m in enumerate(self.models_):
            mu, sd = self.stats_[j]
            out[:, j] = (m.predict(A) - mu) / sd if A.shape[0] else 0.0
        return out

    def fit_target(self, X: Any, y: Any, *, scores: np.ndarray | None = None) -> TransferScorer:
        """Adapt to target measurements (NaN = failed; those are not used for the ranking).

        ``scores`` (optional): :meth:`source_scores` of ``X`` when the caller has them cached.
        """
        self._check_fitted()
        A = self._check_X(X, "X")
        yt = np.asarray(y, dtype=np.float64).ravel()
        if yt.size != A.shape[0]:
            raise ValueError(f"y: expected {A.shape[0]} values, got {yt.size}")
        S = self._scores(A) if scores is None else np.asarray(scores, dtype=np.float64)
        if S.shape != (A.shape[0], len(self.sources_)):
            raise ValueError(f"scores: expected shape {(A.shape[0], len(self.sources_))}")
        self._reset_target()
        ok, g = self._goodness(yt, "y")
        k = int(ok.sum())
        self.n_target_ = k
        if k < 4:
            return self
        w = source_weights(S[ok], g, float(self.sharpness))
        self.weights_ = dict(zip(self.sources_, map(float, w)))
        s0 = S[ok] @ w
        var = float(s0.var())
        slope = float(np.mean((s0 - s0.mean()) * (g - g.mean())) / var) if var > 0 else 0.0
        self.slope_ = slope if slope > 0 else 1e-6  # never invert the sources' order
        self.intercept_ = float(g.mean() - self.slope_ * s0.mean())
        if self.residual_min is not None and k >= self.residual_min:
            r = g - (self.slope_ * s0 + self.intercept_)
            self.residual_model_ = PerformanceScorer(
                "squared_error", n_estimators=int(self.residual_estimators),
                max_depth=int(self.residual_depth), learning_rate=0.1,
                min_child_samples=max(2, k // 8), random_state=int(self.random_state), n_jobs=1,
            ).fit(A[ok], r)  # fmt: skip
        return self

    # ------------------------------------------------------------------ prediction
    @property
    def weight_vector_(self) -> np.ndarray:
        return np.array([self.weights_[s] for s in self.sources_])

    def predict(self, X: Any, *, scores: np.ndarray | None = None) -> np.ndarray:
        """Goodness of each row on the target (higher = better).

        With at least 4 valid target rows it is on the target's scale (``-log(time)`` for a
        minimised, log-modelled objective); before, in source standard deviations.
        """
        self._check_fitted()
        A = self._check_X(X, "X")
        S = self._scores(A) if scores is None else np.asarray(scores, dtype=np.float64)
        out = self.slope_ * (S @ self.weight_vector_) + self.intercept_
        if self.residual_model_ is not None and A.shape[0]:
            out = out + self.residual_model_.predict(A)
        return out

    def predict_objective(self, X: Any) -> np.ndarray:
        """Predicted objective on the target (needs ``fit_target`` with >= 4 valid rows)."""
        if getattr(self, "n_target_", 0) < 4:
            raise RuntimeError(
                "predict_objective: needs fit_target() with at least 4 valid target rows "
                "(before that the scores have no target scale)"
            )
        g = self.predict(X)
        v = -g if self.direction == "minimize" else g
        return np.exp(v) if self.log else v

    def predict_valid(self, X: Any) -> np.ndarray:
        """P(valid) on the target: the weighted mean of the sources' validity models (1 for a
        source without failures)."""
        self._check_fitted()
        A = self._check_X(X, "X")
        p = np.zeros(A.shape[0])
        for (_, w), vm in zip(self.weights_.items(), self.validity_models_):
            p += w * (1.0 if vm is None else vm.predict_proba(A)[:, 1])
        return p

    def utility(self, X: Any, validity_weight: float = 1.0) -> np.ndarray:
        """``z(predict) + validity_weight * log(max(P(valid), 0.02))`` over the rows given: the
        tuner's ranking utility (z-scores over these rows)."""
        s = self.predict(X)
        sd = float(s.std())
        z = (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)
        if validity_weight:
            z = z + validity_weight * np.log(np.clip(self.predict_valid(X), 0.02, 1.0))
        return z

    def top(self, X: Any, n: int = 5, validity_weight: float = 1.0) -> np.ndarray:
        """Indices of the ``n`` rows of ``X`` with the best :meth:`utility`, best first."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n: expected a positive integer, got {n!r}")
        u = self.utility(X, validity_weight)
        return np.argsort(-u, kind="stable")[: int(n)]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (parameters, source models, target adaptation)."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "sources": list(self.sources_),
            "features": list(self.features_),
            "named": bool(self._named),
            "models": [m.to_dict() for m in self.models_],
            "validity_models": [None if v is None else v.to_dict() for v in self.validity_models_],
            "stats": self.stats_.tolist(),
            "weights": dict(self.weights_),
            "slope": self.slope_,
            "intercept": self.intercept_,
            "n_target": self.n_target_,
            "residual_model": None
            if self.residual_model_ is None
            else self.residual_model_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> TransferScorer:
        """Inverse of :meth:`to_dict`; malformed content raises ``ValueError``."""
        what = "TransferScorer file"
        check_format(d, FORMAT, FORMAT_VERSION, what, "an energycore transfer scorer")
        try:
            self = cls(**d["params"])
            self._check_params()
            self.sources_ = [str(s) for s in d["sources"]]
            self.features_ = [str(s) for s in d["features"]]
            self._named = bool(d["named"])
            self.models_ = [PerformanceScorer.from_dict(m) for m in d["models"]]
            self.validity_models_ = [
                None if v is None else ValidityScorer.from_dict(v) for v in d["validity_models"]
            ]
            self.stats_ = np.asarray(d["stats"], dtype=np.float64)
            self.weights_ = {str(k): float(v) for k, v in d["weights"].items()}
            self.slope_ = float(d["slope"])
            self.intercept_ = float(d["intercept"])
            self.n_target_ = int(d["n_target"])
            r = d["residual_model"]
            self.residual_model_ = None if r is None else PerformanceScorer.from_dict(r)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{what}: malformed content ({type(e).__name__}: {e})") from None
        n = len(self.sources_)
        if not (len(self.models_) == len(self.validity_models_) == n and set(self.weights_) ==
                set(self.sources_) and self.stats_.shape == (n, 2)):  # fmt: skip
            raise ValueError(f"{what}: sources, models, weights and stats do not match")
        return self

    def save(self, path: str | Path) -> None:
        """Write the scorer as versioned JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TransferScorer:
        """Read a scorer written by :meth:`save`."""
        return cls.from_dict(read_json(path, "TransferScorer file"))

    def __repr__(self) -> str:
        if not hasattr(self, "models_"):
            return "TransferScorer()  [not fitted]"
        w = ", ".join(f"{s}={v:.2f}" for s, v in self.weights_.items())
        return (
            f"TransferScorer({len(self.sources_)} sources, {len(self.features_)} parameters, "
            f"{self.n_target_} target rows; weights {w})"
        )
