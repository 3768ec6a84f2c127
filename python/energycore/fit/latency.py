"""LatencyModel: time to first token and time per output token, fitted together.

A ``LatencyModel`` composes a :class:`~energycore.TtftModel` (template ``ttft_v1``) and a
:class:`~energycore.TpotModel` (template ``tpot_v1``), both fitted by the same C++
Levenberg-Marquardt on log ratios as :class:`~energycore.EnergyModel`. It predicts

- ``ttft_s``: seconds from the arrival of a batch to its first token (prefill);
- ``tpot_s``: seconds per output token during decode;
- ``latency_s = ttft_s + output_len * tpot_s``: end-to-end time of the batch.

The coefficients are documented in ``docs/model.md`` (section "LatencyModel").
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from energycore._util.columns import FEATURES, FloatArray, as_feature_table, as_target
from energycore._util.persist import check_format, read_json
from energycore.fit.energy import SolverParams, TpotModel, TtftModel

__all__ = ["LatencyModel"]

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
        for time to first token, ``c1`` ... ``c6`` for time per output token), e.g.
        ``{"a4": 0.0, "c5": 0.0}``.

    Attributes
    ----------
    ttft_model_, tpot_model_ : TtftModel, TpotModel
        The fitted halves.
    coef_ : ndarray
        ``a1 .. a6`` then ``c1 .. c6``.
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
        """Coefficient names: the ``ttft_v1`` ones then the ``tpot_v1`` ones."""
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
    def fit(self, X: Any, ttft_s: Any, tpot_s: Any, sample_weight: Any = None) -> LatencyModel:
        """Fit both halves from one table of measurements.

        Parameters
        ----------
        X : DataFrame, dict of arrays or structured array
            Columns ``tp``, ``pp``, ``batch``, ``input_len``, ``output_len`` (others ignored).
        ttft_s, tpot_s : array-like or str
            Measured time to first token and time per output token (seconds, positive), or the
            names of columns of ``X``.
        sample_weight : array-like, optional
            Non-negative weight of each row, used by both fits.

        Returns
        -------
        self
        """
        self._check_solver_params()
        n = len(as_feature_table(X))
        # Validate both targets before fitting either, so a bad column costs no fit.
        yt = as_target(ttft_s, n, "ttft_s", X)
        yp = as_target(tpot_s, n, "tpot_s", X)
        ttft, tpot = self._halves()
        ttft.fit(X, yt, sample_weight)
        tpot.fit(X, yp, sample_weight)
        self._set(ttft, tpot)
        return self

    def _set(self, ttft: TtftModel, tpot: TpotModel) -> None:
        self.ttft_model_ = ttft
        self.tpot_model_ = tpot
        self.coef_ = np.concatenate([ttft.coef_, tpot.coef_])
        self.params_ = {**ttft.params_, **tpot.params_}
        self.stderr_ = {**ttft.stderr_, **tpot.stderr_}

    def _check_fitted(self) -> None:
        if not hasattr(self, "ttft_model_"):
            raise RuntimeError("this LatencyModel is not fitted yet: call fit() first")

    # ------------------------------------------------------------------ prediction
    def predict_ttft(self, X: Any) -> FloatArray:
        """Predicted time to first token of each row's batch, seconds."""
        self._check_fitted()
        return self.ttft_model_.predict(X)

    def predict_tpot(self, X: Any) -> FloatArray:
        """Predicted time per output token, seconds."""
        self._check_fitted()
        return self.tpot_model_.predict(X)

    def predict(self, X: Any) -> FloatArray:
        """Predicted end-to-end latency of each row's batch: ``ttft_s + output_len * tpot_s``."""
        return self.predict_all(X)["latency_s"]

    def predict_all(self, X: Any) -> dict[str, FloatArray]:
        """``{"ttft_s": ..., "tpot_s": ..., "latency_s": ...}`` for each row."""
        self._check_fitted()
        Xt = as_feature_table(X)
        ttft = self.ttft_model_.predict(_feature_columns(Xt))
        tpot = self.tpot_model_.predict(_feature_columns(Xt))
        return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": ttft + Xt[:, _OUT] * tpot}

    def score(self, X: Any, ttft_s: Any, tpot_s: Any) -> dict[str, dict[str, float]]:
        """Goodness of fit of each half on held-out data (see ``TemplateModel.metrics``)."""
        self._check_fitted()
        return {
            "ttft_s": self.ttft_model_.metrics(X, ttft_s),
            "tpot_s": self.tpot_model_.metrics(X, tpot_s),
        }

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: hyper-parameters and, when fitted, both halves."""
        d: dict[str, Any] = {
            "format": "energycore.latency_model",
            "format_version": FORMAT_VERSION,
            "hyper": self.get_params(),
        }
        if hasattr(self, "ttft_model_"):
            d["ttft"] = self.ttft_model_.to_dict()
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
        if ("ttft" in d) != ("tpot" in d):
            raise ValueError("model file: needs both 'ttft' and 'tpot' or neither")
        if "ttft" in d:
            ttft = TtftModel.from_dict(d["ttft"])
            tpot = TpotModel.from_dict(d["tpot"])
            if not (hasattr(ttft, "coef_") and hasattr(tpot, "coef_")):
                raise ValueError("model file: 'ttft' and 'tpot' must both be fitted")
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
        sub = [repr(self.ttft_model_), repr(self.tpot_model_)]
        body = "\n".join("  " + line for text in sub for line in text.splitlines())
        return f"{head}\n  latency_s = ttft_s + output_len * tpot_s\n{body}"

    def _repr_html_(self) -> str:
        if not hasattr(self, "ttft_model_"):
            return f"<pre>{html.escape(repr(self))}</pre>"
        return (
            "<div><b>LatencyModel</b>: latency_s = ttft_s + output_len * tpot_s"
            f"{self.ttft_model_._repr_html_()}{self.tpot_model_._repr_html_()}</div>"
        )


def _feature_columns(Xt: FloatArray) -> dict[str, FloatArray]:
    """A validated feature table as the named columns the model classes take."""
    return {name: Xt[:, j] for j, name in enumerate(FEATURES)}
