"""LatencyModel: time to first token and time per output token, fitted together.

A ``LatencyModel`` composes a :class:`~energycore.TtftModel` (template ``ttft_v1``) and a
:class:`~energycore.TpotModel` (template ``tpot_v2``), both fitted by the same C++
Levenberg-Marquardt on log ratios as :class:`~energycore.EnergyModel`. It predicts

- ``ttft_s``: seconds from the arrival of a batch to its first token (prefill);
- ``tpot_s``: seconds per output token during decode;
- ``latency_s = ttft_s + output_len * tpot_s``: end-to-end time of the batch.

The coefficients are documented in ``docs/model.md`` (section "LatencyModel"). Real serving
data often has inter-token latency and no time to first token: ``fit(X, tpot_s=...)`` fits the
time-per-output-token half alone, which is enough for a ``tpot_s`` limit everywhere
(``ConfigSpace``, ``Selector``, the CLI); ``latency_s`` then needs the other half.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energycore._util.columns import (
    FEATURES,
    FloatArray,
    as_feature_table,
    as_model_features,
    as_target,
)
from energycore._util.persist import check_format, read_json
from energycore.fit.energy import SolverParams, TpotModel, TtftModel

__all__ = ["LatencyModel", "NeighbourResiduals"]

#: Version of the JSON written by :meth:`LatencyModel.save`.
FORMAT_VERSION = 1
_OUT = FEATURES.index("output_len")


class LatencyModel(SolverParams):
    """Time to first token and time per output token of a batch, in seconds.

    Parameters
    ----------
    loss, f_scale, n_starts, seed, max_iter, n_threads, tol
        As in :class:`~energycore.fit.energy.SolverParams`; used for both halves.
    fixed : dict of str to float, optional
        Coefficients held at given values, by name across both templates (``a1`` ... ``a6``
        for time to first token, ``c1`` ... ``c7`` for time per output token), e.g.
        ``{"a4": 0.0, "c5": 0.0}``.

    Attributes
    ----------
    ttft_model_, tpot_model_ : TtftModel or None, TpotModel or None
        The fitted halves (``None`` for a half fitted without its target).
    coef_ : ndarray
        ``a1 .. a6`` then ``c1 .. c7`` (NaN for a half that was not fitted).
    params_, stderr_ : dict
        Coefficients and their standard errors by name.

    Examples
    --------
    >>> lat = LatencyModel().fit(frame, "ttft_s", "tpot_s")           # doctest: +SKIP
    >>> lat.predict(frame)                                            # doctest: +SKIP
    """

    target = "latency_s"

    @staticmethod
    def param_names() -> tuple[str, ...]:
        """Coefficient names: the ``ttft_v1`` ones then the ``tpot_v2`` ones."""
        return TtftModel.param_names() + TpotModel.param_names()

    def _halves(self) -> tuple[TtftModel, TpotModel]:
        fixed = dict(self.fixed or {})
        a_names, c_names = set(TtftModel.param_names()), set(TpotModel.param_names())
        unknown = [k for k in fixed if k not in a_names | c_names]
        if unknown:
            raise ValueError(
                f"fixed: unknown coefficient {unknown[0]!r} (known: {', '.join(self.param_names())})"
            )
        common = {k: v for k, v in self.get_params().items() if k != "fixed"}
        ttft = TtftModel(**common, fixed={k: v for k, v in fixed.items() if k in a_names} or None)
        tpot = TpotModel(**common, fixed={k: v for k, v in fixed.items() if k in c_names} or None)
        return ttft, tpot

    # ------------------------------------------------------------------ fitting
    def fit(
        self, X: Any, ttft_s: Any = None, tpot_s: Any = None, sample_weight: Any = None
    ) -> LatencyModel:
        """Fit both halves, or the one whose target is given, from one table of measurements.

        Parameters
        ----------
        X : DataFrame, dict of arrays or structured array
            Columns ``tp``, ``pp``, ``batch``, ``input_len``, ``output_len`` (others ignored).
        ttft_s, tpot_s : array-like or str, optional
            Measured time to first token and time per output token (seconds, positive), or the
            names of columns of ``X``. At least one; a half without its target is not fitted.
        sample_weight : array-like, optional
            Non-negative weight of each row, used by both fits.

        Returns
        -------
        self
        """
        self._check_solver_params()
        if ttft_s is None and tpot_s is None:
            raise ValueError("ttft_s, tpot_s: give at least one latency target")
        n = len(as_model_features(X))
        # Validate both targets before fitting either, so a bad column costs no fit.
        yt = None if ttft_s is None else as_target(ttft_s, n, "ttft_s", X)
        yp = None if tpot_s is None else as_target(tpot_s, n, "tpot_s", X)
        ttft, tpot = self._halves()
        self._set(
            None if yt is None else ttft.fit(X, yt, sample_weight),
            None if yp is None else tpot.fit(X, yp, sample_weight),
        )
        return self

    def _set(self, ttft: TtftModel | None, tpot: TpotModel | None) -> None:
        self.ttft_model_ = ttft
        self.tpot_model_ = tpot
        halves = [(ttft, TtftModel), (tpot, TpotModel)]
        self.coef_ = np.concatenate(
            [m.coef_ if m is not None else np.full(len(c.param_names()), np.nan) for m, c in halves]
        )
        self.params_ = {}
        self.stderr_ = {}
        for m, c in halves:
            nan = dict.fromkeys(c.param_names(), float("nan"))
            self.params_.update(m.params_ if m is not None else nan)
            self.stderr_.update(m.stderr_ if m is not None else nan)

    def _half(self, which: str) -> Any:
        self._check_fitted()
        m = self.ttft_model_ if which == "ttft" else self.tpot_model_
        if m is None:
            raise ValueError(
                f"{which}_s: this LatencyModel was fitted without a {which}_s target; refit "
                f"with {which}_s=... to predict it"
            )
        return m

    def _check_fitted(self) -> None:
        if not hasattr(self, "ttft_model_"):
            raise RuntimeError("this LatencyModel is not fitted yet: call fit() first")

    # ------------------------------------------------------------------ prediction
    def predict_ttft(self, X: Any) -> FloatArray:
        """Predicted time to first token of each row's batch, seconds."""
        return self._half("ttft").predict(X)

    def predict_tpot(self, X: Any) -> FloatArray:
        """Predicted time per output token, seconds."""
        return self._half("tpot").predict(X)

    def predict(self, X: Any) -> FloatArray:
        """Predicted end-to-end latency of each row's batch: ``ttft_s + output_len * tpot_s``."""
        self._half("ttft")
        self._half("tpot")
        return self.predict_all(X)["latency_s"]

    def predict_all(self, X: Any) -> dict[str, FloatArray]:
        """``{"ttft_s": ..., "tpot_s": ..., "latency_s": ...}`` for each row.

        A model fitted on one half gives that half only.
        """
        self._check_fitted()
        out: dict[str, FloatArray] = {}
        if self.ttft_model_ is not None:
            out["ttft_s"] = self.ttft_model_.predict(X)
        if self.tpot_model_ is not None:
            out["tpot_s"] = self.tpot_model_.predict(X)
        if len(out) == 2:
            lout = as_model_features(X)[:, _OUT]
            out["latency_s"] = out["ttft_s"] + lout * out["tpot_s"]
        return out

    def predict_interval(
        self, X: Any, level: float = 0.95, which: str = "tpot"
    ) -> tuple[FloatArray, FloatArray]:
        """Prediction interval of one half (``which`` = "ttft" or "tpot"), as the half's own."""
        if which not in ("ttft", "tpot"):
            raise ValueError(f"which: expected 'ttft' or 'tpot', got {which!r}")
        return self._half(which).predict_interval(X, level)

    def score(self, X: Any, ttft_s: Any, tpot_s: Any) -> dict[str, dict[str, float]]:
        """Goodness of fit of each half on held-out data (see ``TemplateModel.metrics``)."""
        self._check_fitted()
        out = {}
        if self.ttft_model_ is not None:
            out["ttft_s"] = self.ttft_model_.metrics(X, ttft_s)
        if self.tpot_model_ is not None:
            out["tpot_s"] = self.tpot_model_.metrics(X, tpot_s)
        return out

    @classmethod
    def from_models(
        cls, ttft: TtftModel | None = None, tpot: TpotModel | None = None
    ) -> LatencyModel:
        """A latency model made of halves fitted on their own.

        For halves of other forms than the default pair, e.g. a :class:`MoeTpotModel`:
        ``LatencyModel.from_models(TtftModel().fit(X, ttft), MoeTpotModel().fit(X, tpot))``.
        The hyper-parameters recorded are the default ones; each half keeps its own.
        """
        if ttft is None and tpot is None:
            raise ValueError("ttft, tpot: give at least one fitted half")
        for name, m, want in (("ttft", ttft, TtftModel), ("tpot", tpot, TpotModel)):
            if m is None:
                continue
            if not isinstance(m, want):
                raise ValueError(f"{name}: expected a {want.__name__}, got {type(m).__name__}")
            if not hasattr(m, "coef_"):
                raise ValueError(f"{name}: the {type(m).__name__} is not fitted")
        model = cls()
        model._set(ttft, tpot)
        return model

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: hyper-parameters and, when fitted, both halves."""
        d: dict[str, Any] = {
            "format": "energycore.latency_model",
            "format_version": FORMAT_VERSION,
            "hyper": self.get_params(),
        }
        if hasattr(self, "ttft_model_"):
            if self.ttft_model_ is not None:
                d["ttft"] = self.ttft_model_.to_dict()
            if self.tpot_model_ is not None:
                d["tpot"] = self.tpot_model_.to_dict()
        return d

    def save(self, path: str | Path) -> None:
        """Write the model as versioned JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, d: Any) -> LatencyModel:
        """Rebuild from :meth:`to_dict` output; ``ValueError`` on anything malformed."""
        check_format(
            d,
            "energycore.latency_model",
            FORMAT_VERSION,
            "model file",
            "an energycore latency model",
        )
        try:
            model = cls(**d["hyper"])
        except TypeError as e:
            raise ValueError(f"model file: malformed hyper-parameters ({e})") from None
        if "ttft" in d or "tpot" in d:
            ttft = TtftModel.from_dict(d["ttft"]) if "ttft" in d else None
            tpot = TpotModel.from_dict(d["tpot"]) if "tpot" in d else None
            if any(m is not None and not hasattr(m, "coef_") for m in (ttft, tpot)):
                raise ValueError("model file: 'ttft' and 'tpot' must be fitted models")
            model._set(ttft, tpot)
        return model

    @classmethod
    def load(cls, path: str | Path) -> LatencyModel:
        """Read a model written by :meth:`save`; ``ValueError`` for corrupt or future files."""
        return cls.from_dict(read_json(path, "model file"))

    # ------------------------------------------------------------------ presentation
    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        head = f"LatencyModel({hyper})"
        if not hasattr(self, "ttft_model_"):
            return head + "  [not fitted]"
        sub = [repr(m) for m in (self.ttft_model_, self.tpot_model_) if m is not None]
        body = "\n".join("  " + line for text in sub for line in text.splitlines())
        return f"{head}\n  latency_s = ttft_s + output_len * tpot_s\n{body}"

    def _repr_html_(self) -> str:
        if not hasattr(self, "ttft_model_"):
            return f"<pre>{html.escape(repr(self))}</pre>"
        return (
            "<div><b>LatencyModel</b>: latency_s = ttft_s + output_len * tpot_s"
            + "".join(
                m._repr_html_() for m in (self.ttft_model_, self.tpot_model_) if m is not None
            )
            + "</div>"
        )


