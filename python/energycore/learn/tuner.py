"""The Tuner: validity model -> performance model -> measure, with ask/tell (ML²Tuner's loop).

Each round the tuner refits two cheap gradient-boosted models on everything measured so far
and scores every unmeasured configuration of the space:

1. a **validity model** (:class:`~energycore.ValidityScorer`) learns which configurations fail
   (failed measurements and failed prechecks are its negative labels). Its probability is a
   *soft penalty*, ``validity_weight * log P(valid)``, added to the ranking score, never a hard
   filter: a configuration the model doubts can still win if it ranks high enough. It is
   refitted only when new failures arrive.
2. a **performance model** (:class:`~energycore.PerformanceScorer` with the pairwise objective by
   default) learns to *order* the valid configurations by the objective (log-transformed when
   positive). Only the order matters to a tuner, and a rank objective is robust to the heavy
   tails of run times. The best measured rows weigh more (``top_weight``), so the fit spends
   its effort on ordering the top. Scores are standardised over the candidates, so the
   validity penalty is in units of the ranking spread.
3. an optional **precheck** (ML²Tuner's model A): a cheap stage run on the short list before
   measuring (compile, read register counts). Its features feed a second performance model that
   re-ranks the short list; a precheck that fails is a validity label and the configuration is
   never measured.
4. a share ``local`` of the model's picks is a **local search** around the best measured
   configurations (the best-utility candidates one parameter away from one of them: a trust
   region); the rest is chosen greedily from the short list with a **diversity** penalty
   (similarity to configurations already in the batch: the share of equal parameter values),
   and a share of the batch, decaying linearly to zero over the budget, is **explored**: drawn
   at random, weighted by P(valid).

Optionally (``stagnation=K``, off by default), after ``K`` rounds' worth of measurements
without a new best, a share of the model's picks is asked far from the incumbents (at least
``stagnation_distance`` of the parameters away from each, with a novelty penalty against the
measured rows) until a new best arrives.

On a space of more than ``max_scored`` free candidates, only every ``rescore_every``-th round
scores all of them; the rounds between score a subset chosen after that full scoring (a cheap
pre-filter) plus the incumbents' neighbours.

The first ``n_init`` measurements are a seeded random sample. Refits are fresh every round (the
C++ trees train in milliseconds on a few hundred rows) with a per-round seed, so two runs with
the same seed ask the same configurations.

Results go to an append-only JSONL journal in the format of :class:`~energycore.Campaign`
(``energycore._journal``); a tuner given an existing journal resumes it: everything told before a
crash (even SIGKILL) is read back and never asked again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energycore._version import __version__
from energycore.campaign import journal as _journal
from energycore.learn.gbdt import BoostingBase, CodedRows
from energycore.learn.scorers import PerformanceScorer, ValidityScorer

__all__ = ["Tuner"]

_AUTO = "auto"
_OK, _FAILED, _FREE, _PENDING = 2, 3, 0, 1


def default_validity(seed: int = 0) -> ValidityScorer:
    """The tuner's validity model: small logistic trees (few labels, refit every round)."""
    return ValidityScorer(
        n_estimators=40, max_depth=4, learning_rate=0.2, min_child_samples=2, random_state=seed
    )


def default_performance(seed: int = 0) -> PerformanceScorer:
    """The tuner's performance model: pairwise ranking trees with row subsampling."""
    return PerformanceScorer(
        "pairwise", n_estimators=100, max_depth=6, subsample=0.8, random_state=seed
    )


def _plain(v: Any) -> Any:
    if isinstance(v, list | tuple):  # a sequence axis (a journal gives it back as a list)
        return tuple(_plain(x) for x in v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _clone(est: Any, seed: int) -> Any:
    params = est.get_params()
    if "random_state" in params:
        params["random_state"] = seed
    return type(est)(**params)


def _columns_of(space: Any, seed: int = 0) -> dict[str, list[Any]]:
    """The candidate configurations of ``space`` as named columns of plain values."""
    from energycore.learn.cache import CacheReplay
    from energycore.space import ConfigSpace

    if hasattr(space, "tuner_pool") and hasattr(space, "encode"):  # a SequenceSpace
        return _columns_of(space.tuner_pool(seed))
    if isinstance(space, ConfigSpace):
        names = [a.name for a in space.axes]
        data = space.to_frame(limit=None, as_frame=False)
        return {n: np.asarray(data[n]).tolist() for n in names}
    if isinstance(space, CacheReplay):
        return {k: v.tolist() for k, v in space.to_columns().items()}
    if isinstance(space, Sequence) and not isinstance(space, str):
        rows = list(space)
        if not rows:
            return {}
        if not all(isinstance(r, Mapping) for r in rows):
            raise ValueError("space: a sequence of configurations must hold mappings")
        names = list(rows[0])
        for i, r in enumerate(rows):
            if list(r) != names:
                raise ValueError(f"space: configuration {i} has columns {list(r)}, not {names}")
        return {n: [r[n] for r in rows] for n in names}
    if hasattr(space, "keys") and hasattr(space, "__getitem__"):  # mapping or DataFrame
        cols = {str(k): np.asarray(space[k]).tolist() for k in list(space.keys())}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"space: columns of different lengths {sorted(lengths)}")
        return cols
    raise ValueError(
        "space: expected a ConfigSpace, a CacheReplay, a mapping of columns, a DataFrame or a "
        f"list of configurations, got {type(space).__name__}"
    )


