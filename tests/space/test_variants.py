"""VariantSelector: the best quality whose latency meets a budget with a stated probability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energycore import VariantSelector

TABLE = {
    "model": ["tiny", "small", "medium", "large"],
    "quality": [20.0, 30.0, 38.0, 45.0],
    "latency_s": [0.01, 0.02, 0.05, 0.12],
    "energy_j": [0.5, 1.0, 2.5, 6.0],
}


def test_picks_the_best_quality_that_fits_deterministic():
    vs = VariantSelector(TABLE)
    assert vs.select(0.03, 0.5).name == "small"
    assert vs.select(0.05, 0.5).name == "medium"  # exactly on the budget fits
    assert vs.select(10.0).name == "large"


def test_no_feasible_variant_gives_the_fastest_as_fallback():
    c = VariantSelector(TABLE).select(0.001)
    assert not c.feasible and c.name is None and c.index == -1
    assert math.isnan(c.quality) and c.fallback == "tiny"


def test_ties_in_quality_go_to_the_faster_variant():
    t = dict(TABLE, quality=[20.0, 38.0, 38.0, 45.0])
    assert VariantSelector(t).select(0.1, 0.5).name == "small"


def test_probability_uses_the_lognormal_quantile():
    vs = VariantSelector(TABLE, latency_cv=0.2)
    q = vs.latency_quantile(0.99)
    sigma = math.sqrt(math.log1p(0.04))
    expected = 0.05 * math.exp(2.3263478740408408 * sigma - sigma**2 / 2)
    assert q[2] == pytest.approx(expected, rel=1e-9)
    # a budget just under medium's p99 but over its mean: feasible at p=0.5, not at 0.99
    b = 0.9 * q[2]
    assert vs.select(b, 0.5).name == "medium"
    assert vs.select(b, 0.99).name == "small"


def test_the_stated_probability_holds_in_simulation():
    rng = np.random.default_rng(0)
    vs = VariantSelector(TABLE, latency_cv=0.3)
    c = vs.select(0.07, 0.95)
    sigma = math.sqrt(math.log1p(0.09))
    mu = math.log(TABLE["latency_s"][c.index]) - sigma**2 / 2
    draws = rng.lognormal(mu, sigma, 200_000)
    assert abs(draws.mean() / TABLE["latency_s"][c.index] - 1) < 0.01  # the mean is the table's
    assert (draws <= 0.07).mean() >= 0.95 - 0.003
    assert vs.probability_within(0.07)[c.index] >= 0.95


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 100), st.floats(1e-3, 1.0), st.floats(0, 0.5)),
        min_size=1,
        max_size=10,
    ),
    st.floats(1e-3, 2.0),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_equals_brute_force(rows, budget, p):
    t = {
        "model": [f"v{i}" for i in range(len(rows))],
        "quality": [r[0] for r in rows],
        "latency_s": [r[1] for r in rows],
        "latency_cv": [r[2] for r in rows],
    }
    vs = VariantSelector(t)
    q = vs.latency_quantile(p)
    ok = [i for i in range(len(rows)) if q[i] <= budget]
    c = vs.select(budget, p)
    if not ok:
        assert not c.feasible and q[vs.names.index(c.fallback)] == q.min()
    else:
        best = max(t["quality"][i] for i in ok)
        assert c.feasible and c.quality == best and q[c.index] <= budget


def test_energy_limit():
    vs = VariantSelector(TABLE, energy="energy_j")
    assert vs.select(1.0, 0.5, max_energy_j=3.0).name == "medium"
    assert not vs.select(1.0, 0.5, max_energy_j=0.1).feasible
    with pytest.raises(ValueError, match="no energy column"):
        VariantSelector(TABLE).select(1.0, max_energy_j=3.0)


def test_measured_quantiles_replace_the_model():
    t = dict(TABLE, p99_s=[0.02, 0.03, 0.2, 0.3], p50_s=[0.01, 0.02, 0.05, 0.12])
    vs = VariantSelector(t, quantiles={0.99: "p99_s", 0.5: "p50_s"})
    assert vs.select(0.1, 0.99).name == "small"  # medium's measured p99 is 0.2 s
    assert vs.select(0.1, 0.5).name == "medium"
    q9 = vs.latency_quantile(0.9)
    assert np.all((q9 >= np.array(t["p50_s"])) & (q9 <= np.array(t["p99_s"])))


def test_predictor_hook_used_when_feasible():
    vs = VariantSelector(TABLE, predictor=lambda x: "tiny" if x["easy"] else "large")
    c = vs.select(0.2, 0.5, features={"easy": True})
    assert c.name == "tiny" and c.source == "predictor"
    c = vs.select(0.03, 0.5, features={"easy": False})  # large does not fit: table rule
    assert c.name == "small" and c.source == "table"
    bad = VariantSelector(TABLE, predictor=lambda x: "huge")
    with pytest.raises(ValueError, match="'huge', not a variant"):
        bad.select(0.2, features={})
    with pytest.raises(ValueError, match="no predictor"):
        VariantSelector(TABLE).select(0.2, features={})


def test_frontier_is_what_some_budget_selects():
    t = dict(TABLE, quality=[20.0, 15.0, 38.0, 45.0])  # small is dominated by tiny
    assert VariantSelector(t).frontier(0.5) == ["tiny", "medium", "large"]


def test_rows_and_dataframe_input(tmp_path):
    rows = [dict(zip(TABLE, vals)) for vals in zip(*TABLE.values())]
    assert VariantSelector(rows).select(0.05, 0.5).name == "medium"
    pd = pytest.importorskip("pandas")
    assert VariantSelector(pd.DataFrame(TABLE)).select(0.05, 0.5).name == "medium"
    p = tmp_path / "v.csv"
    pd.DataFrame(TABLE).to_csv(p, index=False)
    assert VariantSelector.from_csv(p).select(0.05, 0.5).name == "medium"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variants": {"model": [], "quality": [], "latency_s": []}}, "empty"),
        ({"variants": []}, "empty"),
        ({"variants": dict(TABLE, model=["a", "a", "b", "c"])}, "'a' appears more than once"),
        ({"variants": dict(TABLE, latency_s=[0.01, -1, 0.05, 0.1])}, "row 1"),
        (
            {"variants": dict(TABLE, quality=[1, math.nan, 2, 3])},
            "quality: column 'quality', row 1",
        ),
        ({"variants": TABLE, "quality": "map"}, "no column 'map'"),
        ({"variants": TABLE, "latency_unit": "h"}, "latency_unit"),
        ({"variants": TABLE, "latency_cv": -0.1}, "latency_cv"),
        ({"variants": [{"model": "a"}, {"quality": 1}]}, "missing in some rows"),
        ({"variants": 5}, "expected a table"),
    ],
)
def test_bad_tables(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VariantSelector(**kwargs)


@pytest.mark.parametrize("budget", [0, -1, math.nan, math.inf, "1", True])
def test_bad_budget(budget):
    with pytest.raises(ValueError, match="budget_s"):
        VariantSelector(TABLE).select(budget)


@pytest.mark.parametrize("p", [0, 1, 1.5, math.nan])
def test_bad_probability(p):
    with pytest.raises(ValueError, match="probability"):
        VariantSelector(TABLE).select(0.1, p)


def test_detection_zoo_table(shared_data):
    path = shared_data / "tf2-detection-zoo" / "detectors.csv"
    if not path.exists():
        pytest.skip("tf2-detection-zoo not in shared/data")
    vs = VariantSelector.from_csv(
        path,
        name="model",
        quality="coco_map",
        latency="speed_ms",
        latency_unit="ms",
        latency_cv=0.1,
    )
    assert len(vs) == 41
    c = vs.select(0.4, 0.99)
    assert c.feasible and c.latency_s <= 0.4
    # the best feasible is the best of every variant whose p99 fits, checked by brute force
    q = vs.latency_quantile(0.99)
    assert c.quality == max(vs.quality[q <= 0.4])
