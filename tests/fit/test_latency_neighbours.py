"""NeighbourResiduals: a model's log residuals carried from measured configurations (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

from energycore.fit.latency import LOO_ALPHAS, NeighbourResiduals


def _rows(batch: list[float], tp: list[float], **extra: list[float]) -> dict[str, np.ndarray]:
    n = len(batch)
    out = {
        "tp": np.asarray(tp, dtype=float),
        "pp": np.ones(n),
        "batch": np.asarray(batch, dtype=float),
        "input_len": np.zeros(n),
        "output_len": np.full(n, 100.0),
    }
    out.update({k: np.asarray(v, dtype=float) for k, v in extra.items()})
    return out


def _fit(r: list[float], X: dict[str, np.ndarray], **kw: object) -> NeighbourResiduals:
    predicted = np.full(len(r), 2.0)
    return NeighbourResiduals(**kw).fit(X, predicted * np.exp(r), predicted)  # type: ignore[arg-type]


def test_interpolates_in_log_batch_within_a_cell_and_holds_beyond() -> None:
    X = _rows([8, 32, 8], [1, 1, 2])
    m = _fit([0.1, 0.3, -0.2], X)
    q = _rows([16, 8, 32, 4, 64, 8, 100], [1, 1, 1, 1, 1, 2, 4])
    # 16 is halfway between 8 and 32 in log batch; the ends are held; the tp=2 cell has one
    # row (held everywhere); a cell without rows gets 0
    np.testing.assert_allclose(m.log_residual(q), [0.2, 0.1, 0.3, 0.1, 0.3, -0.2, 0.0])
    np.testing.assert_allclose(m.factor(q), np.exp(m.log_residual(q)))
    assert m.n_cells_ == 2 and m.alpha_ == 1.0


def test_reproduces_the_measured_rows_at_alpha_1() -> None:
    rng = np.random.default_rng(0)
    X = _rows([8, 16, 64, 8, 32], [1, 1, 1, 2, 2])
    y = rng.uniform(1.0, 3.0, 5)
    p = rng.uniform(1.0, 3.0, 5)
    m = NeighbourResiduals().fit(X, y, p)
    np.testing.assert_allclose(p * m.factor(X), y)
    half = NeighbourResiduals(alpha=0.5).fit(X, y, p)
    np.testing.assert_allclose(half.factor(X), np.sqrt(y / p))


def test_gpus_and_by_columns_separate_cells() -> None:
    # same tp and pp, different n_gpus (expert parallel): two cells
    X = _rows([8, 8], [1, 1], n_gpus=[4, 8])
    m = _fit([0.1, -0.1], X)
    np.testing.assert_allclose(m.log_residual(_rows([16, 16], [1, 1], n_gpus=[4, 8])), [0.1, -0.1])
    # output_len separates cells only when asked
    X = _rows([8, 8], [1, 1])
    X["output_len"] = np.array([100.0, 1000.0])
    q = _rows([8], [1])
    q["output_len"] = np.array([1000.0])
    assert _fit([0.1, -0.1], X, by=("output_len",)).log_residual(q)[0] == pytest.approx(-0.1)
    # without by=, both rows share the cell at the same batch: np.interp takes one of them
    assert _fit([0.1, -0.1], X).log_residual(q)[0] in (pytest.approx(0.1), pytest.approx(-0.1))


def test_loo_chooses_the_factor_from_the_measured_rows() -> None:
    b = [8, 16, 32, 64, 128, 256]
    X = _rows(b, [1] * 6)
    smooth = list(0.05 * np.log(np.asarray(b, dtype=float)))  # linear in log b
    assert _fit(smooth, X, alpha="loo").alpha_ == 1.0
    alternating = [0.1, -0.1, 0.1, -0.1, 0.1, -0.1]  # each row's neighbours mislead
    assert _fit(alternating, X, alpha="loo").alpha_ == 0.0
    assert set(LOO_ALPHAS) >= {0.0, 1.0}


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": "cv"}, "alpha"),
        ({"alpha": True}, "alpha"),
        ({"by": ("batch",)}, "by: 'batch'"),
    ],
)
def test_bad_parameters_raise(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _fit([0.0, 0.1], _rows([8, 16], [1, 1]), **kw)


def test_bad_input_raises_naming_the_column() -> None:
    X = _rows([8, 16], [1, 1])
    with pytest.raises(ValueError, match="measured"):
        NeighbourResiduals().fit(X, [1.0, -1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="predicted"):
        NeighbourResiduals().fit(X, [1.0, 1.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="predicted"):
        NeighbourResiduals().fit(X, [1.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="batch"):
        NeighbourResiduals().fit(_rows([8, 0], [1, 1]), [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        NeighbourResiduals().factor(X)


def test_repr() -> None:
    m = NeighbourResiduals(alpha="loo", by=("output_len",))
    assert "not fitted" in repr(m)
    _fit_m = m.fit(_rows([8, 16], [1, 1]), [1.0, 2.0], [1.0, 1.0])
    assert "2 rows in 1 cells" in repr(_fit_m)
