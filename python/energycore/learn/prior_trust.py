"""How far to trust a transferred prior: evidence from the target's own measurements.

A tuner warm-started from other GPUs (``Tuner(..., prior=...)``) blends the prior's score with
its own models'. A fixed schedule (the prior weighs as much as ``prior_rows`` target rows) is
right when the sources agree with the target and wrong when they agree on a region that is not
the target's best: the tuner then stays there for as long as the schedule says. This module
measures, on the target rows measured so far, whether the prior ranks them as well as a model
of the target alone would:

1. :func:`oof_goodness`: out-of-fold predictions of small trees fitted on the target rows only
   (each row predicted by a model that has not seen it), so the target model is judged on rows
   it did not train on;
2. :func:`top_weighted_loss`: a pairwise ranking loss focused on the top: every pair of
   measured rows whose order a score gets wrong costs ``1 / (1 + r)``, ``r`` the position of
   the better row among the measured ones (0 = the measured best; pairs whose better row is
   not among the 64 best measured are left out, which bounds the cost). A prior that ranks the
   measured best below many worse rows (the incumbent lies where the prior ranks low) pays in
   full; misordering two poor rows costs little;
3. :func:`prior_trust`: the share of bootstrap resamples of the measured rows on which the
   prior's loss is at most the target model's (ties count half; RGPE's weighting of a
   source against the target model, Feurer et al. 2018). Few rows -> no evidence -> trust 1.

The tuner multiplies the prior's weight ``prior_rows / (n + prior_rows)`` (the user's cap) by
the trust, so a prior the target contradicts loses its weight within a round or two, and a
prior the target confirms keeps it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["oof_goodness", "prior_trust", "top_weighted_loss"]

MIN_ROWS = 8  # target rows below which there is no evidence (trust 1)
TOP = 64  # pairs count only when their better row is among the measured TOP best


def _check_pair(a: np.ndarray, g: np.ndarray, what: str) -> None:
    if a.ndim != 1 or a.shape != g.shape:
        raise ValueError(f"{what}: expected one score per measured row ({g.size}), got {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(g).all()):
        raise ValueError(f"{what}: scores and goodness must be finite")


def _top_rows(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the TOP best rows, best first; their positions 0, 1, ...)."""
    order = np.argsort(-g, kind="stable")[:TOP]
    return order, np.arange(order.size, dtype=np.float64)


def _pair_tables(s: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights W, misordered M), rows = the TOP best rows, columns = every row:
    W[a, j] = 1 / (1 + a) where the a-th best row is better than row j, else 0;
    M[a, j] = 1 where s orders that pair wrongly, 0.5 for a tie of s."""
    top, rank = _top_rows(g)
    better = g[top][:, None] > g[None, :]
    W = np.where(better, 1.0 / (1.0 + rank[:, None]), 0.0)
    st = s[top][:, None]
    M = np.where(st < s[None, :], 1.0, np.where(st == s[None, :], 0.5, 0.0))
    return W, M


def top_weighted_loss(score: np.ndarray, goodness: np.ndarray) -> float:
    """Top-weighted pairwise ranking loss of ``score`` on rows of known ``goodness``.

    Parameters
    ----------
    score, goodness : (k,) arrays
        A model's score of ``k`` measured rows and their measured goodness (both higher =
        better).

    Returns
    -------
    float in [0, 1]: the weighted share of misordered pairs (0: every pair in the right
    order; 0.5: a constant score); 0 when no pair differs in goodness.
    """
    s = np.asarray(score, dtype=np.float64).ravel()
    g = np.asarray(goodness, dtype=np.float64).ravel()
    _check_pair(s, g, "score")
    W, M = _pair_tables(s, g)
    total = float(W.sum())
    return float((W * M).sum() / total) if total > 0 else 0.0


def prior_trust(
    prior_score: np.ndarray,
    own_score: np.ndarray,
    goodness: np.ndarray,
    *,
    seed: int = 0,
    n_boot: int = 64,
) -> float:
    """Share of bootstrap resamples on which the prior ranks the measured rows at least as well
    as the target's own (out-of-fold) model, by :func:`top_weighted_loss`.

    Parameters
    ----------
    prior_score, own_score, goodness : (k,) arrays
        The prior's and the target model's scores of the ``k`` measured valid rows (the
        target model's out of fold, see :func:`oof_goodness`) and the rows' measured
        goodness; higher = better for all three.
    seed : int
        Seed of the resampling (the same inputs and seed give the same trust).
    n_boot : int
        Bootstrap resamples.

    Returns
    -------
    float in [0, 1]; 1 with fewer than ``MIN_ROWS`` (8) rows (no evidence against the prior).
    """
    p = np.asarray(prior_score, dtype=np.float64).ravel()
    o = np.asarray(own_score, dtype=np.float64).ravel()
    g = np.asarray(goodness, dtype=np.float64).ravel()
    _check_pair(p, g, "prior_score")
    _check_pair(o, g, "own_score")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot: expected a positive integer, got {n_boot!r}")
    k = g.size
    if k < MIN_ROWS:
        return 1.0
    W, Mp = _pair_tables(p, g)
    _, Mo = _pair_tables(o, g)
    rng = np.random.default_rng(seed)
    C = rng.multinomial(k, np.full(k, 1.0 / k), size=int(n_boot)).astype(np.float64)
    # resample b weighs pair (i, j) by C[b, i] * C[b, j]: the losses are quadratic forms, and
    # only the sign of their difference (same normaliser) matters
    # (einsum without BLAS: a small product that threaded BLAS makes slower on a busy machine)
    top, _ = _top_rows(g)
    Ct = C[:, top]
    use = (np.einsum("ba,aj->bj", Ct, W, optimize=False) * C).sum(axis=1) > 0
    if not use.any():
        return 1.0
    D = W * (Mp - Mo)
    diff = (np.einsum("ba,aj->bj", Ct[use], D, optimize=False) * C[use]).sum(axis=1)
    tol = 1e-9 * float(W.sum()) * k * k
    return float(np.mean(np.where(diff < -tol, 1.0, np.where(diff <= tol, 0.5, 0.0))))


def oof_goodness(
    X: np.ndarray, goodness: np.ndarray, *, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold predictions of the goodness of the ``k`` measured rows from the target alone.

    Each fold is predicted by small regression trees (:class:`PerformanceScorer`, 40 trees of
    depth 4) fitted on the other folds; folds are a seeded permutation. Needs ``k >= folds``.
    """
    from energycore.learn.scorers import PerformanceScorer

    A = np.asarray(X, dtype=np.float64)
    g = np.asarray(goodness, dtype=np.float64).ravel()
    if A.ndim != 2 or A.shape[0] != g.size:
        raise ValueError(f"X: expected {g.size} rows of parameters, got shape {A.shape}")
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 2:
        raise ValueError(f"folds: expected an integer >= 2, got {folds!r}")
    if g.size < folds:
        raise ValueError(f"goodness: needs at least folds={folds} rows, got {g.size}")
    rng = np.random.default_rng(seed)
    part = rng.permutation(g.size) % int(folds)
    out = np.empty(g.size)
    for f in range(int(folds)):
        test = part == f
        m = PerformanceScorer(
            "squared_error", n_estimators=40, max_depth=4, learning_rate=0.2,
            min_child_samples=2, random_state=seed + f, n_jobs=1,
        ).fit(A[~test], g[~test])  # fmt: skip
        out[test] = m.predict(A[test])
    return out