# ---------------------------------------------------------------------------------------------
#: The factors ``NeighbourResiduals(alpha="loo")`` chooses among.
LOO_ALPHAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
_CELL_BY = ("input_len", "output_len")


class NeighbourResiduals:
    """A fitted model's log residuals at the measured configurations, carried to others.

    ``factor(X)`` is ``exp(alpha r(x))``, where ``r`` is the log residual ``log(measured /
    predicted)`` of the measured configurations in the same cell as ``x`` (equal ``tp``,
    ``pp``, GPUs and the ``by`` columns), interpolated linearly in ``log batch`` between the
    measured batches and held constant beyond them (1 for a cell without measurements).
    Multiplying a model's prediction by it reproduces every measured configuration when
    ``alpha = 1`` and carries the model's local bias to the configurations near them. Use it
    in a ``ConfigSpace`` query as a scorer (see docs/model.md, "How far a fitted TPOT can be
    trusted"); on ML.ENERGY v3 it closes the energy model's gap to the true optimum
    (``bench/eval_real.py --residuals``, docs/benchmarks.md).

    Parameters
    ----------
    alpha : float in [0, 1] or "loo", default 1.0
        Share of the residual carried. ``"loo"`` chooses it among :data:`LOO_ALPHAS` by
        leave-one-out over the measured configurations (each predicted from the others of its
        cell): small when the residuals are noise, 1 when they are smooth in the batch.
    by : sequence of str, default ()
        Further columns that separate cells, among ``input_len`` and ``output_len`` (when your
        measurements sweep them; ML.ENERGY's ``output_len`` is an outcome, not an axis).

    Attributes
    ----------
    alpha_ : float
        The factor used (``alpha``, or the one leave-one-out chose).
    n_cells_ : int
        Cells with measurements.
    """

    def __init__(self, alpha: float | str = 1.0, by: Sequence[str] = ()) -> None:
        self.alpha = alpha
        self.by = tuple(by)

    def _check_params(self) -> None:
        a = self.alpha
        if isinstance(a, str):
            if a != "loo":
                raise ValueError(f"alpha: expected a number in [0, 1] or 'loo', got {a!r}")
        elif isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
            raise ValueError(f"alpha: expected a number in [0, 1] or 'loo', got {a!r}")
        bad = [b for b in self.by if b not in _CELL_BY]
        if bad:
            raise ValueError(f"by: {bad[0]!r} is not one of {', '.join(_CELL_BY)}")

    def _keys(self, X: Any) -> tuple[FloatArray, FloatArray]:
        """(cell keys, log batch) of each row of ``X``."""
        plain = as_feature_table(X)
        gpus = as_model_features(X)  # tp replaced by n_gpus / pp when there is an n_gpus
        cols = [plain[:, 0], plain[:, 1], gpus[:, 0]] + [
            plain[:, FEATURES.index(b)] for b in self.by
        ]
        return np.column_stack(cols), np.log(plain[:, FEATURES.index("batch")])

    def fit(self, X: Any, measured: Any, predicted: Any) -> NeighbourResiduals:
        """Record the residuals of the measured configurations.

        Parameters
        ----------
        X : DataFrame, dict of arrays or structured array
            The measured configurations: ``tp``, ``pp``, ``batch``, ``input_len``,
            ``output_len`` (and ``n_gpus`` when GPUs are not ``tp * pp``).
        measured, predicted : array-like or str
            The measured value of each row and the model's prediction of it (positive), or
            names of columns of ``X``.

        Returns
        -------
        self
        """
        self._check_params()
        keys, lb = self._keys(X)
        n = len(lb)
        y = as_target(measured, n, "measured", X)
        p = as_target(predicted, n, "predicted", X)
        self._key, self._lb, self._r = keys, lb, np.log(y / p)
        self.n_cells_ = len({tuple(k) for k in keys.tolist()})
        if self.alpha == "loo":
            loo = np.array([self._carry(keys[i : i + 1], lb[i : i + 1], i)[0] for i in range(n)])
            errs = [float(np.mean((self._r - a * loo) ** 2)) for a in LOO_ALPHAS]
            self.alpha_ = LOO_ALPHAS[int(np.argmin(errs))]
        else:
            self.alpha_ = float(self.alpha)
        return self

    def _carry(self, keys: FloatArray, lb: FloatArray, skip: int | None = None) -> FloatArray:
        keep = np.ones(len(self._r), dtype=bool)
        if skip is not None:
            keep[skip] = False
        out = np.zeros(len(lb))
        for key in {tuple(k) for k in keys.tolist()}:
            q = np.all(keys == key, axis=1)
            t = keep & np.all(self._key == key, axis=1)
            if not t.any():
                continue
            o = np.argsort(self._lb[t])
            out[q] = np.interp(lb[q], self._lb[t][o], self._r[t][o])
        return out

    def log_residual(self, X: Any) -> FloatArray:
        """The carried log residual ``r(x)`` of each row of ``X`` (before ``alpha``)."""
        if not hasattr(self, "alpha_"):
            raise RuntimeError("this NeighbourResiduals is not fitted yet: call fit() first")
        keys, lb = self._keys(X)
        return self._carry(keys, lb)

    def factor(self, X: Any) -> FloatArray:
        """``exp(alpha_ r(x))`` for each row of ``X``: multiply the model's prediction by it."""
        r = self.log_residual(X)
        return np.asarray(np.exp(self.alpha_ * r), dtype=np.float64)

    def __repr__(self) -> str:
        head = f"NeighbourResiduals(alpha={self.alpha!r}" + (
            f", by={self.by!r})" if self.by else ")"
        )
        if not hasattr(self, "alpha_"):
            return head + "  [not fitted]"
        return f"{head}  [{len(self._r)} rows in {self.n_cells_} cells, alpha_={self.alpha_:g}]"
