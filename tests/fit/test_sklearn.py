"""scikit-learn conventions of the template models: tags, score as a float, model selection."""

from __future__ import annotations

import numpy as np
import pytest

from energycore import EnergyModel, TtftModel
from tests.helpers import noisy_problem

sklearn = pytest.importorskip("sklearn")


def _frame(seed: int = 0, n: int = 60):
    pd = pytest.importorskip("pandas")
    X, y, _ = noisy_problem(seed, n=n, noise=0.02)
    return pd.DataFrame(X), y


def test_tags_say_regressor():
    from sklearn.base import is_regressor
    from sklearn.utils import get_tags

    assert is_regressor(EnergyModel())
    tags = get_tags(EnergyModel())
    assert tags.estimator_type == "regressor"
    assert tags.target_tags.required and tags.target_tags.positive_only
    assert get_tags(TtftModel()).estimator_type == "regressor"


def test_score_is_r2_as_a_float_and_metrics_keeps_the_dict():
    X, y = _frame()
    m = EnergyModel(n_starts=2).fit(X, y)
    s = m.score(X, y)
    assert isinstance(s, float)
    pred = m.predict(X)
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    assert s == pytest.approx(r2)
    assert 0.9 < s <= 1
    assert m.metrics(X, y)["r2"] == pytest.approx(s)
    assert set(m.metrics(X, y)) == {"mape", "r2", "rmse_log"}
    # weights: all weight on ten rows gives the R^2 over those rows alone
    w = np.zeros(len(y))
    w[:10] = 1.0
    assert m.score(X, y, sample_weight=w) == pytest.approx(m.score(X.iloc[:10], y[:10]))
    with pytest.raises(ValueError, match="sample_weight"):
        m.score(X, y, sample_weight=[1.0])


def test_cross_val_score_and_grid_search():
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

    X, y = _frame(1, n=80)
    scores = cross_val_score(
        EnergyModel(n_starts=2), X, y, cv=KFold(3, shuffle=True, random_state=0)
    )
    assert scores.shape == (3,) and np.all(scores > 0.5)
    gs = GridSearchCV(
        EnergyModel(n_starts=2), {"loss": ["linear", "soft_l1"]}, cv=KFold(3), error_score="raise"
    ).fit(X, y)
    assert gs.best_params_["loss"] in ("linear", "soft_l1")
    assert isinstance(gs.best_estimator_, EnergyModel) and hasattr(gs.best_estimator_, "coef_")