class Tuner:
    """Ask/tell auto-tuner over a finite configuration space.

    Parameters
    ----------
    space : ConfigSpace, SequenceSpace, CacheReplay, DataFrame, mapping of columns or list of dicts
        The candidate configurations (a ``ConfigSpace`` is enumerated: every point that passes
        its constraints; a ``SequenceSpace`` gives its ``tuner_pool(seed)`` and its features
        from ``encode``, sequences as tuples). Text columns are categorical.
    objective : str
        The result column to optimise (``"time"`` for Kernel Tuner, ``"energy"``, any column).
        A result may also be a bare number: the objective's value.
    direction : {"minimize", "maximize"}
    time_limit : float, optional
        Optimise ``objective`` among configurations whose ``time_column`` is at most this
        (e.g. energy under a time limit); slower ones count as valid but rank below every
        feasible one.
    time_column : str
        The column ``time_limit`` applies to.
    validity : ValidityScorer, "auto" or None
        Validity model (refit each round, its ``random_state`` set per round); ``"auto"``: small
        trees (:func:`default_validity`); ``None``: no validity model (failures are only
        never asked again).
    performance : PerformanceScorer or "auto"
        Performance model; ``"auto"``: pairwise ranking trees (:func:`default_performance`).
        With a regression objective, lower predictions of the (log) objective rank higher.
    budget : int
        Measurements to make in all (failures count; prechecks do not).
    batch : int
        Configurations asked per round by :meth:`run`.
    seed : int
        Seed of every random choice and of the models' subsampling.
    journal : path, optional
        JSONL journal; an existing one (same space and objective) is resumed.
    precheck : callable, optional
        ``precheck(config) -> mapping of numbers`` (hidden features such as register counts),
        run on the short list before measuring; raising, returning ``None`` or ``False`` marks
        the configuration invalid without measuring it.
    n_init : int, optional
        Random measurements before the models are used (default: ``batch``).
    explore : float
        Share of a batch drawn at random at the start; decays linearly to 0 over the budget.
    diversity : float
        Penalty (in standard deviations of the ranking score) for a candidate equal in every
        parameter to one already in the batch; proportional to the share of equal values.
    validity_weight : float
        Weight of ``log P(valid)`` in the utility (0: the validity model is ignored).
    local : float
        Share of the model's picks in each batch taken from the neighbourhood of the best
        measured configurations (a trust region: the free candidates one parameter away from
        one of the ``incumbents`` best), best utility first; the rest is the diverse greedy
        batch from the whole space.
    incumbents : int
        How many of the best measured configurations the local picks are drawn around.
    top_weight : float
        Extra weight of the best measured configurations in the performance model's fit: the
        row ranked r-th of n weighs ``1 + top_weight * exp(-r / (0.1 n))`` (the rank objective
        spends its effort on ordering the top, where the tuner picks).
    max_scored : int or None
        On a space with more free candidates than this, the rounds between full scorings
        (every ``rescore_every`` rounds) score only the best ``max_scored / 2`` candidates by
        their latest utility, the incumbents' neighbours and a random sample of the rest, up
        to ``max_scored`` in all (``None``: always score every candidate).
    rescore_every : int
        Rounds between full scorings of a space larger than ``max_scored``.
    prior : mapping or TransferScorer, optional
        Measurements of the same space on other GPUs, to warm-start from: a mapping of source
        name to a ``CacheReplay`` or to a table (DataFrame / mapping of columns) with the
        space's parameters and the ``objective`` column (NaN or missing = failed), or a
        :class:`~energycore.learn.transfer.TransferScorer` fitted on the space's parameters.
        The first batch is then the top of the sources' consensus instead of a random sample,
        and every round blends the transferred score (sources re-weighted by the target's
        measurements) with the tuner's own models.
    prior_rows : int
        The user's cap on the prior: with ``n`` valid target measurements the prior weighs at
        most ``prior_rows / (n + prior_rows)`` (it weighs as much as the tuner's own models at
        ``n = prior_rows``). Larger: trust the sources longer.
    prior_adapt : bool
        Scale the prior's weight by the evidence of the target rows
        (:func:`~energycore.learn.prior_trust.prior_trust`: the share of bootstrap resamples on
        which the prior ranks the measured rows, top first, at least as well as an
        out-of-fold model of the target alone), so a prior the target contradicts loses its
        weight; ``False``: the fixed cap alone.
    prior_explore : float
        Share of each batch (times the trust) asked away from the prior's region: the best
        candidates of the tuner's own model (random ones, weighted by P(valid), before it
        exists) among those outside the tenth of the space the prior ranks best, to give the
        target a chance to contradict a confident prior. Default 0: on benchmark-hub A100
        (misled sources) 0.25 cost 13 % more evaluations to the top 0.1 % (the own model's
        picks outside the data it has seen are poor); on a planted misleading prior it helps a
        little (``docs/transfer.md``).
    members : int
        Performance models in a bagged ensemble (1: a single model). With ``members > 1``
        each member is fitted on a bootstrap resample of the measured rows (Poisson counts
        times the top weights); the members' mean z-score ranks the short list (to which each
        member's own top is added), and the t-th greedy pick maximises member
        ``t mod members``'s utility, so the batch covers what the members disagree on (a
        Thompson-like use of the model's uncertainty). Off by default: no gain beyond the
        seed noise on the benchmark-hub spaces (``docs/benchmarks.md``).
    member_trees : float
        Share of the performance model's ``n_estimators`` each ensemble member fits (0.25
        with 4 members: the cost of one model).
    stagnation : int or None
        Stagnation-triggered diversification: after this many rounds' worth of measurements
        (``stagnation * batch``) without a new best, a share ``stagnation_share`` of each
        model-driven batch is asked *far* from the incumbents (the free candidates that differ
        from each of the ``incumbents`` best measured configurations in at least
        ``stagnation_distance`` of the parameters), best utility first with the diversity
        penalty and a novelty penalty (the largest share of parameter values equal to a
        measured configuration); a new best ends it. ``None`` (the default): off; it did not
        win on the benchmark-hub spaces (``docs/tuner.md``).
    stagnation_share : float
        Share of the model's picks asked far from the incumbents while stagnating, taken out
        of the greedy picks (at most all of them: the ``local`` share is kept).
    stagnation_distance : float
        Share of the parameters (at least one) a far candidate differs in from every incumbent.
    validity_products : bool
        Give the validity model the product of every pair of numeric parameters as extra
        features (a resource limit such as ``threads * tile <= L`` becomes one split); its
        P(valid) is then predicted from the rows, not the coded candidate set.
    """

    def __init__(
        self,
        space: Any,
        objective: str = "time",
        *,
        direction: str = "minimize",
        time_limit: float | None = None,
        time_column: str = "time",
        validity: Any = _AUTO,
        performance: Any = _AUTO,
        budget: int = 400,
        batch: int = 16,
        seed: int = 0,
        journal: str | Path | None = None,
        precheck: Callable[[dict[str, Any]], Any] | None = None,
        n_init: int | None = None,
        explore: float = 0.1,
        diversity: float = 0.5,
        validity_weight: float = 1.0,
        local: float = 0.5,
        incumbents: int = 3,
        top_weight: float = 3.0,
        max_scored: int | None = 16384,
        rescore_every: int = 4,
        prior: Any = None,
        prior_rows: int = 50,
        prior_adapt: bool = True,
        prior_explore: float = 0.0,
        members: int = 1,
        member_trees: float = 1.0,
        validity_products: bool = False,
        stagnation: int | None = None,
        stagnation_share: float = 0.5,
        stagnation_distance: float = 0.3,
    ) -> None:
        self.objective = self._name(objective, "objective")
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction: expected 'minimize' or 'maximize', got {direction!r}")
        self.direction = direction
        if time_limit is not None:
            if not isinstance(time_limit, numbers.Real) or not float(time_limit) > 0:
                raise ValueError(f"time_limit: expected a positive number, got {time_limit!r}")
            time_limit = float(time_limit)
        self.time_limit = time_limit
        self.time_column = self._name(time_column, "time_column")
        self.budget = self._count(budget, "budget")
        self.batch = self._count(batch, "batch")
        self.seed = self._count(seed, "seed", minimum=0)
        self.n_init = self.batch if n_init is None else self._count(n_init, "n_init", minimum=0)
        for name, v in (("explore", explore), ("diversity", diversity),
                        ("validity_weight", validity_weight), ("local", local),
                        ("top_weight", top_weight)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{name}: expected a finite number, got {v!r}")
            if v < 0:
                raise ValueError(f"{name}: must be >= 0, got {v!r}")
        if explore > 1:
            raise ValueError(f"explore: must be in [0, 1], got {explore!r}")
        if local > 1:
            raise ValueError(f"local: must be in [0, 1], got {local!r}")
        self.local = float(local)
        self.incumbents = self._count(incumbents, "incumbents")
        self.top_weight = float(top_weight)
        self.max_scored = None if max_scored is None else self._count(max_scored, "max_scored", 2)
        self.rescore_every = self._count(rescore_every, "rescore_every")
        self.members = self._count(members, "members")
        mt: Any = member_trees  # checked at run time whatever its annotation
        if isinstance(mt, bool) or not isinstance(mt, numbers.Real) or not 0.0 < float(mt) <= 1.0:
            raise ValueError(f"member_trees: expected a number in (0, 1], got {mt!r}")
        self.member_trees = float(mt)
        if not isinstance(validity_products, bool | np.bool_):
            raise ValueError(
                f"validity_products: expected True or False, got {validity_products!r}"
            )
        self.validity_products = bool(validity_products)
        self.stagnation = None if stagnation is None else self._count(stagnation, "stagnation")
        for name, v in (("stagnation_share", stagnation_share),
                        ("stagnation_distance", stagnation_distance)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: expected a number in [0, 1], got {v!r}")
        self.stagnation_share = float(stagnation_share)
        self.stagnation_distance = float(stagnation_distance)
        self.stagnating_ = False  # whether the last model-driven batch diversified
        self.n_diversified_ = 0  # candidates asked far from the incumbents so far
        self._vX: np.ndarray | None = None
        self.explore, self.diversity = float(explore), float(diversity)
        self.validity_weight = float(validity_weight)
        if validity == _AUTO:
            validity = default_validity(self.seed)
        if validity is not None and not hasattr(validity, "predict_proba"):
            raise ValueError("validity: expected a ValidityScorer (predict_proba), 'auto' or None")
        if performance == _AUTO:
            performance = default_performance(self.seed)
        if performance is None or not hasattr(performance, "predict"):
            raise ValueError("performance: expected a PerformanceScorer or 'auto'")
        self.validity, self.performance = validity, performance
        if precheck is not None and not callable(precheck):
            raise ValueError("precheck: expected a callable (config -> mapping of numbers)")
        self.precheck = precheck

        cols = _columns_of(space, self.seed)
        if not cols:
            raise ValueError("space: no configurations (an empty space, no parameters)")
        self.params: list[str] = [self._name(k, "space column") for k in cols]
        n = len(cols[self.params[0]])
        if n == 0:
            raise ValueError("space: no configurations (empty, or every point fails a constraint)")
        self._values = {k: [_plain(v) for v in cols[k]] for k in self.params}
        self.categories_: dict[str, list[Any]] = {}
        if hasattr(space, "tuner_pool") and hasattr(space, "encode"):  # a SequenceSpace
            rows = [self.config(i) for i in range(n)]
            self.features_ = np.asarray(space.encode(rows), dtype=np.float64)
        else:
            self.features_ = self._encode(self._values)
        self._lookup: dict[tuple[Any, ...], int] = {}
        for i, row in enumerate(zip(*(self._values[k] for k in self.params))):
            if row in self._lookup:
                raise ValueError(f"space: configuration {dict(zip(self.params, row))} repeats")
            self._lookup[row] = i
        self.n_configs = n

        self._state = np.full(n, _FREE, dtype=np.int8)
        self._value = np.full(n, np.nan)  # objective of measured configurations
        self._time = np.full(n, np.nan)  # time_column, for the time limit
        self._hidden: dict[int, np.ndarray] = {}
        self._hidden_names: list[str] | None = None
        self.records_: list[dict[str, Any]] = []
        self.p_valid_: np.ndarray | None = None
        self.validity_model_: Any = None
        self.performance_model_: Any = None
        self.round_ = 0
        self.n_resumed_ = 0
        self._coded: CodedRows | bool | None = False  # False: not tried yet
        # the scored subset (between full scorings): its rows, their coded form, and this
        # round's split (which of them are still free, how many neighbours were appended)
        self._sub: tuple[np.ndarray, CodedRows | None] | None = None
        self._split: tuple[np.ndarray, int] | None = None
        self._distinct: dict[str, list[Any] | None] = {}
        self._util_all: np.ndarray | None = None  # latest utility of every scored candidate
        self._full_round = -1  # round of the last scoring of every free candidate
        self._p_all = np.ones(n)  # latest P(valid) of every candidate
        self._vm_labels = -1  # failed labels when the validity model was last fitted
        self._vm_full = False  # ... and whether it scored every free candidate then
        self._vm: Any = None
        self.round_seconds_: list[float] = []
        self.prior_rows = self._count(prior_rows, "prior_rows")
        self.prior_adapt, self.prior_explore = self._prior_options(prior_adapt, prior_explore)
        self.prior_trust_, self.prior_weight_ = 1.0, 1.0
        self.prior_: Any = None if prior is None else self._fit_prior(prior)
        self.journal = None if journal is None else Path(journal)
        self._writer: _journal.Writer | None = None
        if self.journal is not None:
            self._open_journal()

    # ---- validation helpers ----------------------------------------------------------------

    @staticmethod
    def _name(v: Any, what: str) -> str:
        if not isinstance(v, str) or not v:
            raise ValueError(f"{what}: expected a non-empty string, got {v!r}")
        return v

    @staticmethod
    def _count(v: Any, what: str, minimum: int = 1) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
            raise ValueError(f"{what}: expected an integer >= {minimum}, got {v!r}")
        return int(v)

    def _encode(self, values: Mapping[str, list[Any]]) -> np.ndarray:
        """Numeric feature matrix; text columns coded by their sorted distinct values."""
        out = np.empty((len(values[self.params[0]]), len(self.params)))
        self.categories_ = {}
        for j, k in enumerate(self.params):
            col = values[k]
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in col) or all(
                isinstance(v, bool) for v in col
            ):
                out[:, j] = np.asarray(col, dtype=np.float64)
            else:
                cats = sorted({str(v) for v in col})
                code = {c: i for i, c in enumerate(cats)}
                self.categories_[k] = cats
                out[:, j] = [code[str(v)] for v in col]
        if not np.isfinite(out).all():
            raise ValueError("space: parameter values must be finite numbers or text")
        return out

    def config(self, i: int) -> dict[str, Any]:
        """The ``i``-th candidate configuration."""
        return {k: self._values[k][i] for k in self.params}

    def index_of(self, config: Mapping[str, Any]) -> int:
        """Position of ``config`` in the space; ``ValueError`` for unknown parameters/points."""
        if not isinstance(config, Mapping):
            raise ValueError(f"config: expected a mapping, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.params))
        if unknown:
            raise ValueError(
                f"config: unknown parameter(s) {unknown} (the space has {self.params})"
            )
        missing = [k for k in self.params if k not in config]
        if missing:
            raise ValueError(f"config: missing parameter(s) {missing}")
        key = tuple(_plain(config[k]) for k in self.params)
        i = self._lookup.get(key)
        if i is None:
            raise ValueError(f"config: {dict(zip(self.params, key))} is not in the space")
        return i

    # ---- prior (transfer from other GPUs) ------------------------------------------------

    def _fit_prior(self, prior: Any) -> Any:
        """A TransferScorer on the space's encoded parameters, its scores of every candidate."""
        from energycore.learn.cache import CacheReplay
        from energycore.learn.transfer import TransferScorer

        if isinstance(prior, TransferScorer):
            scorer = prior
            if list(scorer.features_) != self.params and getattr(scorer, "_named", False):
                raise ValueError(
                    f"prior: the TransferScorer's parameters {scorer.features_} are not the "
                    f"space's {self.params}"
                )
        else:
            if not isinstance(prior, Mapping) or not prior:
                raise ValueError(
                    "prior: expected a mapping of source name -> CacheReplay or table, or a "
                    "TransferScorer"
                )
            sources = {}
            for name, src in prior.items():
                if isinstance(src, CacheReplay):
                    cols = {k: v.tolist() for k, v in src.to_columns().items()}
                    y = src.values(self.objective)
                else:
                    try:
                        cols = {str(k): np.asarray(src[k]).tolist() for k in list(src.keys())}
                    except (AttributeError, TypeError):
                        raise ValueError(
                            f"prior[{name!r}]: expected a CacheReplay or a table of columns, "
                            f"got {type(src).__name__}"
                        ) from None
                    if self.objective not in cols:
                        raise ValueError(
                            f"prior[{name!r}]: no {self.objective!r} column (the objective)"
                        )
                    y = np.array(
                        [v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                         for v in cols[self.objective]], dtype=np.float64,
                    )  # fmt: skip
                missing = [k for k in self.params if k not in cols]
                if missing:
                    raise ValueError(
                        f"prior[{name!r}]: missing parameter(s) {missing} of the space "
                        f"{self.params}"
                    )
                sources[str(name)] = (self._encode_rows(cols, f"prior[{name!r}]"), y)
            scorer = TransferScorer(
                direction=self.direction, log=all(
                    (y[np.isfinite(y)] > 0).all() for _, y in sources.values()
                ), random_state=self.seed,
            ).fit_sources(sources)  # fmt: skip
        self._prior_S = scorer._scores(self.features_)
        self._prior_p = scorer.predict_valid(self.features_)
        return scorer

    def _encode_rows(self, cols: Mapping[str, list[Any]], what: str) -> np.ndarray:
        """Source rows coded like the space (text values by the space's categories)."""
        n = len(cols[self.params[0]])
        out = np.empty((n, len(self.params)))
        for j, k in enumerate(self.params):
            vals = [_plain(v) for v in cols[k]]
            if k in self.categories_:
                code = {c: i for i, c in enumerate(self.categories_[k])}
                bad = [v for v in vals if str(v) not in code]
                if bad:
                    raise ValueError(f"{what}: {k}={bad[0]!r} is not a value of the space")
                out[:, j] = [code[str(v)] for v in vals]
            else:
                try:
                    out[:, j] = np.asarray(vals, dtype=np.float64)
                except (TypeError, ValueError):
                    raise ValueError(f"{what}: {k} must hold numbers like the space") from None
        return out

    def _prior_blend(
        self, free: np.ndarray, ok: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """(prior score z, prior P(valid), weight of the tuner's own models) for ``free``."""
        scorer = self.prior_
        v = self._value[ok]
        scorer.fit_target(self.features_[ok], v, scores=self._prior_S[ok])
        s = scorer.predict(self.features_[free], scores=self._prior_S[free])
        cap = self.prior_rows / (ok.size + self.prior_rows)
        self.prior_trust_ = self._prior_evidence(ok) if self.prior_adapt else 1.0
        self.prior_weight_ = cap * self.prior_trust_
        return self._z(s), self._prior_p[free], 1.0 - self.prior_weight_

    @staticmethod
    def _prior_options(adapt: Any, explore: Any) -> tuple[bool, float]:
        if not isinstance(adapt, bool | np.bool_):
            raise ValueError(f"prior_adapt: expected True or False, got {adapt!r}")
        if (
            isinstance(explore, bool)
            or not isinstance(explore, numbers.Real)
            or not (0.0 <= float(explore) <= 1.0)
        ):
            raise ValueError(f"prior_explore: expected a number in [0, 1], got {explore!r}")
        return bool(adapt), float(explore)

    def _prior_evidence(self, ok: np.ndarray) -> float:
        """Trust in the prior from the valid target rows ``ok`` (1 with too few of them)."""
        from energycore.learn.prior_trust import MIN_ROWS, oof_goodness, prior_trust

        if ok.size < MIN_ROWS:
            return 1.0
        g = self._targets(ok)
        seed = int(np.random.default_rng([self.seed, self.round_, 13]).integers(2**31 - 1))
        own = oof_goodness(self.features_[ok], g, seed=seed)
        prior = self.prior_.predict(self.features_[ok], scores=self._prior_S[ok])
        return prior_trust(prior, own, g, seed=seed)

    def _prior_share(
        self,
        picks: np.ndarray,
        prior_score: np.ndarray,
        p: np.ndarray,
        logp: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Replace the last ``prior_explore * trust`` share of the batch ``picks`` (positions
        in the free candidates) by candidates outside the prior's region (the tenth of the
        free candidates it ranks best): the own model's best there, or random ones weighted
        by P(valid) before the own model exists."""
        trust = self.prior_trust_ if self.prior_adapt else 1.0
        m = min(round(self.prior_explore * trust * picks.size), picks.size - 1)
        if m <= 0:
            return picks
        keep = picks[: picks.size - m]
        away = np.ones(prior_score.size, dtype=bool)
        away[keep] = False
        n_region = math.ceil(0.1 * prior_score.size)
        away[np.argsort(-prior_score, kind="stable")[:n_region]] = False
        cand = np.flatnonzero(away)
        if cand.size == 0:
            return picks
        m = min(m, cand.size)
        own = getattr(self, "_own_z", None)
        if own is None:
            w = np.clip(p[cand], 0.02, 1.0)
            w = w / w.sum()
            extra = rng.choice(cand, size=m, replace=False, p=w)
        else:
            u = own[cand] + self.validity_weight * logp[cand]
            extra = cand[np.argsort(-u, kind="stable")[:m]]
        return np.concatenate([keep, extra])

    # ---- journal ---------------------------------------------------------------------------

    def _space_hash(self) -> str:
        h = hashlib.sha256()
        h.update(repr(self.params).encode())
        for k in self.params:
            h.update(repr(self._values[k]).encode())
        return h.hexdigest()

    def _header(self) -> dict[str, Any]:
        return {
            "type": "header",
            "format": _journal.FORMAT,
            "format_version": _journal.FORMAT_VERSION,
            "campaign_id": uuid.uuid4().hex,
            "created": time.time(),
            "energycore": __version__,
            "plan": "tuner",
            "n": self.n_configs,
            "seed": self.seed,
            "objective": self.objective,
            "direction": self.direction,
            "time_limit": self.time_limit,
            "budget": self.budget,
            "batch": self.batch,
            "params": self.params,
            "plan_hash": self._space_hash(),
        }

    def _open_journal(self) -> None:
        assert self.journal is not None
        writer = _journal.Writer(self.journal)  # lock first, then read
        try:
            header, records = _journal.read(self.journal)
            if header is not None:
                if header.get("plan") != "tuner" or header.get("plan_hash") != self._space_hash():
                    raise ValueError(
                        f"journal {self.journal} was written for a different space or by a "
                        "campaign; use the same space or a new journal"
                    )
                for field in ("objective", "direction", "time_limit"):
                    if header.get(field) != getattr(self, field):
                        raise ValueError(
                            f"journal {self.journal}: {field} was {header.get(field)!r}, now "
                            f"{getattr(self, field)!r}; use a new journal"
                        )
            else:
                writer.append(self._header())
            for rec in records:
                self._restore(rec)
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        self.n_resumed_ = len(self.records_)
        if self.records_:
            self.round_ = max(int(r.get("round", 0)) for r in self.records_) + 1

    def _restore(self, rec: dict[str, Any]) -> None:
        try:
            i = self.index_of(rec["config"])
        except (KeyError, ValueError) as e:
            raise ValueError(
                f"journal {self.journal}: bad result record {rec.get('key')!r} ({e})"
            ) from None
        if self._state[i] in (_OK, _FAILED):
            return  # a duplicate line: the first one counts
        self._apply(i, rec)

    def close(self) -> None:
        """Release the journal (also done when the tuner is garbage collected)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Tuner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    # ---- results ---------------------------------------------------------------------------

    @property
    def n_measured(self) -> int:
        """Measurements told so far (failures included; failed prechecks not)."""
        return sum(1 for r in self.records_ if r.get("stage", "measure") == "measure")

    @property
    def n_failed(self) -> int:
        """Failed measurements (failed prechecks not included)."""
        return sum(
            1
            for r in self.records_
            if r.get("stage", "measure") == "measure" and r["status"] != "ok"
        )

    @property
    def done(self) -> bool:
        """True when the budget is spent or every configuration is measured."""
        return self.n_measured >= self.budget or not (self._state == _FREE).any()

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b

    def _feasible(self, i: int) -> bool:
        return self.time_limit is None or (
            math.isfinite(self._time[i]) and self._time[i] <= self.time_limit
        )

    @property
    def best_index_(self) -> int | None:
        """Index of the best feasible measured configuration (None before any)."""
        best: int | None = None
        for i in np.flatnonzero(self._state == _OK):
            if self._feasible(int(i)) and (
                best is None or self._better(self._value[i], self._value[best])
            ):
                best = int(i)
        return best

    @property
    def best_config_(self) -> dict[str, Any] | None:
        i = self.best_index_
        return None if i is None else self.config(i)

    @property
    def best_value_(self) -> float:
        i = self.best_index_
        return math.nan if i is None else float(self._value[i])

    def trace(self) -> np.ndarray:
        """Best feasible objective after each measurement, in the order told (NaN before the
        first valid one)."""
        out, best = [], math.nan
        for r in self.records_:
            if r.get("stage", "measure") != "measure":
                continue
            if r["status"] == "ok":
                i = self.index_of(r["config"])
                v = self._value[i]
                if self._feasible(i) and (math.isnan(best) or self._better(v, best)):
                    best = float(v)
            out.append(best)
        return np.asarray(out)

    def to_frame(self) -> Any:
        """The records as a pandas DataFrame: parameters, status, stage, round, result columns."""
        import pandas as pd

        rows = []
        for r in self.records_:
            row = dict(r["config"])
            row.update(status=r["status"], stage=r.get("stage", "measure"), round=r.get("round"))
            row.update(r.get("result") or {})
            row["error"] = r.get("error")
            rows.append(row)
        return pd.DataFrame(rows)

    # ---- tell ------------------------------------------------------------------------------

    def _classify(self, result: Any) -> tuple[str, dict[str, Any], str | None]:
        """(status, result columns, error) of one reported result."""
        if isinstance(result, BaseException):
            return "failed", {}, f"{type(result).__name__}: {result}"
        if result is None or result is False:
            return "failed", {}, "no result"
        if isinstance(result, numbers.Real) and not isinstance(result, bool):
            cols: dict[str, Any] = {self.objective: float(result)}
        elif isinstance(result, Mapping):
            cols = {}
            for k, v in result.items():
                if not isinstance(k, str):
                    return "failed", {}, f"result column names must be strings, got {k!r}"
                if isinstance(v, np.generic):
                    v = v.item()
                if isinstance(v, float | int | str | bool) or v is None:
                    cols[k] = v
                elif isinstance(v, list | tuple) and len(v) <= 1024:
                    cols[k] = list(v)
                else:
                    cols[k] = repr(v)
            status = cols.pop("status", "ok")
            error = cols.pop("__error__", None)
            if error is not None or (status not in ("ok", None)):
                return "failed", cols, str(error if error is not None else status)
        else:
            return "failed", {}, f"unsupported result type {type(result).__name__}"
        v = cols.get(self.objective)
        if isinstance(v, bool) or not isinstance(v, int | float):
            return "failed", cols, f"result has no numeric {self.objective!r} (got {v!r})"
        if not math.isfinite(v):
            return "failed", cols, f"{self.objective!r} is {v} (not finite)"
        if self.time_limit is not None:
            t = cols.get(self.time_column)
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                return "failed", cols, f"result has no finite {self.time_column!r} for time_limit"
        return "ok", cols, None

    def _apply(self, i: int, rec: dict[str, Any]) -> None:
        self.records_.append(rec)
        if rec["status"] == "ok":
            self._state[i] = _OK
            res = rec["result"]
            self._value[i] = float(res[self.objective])
            if self.time_limit is not None:
                self._time[i] = float(res[self.time_column])
        else:
            self._state[i] = _FAILED
        feats = rec.get("features")
        if isinstance(feats, Mapping) and feats:
            self._set_hidden(i, feats)

    def _set_hidden(self, i: int, feats: Mapping[str, Any]) -> None:
        if self._hidden_names is None:
            self._hidden_names = sorted(feats)
        row = np.full(len(self._hidden_names), np.nan)
        for j, k in enumerate(self._hidden_names):
            v = feats.get(k)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                row[j] = float(v)
        self._hidden[i] = row

    def _record(self, i: int, status: str, result: dict[str, Any], error: str | None,
                stage: str, round_: int) -> dict[str, Any]:  # fmt: skip
        config = self.config(i)
        rec: dict[str, Any] = {
            "type": "result",
            "key": _journal.config_key(
                {k: json.dumps(list(v)) if isinstance(v, tuple) else v for k, v in config.items()}
            ),
            "index": i,
            "config": config,
            "status": status,
            "result": result,
            "error": error,
            "stage": stage,
            "round": round_,
            "finished": time.time(),
        }
        if i in self._hidden and self._hidden_names is not None:
            rec["features"] = {
                k: (None if math.isnan(v) else float(v))
                for k, v in zip(self._hidden_names, self._hidden[i])
            }
        return rec

    def _write(self, rec: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer.append(rec)

    def tell(self, configs: Sequence[Mapping[str, Any]], results: Sequence[Any]) -> None:
        """Report measurements: one result per configuration.

        A result is a mapping of result columns (with the ``objective`` column), or a bare
        number (the objective). A failure is a result too: ``None``, an exception instance, a
        mapping whose ``status`` is not ``"ok"`` (Kernel Tuner's error names) or with an
        ``__error__``, or a missing/NaN objective; it is recorded and trains the validity model.
        Each record is journaled (fsynced) before the next. Telling a configuration twice, or
        one not in the space, raises ``ValueError`` before anything is recorded.
        """
        if isinstance(configs, Mapping):
            raise ValueError("configs: expected a sequence of configurations, got one mapping")
        configs, results = list(configs), list(results)
        if len(configs) != len(results):
            raise ValueError(
                f"results: expected one per configuration ({len(configs)}), got {len(results)}"
            )
        idx = [self.index_of(c) for c in configs]
        if len(set(idx)) != len(idx):
            raise ValueError("configs: the same configuration appears twice")
        for i in idx:
            if self._state[i] in (_OK, _FAILED):
                raise ValueError(
                    f"configs: {self.config(i)} was already told (never measured twice)"
                )
        round_ = max(self.round_ - 1, 0)
        for i, res in zip(idx, results):
            status, cols, error = self._classify(res)
            rec = self._record(i, status, cols, error, "measure", round_)
            self._write(rec)
            self._apply(i, rec)

    # ---- ask -------------------------------------------------------------------------------

    def ask(self, n: int | None = None) -> list[dict[str, Any]]:
        """The next ``n`` configurations to measure (default ``batch``; fewer when the budget
        or the space runs out, ``[]`` when done). Asked but untold configurations are not
        asked again until told, nor after a restart unless the journal lacks them."""
        n = self.batch if n is None else self._count(n, "n")
        pending = int((self._state == _PENDING).sum())
        n = min(n, self.budget - self.n_measured - pending)
        t0 = time.perf_counter()
        rng = np.random.default_rng([self.seed, self.round_])
        self.round_ += 1
        free = np.flatnonzero(self._state == _FREE)
        n = min(n, free.size)
        if n <= 0:
            return []
        n_valid = int((self._state == _OK).sum())
        if n_valid < max(self.n_init, 2) and self.prior_ is None:
            picks = rng.choice(free, size=n, replace=False)
        else:
            picks = self._model_picks(free, n, rng)
        self._state[picks] = _PENDING
        self.round_seconds_.append(time.perf_counter() - t0)
        return [self.config(int(i)) for i in picks]

    def _targets(self, ok: np.ndarray) -> np.ndarray:
        """Higher-is-better training targets of the measured valid configurations."""
        v = self._value[ok]
        if (v > 0).all():
            v = np.log(v)
        y = -v if self.direction == "minimize" else v
        if self.time_limit is not None:
            t = self._time[ok]
            slow = ~(t <= self.time_limit)
            if slow.any():
                floor = y[~slow].min() if (~slow).any() else 0.0
                spread = max(float(np.ptp(y)), 1.0)
                y = y.copy()
                y[slow] = floor - spread * (1.0 + np.log(t[slow] / self.time_limit))
        return y

    def _weights(self, y: np.ndarray) -> np.ndarray | None:
        """Sample weights that favour the top of the measured (higher y = better): a row
        ranked r-th of n weighs ``1 + top_weight * exp(-r / (0.1 n))``."""
        if self.top_weight <= 0 or y.size < 2:
            return None
        r = np.empty(y.size)
        r[np.argsort(-y, kind="stable")] = np.arange(y.size)
        return 1.0 + self.top_weight * np.exp(-r / max(0.1 * y.size, 1.0))

    def _fit_rank(
        self, est: Any, X: np.ndarray, y: np.ndarray, seed: int, *, boot: bool = False
    ) -> Any:
        """A clone of ``est`` fitted to rank ``y`` (higher = better) on ``X``; ``boot``: an
        ensemble member, fitted on a bootstrap resample of the rows (their top weights times
        the resampling counts) with ``member_trees`` of the trees."""
        model = _clone(est, seed)
        regress = getattr(model, "objective", "pairwise") != "pairwise"
        w = self._weights(y)
        if boot:
            params = model.get_params()
            if "n_estimators" in params and self.member_trees < 1.0:
                n_trees = max(1, round(params["n_estimators"] * self.member_trees))
                model.set_params(n_estimators=n_trees)
            counts = np.random.default_rng(seed).poisson(1.0, size=y.size).astype(np.float64)
            keep = counts > 0
            if keep.sum() >= 2 and np.ptp(y[keep]) > 0:
                w = counts if w is None else w * counts
                X, y, w = X[keep], y[keep], w[keep]
        model.fit(X, -y if regress else y, sample_weight=w)
        model._ec_sign = -1.0 if regress else 1.0
        return model

    def _predict_free(self, model: Any, method: str, free: np.ndarray) -> np.ndarray:
        """``model.<method>`` of the free candidates. energycore's own trees score the whole
        space from its coded form (leaf-bitmask tables, bit-identical to predicting
        ``features_[free]``) while most of it is free, or the scored subset from its coded form
        (see :meth:`_scored`); other estimators get the rows."""
        if not isinstance(model, BoostingBase):
            return getattr(model, method)(self.features_[free])  # type: ignore[no-any-return]
        if self._split is not None and self._sub is not None and self._sub[1] is not None:
            s_free, n_extra = self._split  # this round scores the subset (+ neighbours)
            part: np.ndarray = getattr(model, method)(self._sub[1])[s_free]
            if n_extra:
                rest = getattr(model, method)(self.features_[free[free.size - n_extra :]])
                part = np.concatenate([part, rest])
            return part
        if 4 * free.size >= self.n_configs:
            if self._coded is False:
                try:
                    self._coded = CodedRows(self.features_)
                except ValueError:  # a column with more than 256 distinct values
                    self._coded = None
            if isinstance(self._coded, CodedRows):
                out: np.ndarray = getattr(model, method)(self._coded)
                return out[free]
        rows: np.ndarray = getattr(model, method)(self.features_[free])
        return rows

    @staticmethod
    def _z(s: np.ndarray) -> np.ndarray:
        sd = float(s.std())
        return (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)

    def _scored(self, free: np.ndarray, ok: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The free candidates to score this round: all of them, or on a space of more than
        ``max_scored`` free candidates, between full scorings every ``rescore_every`` rounds,
        a subset chosen after the last full scoring (the best half by its utility and a random
        sample of the rest, coded once) plus the incumbents' neighbours (a cheap pre-filter:
        the models re-order what they liked and what is next to the best measured)."""
        self._split = None
        m = self.max_scored
        if (
            m is None
            or free.size <= m
            or self._util_all is None
            or self.round_ - self._full_round >= self.rescore_every
        ):
            self._full_round, self._sub = self.round_, None
            return free
        if self._sub is None:
            u = self._util_all[free]
            keep = np.zeros(free.size, dtype=bool)
            keep[np.argpartition(-u, m // 2 - 1)[: m // 2]] = True
            rest = np.flatnonzero(~keep)
            keep[rng.choice(rest, size=min(m - m // 2, rest.size), replace=False)] = True
            rows = free[keep]
            try:
                coded: CodedRows | None = CodedRows(self.features_[rows])
            except ValueError:  # a column with more than 256 distinct values
                coded = None
            self._sub = (rows, coded)
        rows = self._sub[0]
        s_free = self._state[rows] == _FREE
        mark = np.zeros(self.n_configs, dtype=bool)
        mark[self._neighbours(ok)] = True
        mark[rows] = False
        extra = np.flatnonzero(mark & (self._state == _FREE))
        self._split = (s_free, extra.size)
        return np.concatenate([rows[s_free], extra])

    def _model_picks(self, free: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        X = self.features_
        ok = np.flatnonzero(self._state == _OK)
        failed = np.flatnonzero(self._state == _FAILED)
        seeds = rng.integers(0, 2**31 - 1, size=3)
        n_free = free.size
        free = self._scored(free, ok, rng)
        full = free.size == n_free
        # 1. validity: P(valid) of every candidate (a soft penalty on the utility), refitted
        # when new failures arrived (or when a full scoring follows a subset one)
        self.validity_model_ = None
        if self.validity is not None and failed.size and ok.size:
            if failed.size != self._vm_labels or (full and not self._vm_full):
                rows = np.concatenate([ok, failed])
                labels = np.concatenate([np.ones(ok.size), np.zeros(failed.size)])
                if self.validity_products:
                    V = self._validity_features()
                    vm = _clone(self.validity, int(seeds[0])).fit(V[rows], labels)
                    self._p_all[free] = vm.predict_proba(V[free])[:, 1]
                else:
                    vm = _clone(self.validity, int(seeds[0])).fit(X[rows], labels)
                    self._p_all[free] = self._predict_free(vm, "predict_proba", free)[:, 1]
                self._vm_labels, self._vm_full, self._vm = failed.size, full, vm
            self.validity_model_ = self._vm
        p = self._p_all[free].copy()
        own = ok.size >= max(self.n_init, 2)
        if self.prior_ is not None:
            prior_score, prior_p, alpha = self._prior_blend(free, ok)
            if not own:
                alpha = 0.0
                self.prior_weight_ = 1.0
            p = (1.0 - alpha) * prior_p + alpha * p
        p_all = np.ones(self.n_configs)
        p_all[self._state == _FREE] = self._p_all[self._state == _FREE]
        p_all[free] = p
        self.p_valid_ = p_all
        # 2. performance: a ranking score of every candidate (blended with the prior's)
        member_z: list[np.ndarray] = []
        if own:
            y_ok = self._targets(ok)
            if self.members > 1:  # a bagged ensemble: its mean ranks, each member picks
                mseeds = np.random.default_rng(int(seeds[1])).integers(
                    0, 2**31 - 1, size=self.members
                )
                models = [
                    self._fit_rank(self.performance, X[ok], y_ok, int(ms), boot=True)
                    for ms in mseeds
                ]
                member_z = [
                    self._z(mod._ec_sign * self._predict_free(mod, "predict", free))
                    for mod in models
                ]
                pm = models[0]
                score = self._z(np.mean(member_z, axis=0))
            else:
                pm = self._fit_rank(self.performance, X[ok], y_ok, int(seeds[1]))
                score = self._z(pm._ec_sign * self._predict_free(pm, "predict", free))
            self.performance_model_ = pm
        else:
            score = np.zeros(free.size)
        if self.prior_ is not None:
            self._own_z = score if own else None  # for the share asked away from the prior
            score = self._z((1.0 - alpha) * prior_score + alpha * score)
            member_z = [self._z((1.0 - alpha) * prior_score + alpha * z) for z in member_z]
        logp = np.log(np.clip(p, 0.02, 1.0))
        util = score + self.validity_weight * logp
        member_u = [z + self.validity_weight * logp for z in member_z]
        if self.max_scored is not None and n_free > self.max_scored:
            if self._util_all is None:
                self._util_all = np.full(self.n_configs, -np.inf)
            self._util_all[free] = util
        # 3. the short list, optionally re-ranked after a precheck
        k = min(free.size, max(4 * n, n + 8))
        top = np.argpartition(-util, k - 1)[:k] if k < free.size else np.arange(free.size)
        top = top[np.argsort(-util[top], kind="stable")]
        if member_u:  # the short list also holds each member's own top
            extra = [np.argpartition(-u, min(k, u.size) - 1)[: min(k, u.size)] for u in member_u]
            top = np.concatenate([top, *extra])
            top = top[np.sort(np.unique(top, return_index=True)[1])]
        if self.precheck is not None:
            top, util = self._precheck_rerank(free, top, util, score, logp, int(seeds[2]))
            member_u = []  # the precheck's re-ranked utility decides
        # 4. exploration share, decaying over the budget, then a diverse greedy batch
        frac_left = max(0.0, 1.0 - self.n_measured / self.budget)
        n_explore = int(rng.binomial(n, self.explore * frac_left)) if n > 1 else 0
        n_model = n - n_explore
        n_local = min(round(self.local * n_model), n_model)
        far = np.zeros(0, dtype=np.intp)
        self.stagnating_ = own and self._stagnant()
        if self.stagnating_:  # the far share comes out of the greedy picks
            m_far = min(round(self.stagnation_share * n_model), n_model - n_local)
            far = self._far(free, ok, util, m_far)
            self.n_diversified_ += int(far.size)
            n_model -= far.size
            top = top[~np.isin(top, far)]
        local = self._local(free, ok, util, n_local) if n_local else np.zeros(0, dtype=np.intp)
        if local.size:
            top = top[~np.isin(top, local)]
        greedy = self._diverse(free, top, util, n_model - local.size, member_u)
        picks = np.concatenate([far, local, greedy])
        if n_explore:
            taken = np.zeros(free.size, dtype=bool)
            taken[picks] = True
            rest = np.flatnonzero(~taken)
            if rest.size:
                w = p[rest] / p[rest].sum()
                m = min(n_explore, rest.size)
                picks = np.concatenate([picks, rng.choice(rest, size=m, replace=False, p=w)])
        if self.prior_ is not None:
            picks = self._prior_share(picks, prior_score, p, logp, rng)
        return free[picks]

    def _validity_features(self) -> np.ndarray:
        """The validity model's features with ``validity_products``: the parameters plus the
        product of every pair of numeric (non-categorical) parameters, so that a resource
        limit such as threads x tile <= L is one split instead of a staircase (computed once;
        more than 16 numeric columns get no products)."""
        if self._vX is None:
            X = self.features_
            num = [j for j, k in enumerate(self.params) if k not in self.categories_]
            if X.shape[1] != len(self.params) or len(num) > 16:
                num = []
            pairs = [X[:, a] * X[:, b] for ai, a in enumerate(num) for b in num[ai + 1 :]]
            self._vX = np.column_stack([X, *pairs]) if pairs else X
        return self._vX

    def _incumbents(self, ok: np.ndarray) -> np.ndarray:
        """The ``incumbents`` best measured feasible configurations (indices, best first; empty
        when none of the measured ``ok`` meets the time limit)."""
        feas = ok if self.time_limit is None else ok[self._time[ok] <= self.time_limit]
        return feas[np.argsort(-self._targets(feas), kind="stable")[: self.incumbents]]

    def _neighbours(self, ok: np.ndarray) -> np.ndarray:
        """Indices of the configurations one parameter away from an incumbent (one of the
        ``incumbents`` best measured feasible configurations), found by lookup: no pass over
        the space. Parameters with more than 256 values (sequences) have no neighbours."""
        inc = self._incumbents(ok)
        out: list[int] = []
        for i in inc:
            row = [self._values[k][int(i)] for k in self.params]
            for j, k in enumerate(self.params):
                if k not in self._distinct:
                    vals = list(dict.fromkeys(self._values[k]))
                    self._distinct[k] = vals if len(vals) <= 256 else None
                for v in self._distinct[k] or ():
                    if v != row[j]:
                        hit = self._lookup.get((*row[:j], v, *row[j + 1 :]))
                        if hit is not None:
                            out.append(hit)
        return np.asarray(out, dtype=np.intp)

    def _near(self, free: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Mask of the ``free`` candidates one parameter away from an incumbent."""
        mark = np.zeros(self.n_configs, dtype=bool)
        mark[self._neighbours(ok)] = True
        return mark[free]

    def _local(self, free: np.ndarray, ok: np.ndarray, util: np.ndarray, m: int) -> np.ndarray:
        """Up to ``m`` picks (positions in ``free``) from the neighbourhood of the best measured
        configurations (a trust region): the free candidates that differ from one of the
        ``incumbents`` best in a single parameter, best utility first."""
        cand = np.flatnonzero(self._near(free, ok))
        if cand.size > m:
            cand = cand[np.argsort(-util[cand], kind="stable")[:m]]
        return cand.astype(np.intp)

    def _stagnant(self) -> bool:
        """True when ``stagnation`` rounds' worth of measurements (``stagnation * batch``)
        were told since the last new best feasible value (never before the first one)."""
        if self.stagnation is None:
            return False
        tr = self.trace()
        if tr.size == 0 or math.isnan(tr[-1]):
            return False
        first = int(np.argmax(tr == tr[-1]))  # the measurement that set the current best
        return tr.size - 1 - first >= self.stagnation * self.batch

    def _far(self, free: np.ndarray, ok: np.ndarray, util: np.ndarray, m: int) -> np.ndarray:
        """Up to ``m`` picks (positions in ``free``) far from the incumbents: candidates that
        differ from each of the ``incumbents`` best measured feasible configurations in at
        least ``stagnation_distance`` of the parameters, chosen greedily by utility with the
        diversity penalty (so they spread over other regions)."""
        if m <= 0:
            return np.zeros(0, dtype=np.intp)
        inc = self._incumbents(ok)
        if inc.size == 0:
            return np.zeros(0, dtype=np.intp)
        F = self.features_[free]
        d = np.full(free.size, F.shape[1])
        for i in inc:
            d = np.minimum(d, (self.features_[int(i)] != F).sum(axis=1))
        need = max(1, math.ceil(self.stagnation_distance * F.shape[1] - 1e-9))
        cand = np.flatnonzero(d >= need)
        if cand.size == 0:
            return np.zeros(0, dtype=np.intp)
        k = min(cand.size, 16 * m)
        if k < cand.size:
            cand = cand[np.argpartition(-util[cand], k - 1)[:k]]
        cand = cand[np.argsort(-util[cand], kind="stable")]
        seen = self.features_[np.flatnonzero((self._state == _OK) | (self._state == _FAILED))]
        Fc = F[cand]
        sim0 = np.zeros(cand.size)
        for r in seen:  # novelty: the largest share of values equal to a measured row
            sim0 = np.maximum(sim0, (Fc == r).mean(axis=1))
        return self._diverse(free, cand, util, m, sim0=sim0)

    def _diverse(
        self,
        free: np.ndarray,
        top: np.ndarray,
        util: np.ndarray,
        m: int,
        member_u: Sequence[np.ndarray] = (),
        sim0: np.ndarray | None = None,
    ) -> np.ndarray:
        """Greedy batch from the short list: utility minus ``diversity`` x the largest share of
        parameter values equal to a configuration already chosen. With ensemble members
        (``member_u``, their utilities), the t-th pick maximises member ``t mod members``'s
        utility instead of the mean's (a Thompson-like draw of the model uncertainty)."""
        if m <= 0 or top.size == 0:
            return np.zeros(0, dtype=np.intp)
        F = self.features_[free[top]]
        us = [mu[top].astype(np.float64) for mu in member_u] or [util[top].astype(np.float64)]
        sim = np.zeros(top.size) if sim0 is None else sim0.astype(np.float64)
        chosen: list[int] = []
        avail = np.ones(top.size, dtype=bool)
        for t in range(min(m, top.size)):
            adj = np.where(avail, us[t % len(us)] - self.diversity * sim, -np.inf)
            j = int(np.argmax(adj))
            chosen.append(j)
            avail[j] = False
            sim = np.maximum(sim, (F[j] == F).mean(axis=1))
        return top[np.asarray(chosen, dtype=np.intp)]

    def _precheck_rerank(
        self,
        free: np.ndarray,
        top: np.ndarray,
        util: np.ndarray,
        score: np.ndarray,
        logp: np.ndarray,
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the precheck on the short list; failures are recorded (validity labels) and
        dropped; with enough hidden features measured, a second model re-ranks the list."""
        assert self.precheck is not None
        keep = []
        for j in top:
            i = int(free[j])
            if i not in self._hidden:
                try:
                    out = self.precheck(self.config(i))
                except Exception as e:  # a failing precheck is a validity label
                    out, err = None, f"{type(e).__name__}: {e}"
                else:
                    err = "precheck returned no features"
                if out is None or out is False or not isinstance(out, Mapping):
                    rec = self._record(i, "failed", {}, err, "precheck", self.round_ - 1)
                    self._write(rec)
                    self._apply(i, rec)
                    continue
                self._set_hidden(i, out)
            keep.append(j)
        top = np.asarray(keep, dtype=np.intp)
        ok = np.array([i for i in np.flatnonzero(self._state == _OK) if i in self._hidden])
        if top.size and ok.size >= max(self.n_init, 4) and self._hidden_names:
            H = np.stack([self._hidden[int(i)] for i in ok])
            Xb = np.hstack([self.features_[ok], H])
            mb = self._fit_rank(self.performance, Xb, self._targets(ok), seed)
            Ht = np.stack([self._hidden[int(free[j])] for j in top])
            sb = self._z(mb._ec_sign * mb.predict(np.hstack([self.features_[free[top]], Ht])))
            util = util.copy()
            util[top] = 0.5 * (self._z(score[top]) + sb) + self.validity_weight * logp[top]
            top = top[np.argsort(-util[top], kind="stable")]
        return top, util

    # ---- run -------------------------------------------------------------------------------

    def run(
        self,
        measure: Callable[[dict[str, Any]], Any],
        *,
        callback: Callable[[Tuner], None] | None = None,
    ) -> Tuner:
        """Ask, measure and tell in rounds of ``batch`` until the budget or the space is spent.

        ``measure(config)`` returns a result (see :meth:`tell`); an exception it raises is a
        failed measurement (recorded with its message), not the end of the run. ``callback``
        is called with the tuner after each round. Returns self.
        """
        if not callable(measure):
            raise ValueError("measure: expected a callable (config -> result)")
        while not self.done:
            configs = self.ask(self.batch)
            if not configs:
                break
            results: list[Any] = []
            for c in configs:
                try:
                    results.append(measure(dict(c)))
                except Exception as e:  # a failing configuration is a result
                    results.append(e)
            self.tell(configs, results)
            if callback is not None:
                callback(self)
        return self

    def __repr__(self) -> str:
        best = "none" if self.best_index_ is None else f"{self.best_value_:.6g}"
        return (
            f"Tuner({self.n_configs} configurations, objective={self.objective!r} "
            f"({self.direction}), measured {self.n_measured}/{self.budget}, "
            f"failed {self.n_failed}, best {best})"
        )
