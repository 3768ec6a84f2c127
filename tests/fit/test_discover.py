"""Structure discovery (energycore.discover): recovery, constraints, determinism, inputs, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import energycore
from energycore import ConfigSpace, discover
from energycore.fit.discover import Constraints, DiscoveredModel, Term, default_terms
from tests.helpers import planted_data

FORM = ["batch*input_len", "batch*output_len*tp^-1", "n_gpus*output_len", "1"]


@pytest.fixture(scope="module")
def planted():
    X, y, coef = planted_data(FORM, n=200, noise=0.02, seed=3)
    return X, y, coef, discover(X, y, max_terms=8, seed=0)


# ----------------------------------------------------------------------------- terms
def test_term_parse_print_and_units():
    t = Term.parse("batch * output_len / tp")
    assert t == Term.of({"batch": 1, "output_len": 1, "tp": -1})
    assert str(t) == "batch*output_len*tp^-1"
    assert Term.parse(str(t)) == t
    assert Term.parse("1") == Term() and str(Term()) == "1"
    assert Term.parse("batch^0.5*(tp-1)").exponent("batch") == 0.5
    assert str(Term.parse("output_len*tp-1")) == "output_len*(tp-1)"
    assert (
        Term.parse("batch*input_len*output_len").unit(
            "J", {"batch": "seq", "input_len": "tok", "output_len": "tok"}
        )
        == "J/(seq·tok^2)"
    )
    assert t.unit("J", {"batch": "seq", "output_len": "tok", "tp": "GPU"}) == "J·GPU/(seq·tok)"
    assert t.phase() == "decode" and Term.parse("batch*input_len").phase() == "prefill"
    with pytest.raises(ValueError, match="terms"):
        Term.parse("batch^x")
    with pytest.raises(ValueError, match="terms"):
        Term.parse("")


def test_default_library_has_forty_independent_terms():
    lib = default_terms()
    assert len(lib) == 40 and len(set(lib)) == 40
    # no plain tp or pp factor (x*tp = x + x*(tp-1) would make the library dependent)
    assert not any(v in ("tp", "pp") and e > 0 for t in lib for v, e in t.factors)


# ----------------------------------------------------------------------------- recovery
def test_recovers_a_planted_form(planted):
    _, _, coef, d = planted
    assert {str(t) for t in d.best.terms} == {str(Term.parse(t)) for t in FORM}
    got = dict(zip(map(str, d.best.terms), d.best.coef_))
    for t, c in zip(FORM, coef):
        assert got[str(Term.parse(t))] == pytest.approx(c, rel=0.1)
    assert d.best.cv_error_ < 0.03
    # the front: CV error falls with the number of terms, fewest first
    sizes = [m.n_terms for m in d.front]
    errs = [m.cv_error_ for m in d.front]
    assert sizes == sorted(sizes) and errs == sorted(errs, reverse=True)
    assert d.best in d.front


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_recovers_random_forms(seed):
    rng = np.random.default_rng(seed)
    lib = default_terms()
    form = [str(lib[i]) for i in rng.choice(len(lib), int(rng.integers(3, 7)), replace=False)]
    X, y, _ = planted_data(form, n=200, noise=0.02, seed=seed)
    d = discover(X, y, max_terms=8, seed=seed)
    assert {str(t) for t in d.best.terms} == set(form)


def test_free_exponent_is_fitted_by_lm():
    X, y, _ = planted_data(["batch^0.7*output_len", "batch*input_len"], noise=0.01, seed=4)
    d = discover(X, y, terms=["batch*output_len", "batch*input_len", "1"], free_exponents=["batch"])
    m = next(m for m in d.front if m.n_terms == 2)
    ex = {str(Term.of([(v, 1.0) for v, _ in t.factors])): t.exponent("batch") for t in m.terms}
    assert ex["batch*output_len"] == pytest.approx(0.7, abs=0.03)
    assert m.score(X, y)["rmse_log"] < 0.02


def test_deterministic_for_a_seed(planted):
    X, y, _, d = planted
    d2 = discover(X, y, max_terms=8, seed=0)
    assert d2.path == d.path
    np.testing.assert_array_equal(d2.best.coef_, d.best.coef_)
    d3 = discover(X, y, max_terms=8, seed=1)  # other folds: other CV figures
    assert [r["cv_error"] for r in d3.path] != [r["cv_error"] for r in d.path]


# ----------------------------------------------------------------------------- constraints
def test_monotone_batch_keeps_energy_per_request_non_increasing():
    # truth has a batch^2 term (energy per request grows with batch): forbidden under the constraint
    X, y, _ = planted_data(["batch^2*output_len", "output_len*n_gpus"], seed=5)
    terms = ["batch^2*output_len", "batch*output_len", "output_len*n_gpus", "1"]
    free = discover(X, y, terms=terms)
    assert "batch^2*output_len" in map(str, free.best.terms)
    d = discover(X, y, terms=terms, constraints={"monotone_batch": True},
                 free_exponents=["batch"])  # fmt: skip
    assert "batch^2*output_len" in d.dropped
    for m in d.front:
        assert all(t.exponent("batch") <= 1 + 1e-12 for t in m.terms)
        assert (m.coef_ >= 0).all()
    grid = {"tp": np.full(8, 2.0), "pp": np.ones(8), "batch": 2.0 ** np.arange(8),
            "input_len": np.full(8, 512.0), "output_len": np.full(8, 256.0)}  # fmt: skip
    assert (np.diff(d.best.predict_per_request(grid)) <= 1e-12).all()


def test_exponent_bounds_require_and_exclude_combine(planted):
    X, y, _, _ = planted
    c = Constraints(exponent_bounds={"tp": (0, None)}, require=("pp",), exclude=("input_len",))
    d = discover(X, y, max_terms=6, constraints=c)
    for m in d.front:
        assert "pp-1" in m.variables or "n_gpus" in m.variables or "pp" in m.variables
        assert "input_len" not in m.variables
        assert all(t.exponent("tp") >= 0 for t in m.terms)
    with pytest.raises(ValueError, match="required variable 'nope'"):
        discover(X, y, constraints={"require": ["nope"]}, terms=["batch", "1"])
    with pytest.raises(ValueError, match="unknown key 'monotone'"):
        discover(X, y, constraints={"monotone": True})


def test_non_negative_phases(planted):
    X, _, _, d = planted
    ph = d.best.predict_phases(X)
    assert all((v >= 0).all() for v in ph.values())
    np.testing.assert_allclose(sum(ph.values()), d.best.predict(X), rtol=1e-12)


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs(planted):
    X, y, _, _ = planted
    bad = dict(X)
    bad["batch"] = X["batch"].copy()
    bad["batch"][5] = np.nan
    with pytest.raises(ValueError, match=r"'batch' has a non-finite value.* at row 5"):
        discover(bad, y)
    yb = y.copy()
    yb[2] = -1
    with pytest.raises(ValueError, match="y: must be positive"):
        discover(X, yb)
    with pytest.raises(ValueError, match="y: non-finite"):
        discover(X, np.where(np.arange(len(y)) == 1, np.inf, y))
    few = {k: v[:6] for k, v in X.items()}
    with pytest.raises(ValueError, match="needs at least 10 rows"):
        discover(few, y[:6])
    with pytest.raises(ValueError, match="has 5 values"):
        discover(X, y[:5])
    with pytest.raises(ValueError, match="missing column 'output_len'"):
        discover({k: v for k, v in X.items() if k != "output_len"}, y, terms=["output_len"])
    for kw, msg in (({"max_terms": 0}, "max_terms"), ({"cv": 1}, "cv"), ({"terms": "x"}, "terms"),
                    ({"terms": []}, "terms"), ({"beam": 0}, "beam")):  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            discover(X, y, **kw)


def test_constant_columns_are_dropped(planted):
    X, y, _, _ = planted
    Xc = dict(X)
    Xc["pp"] = np.ones_like(X["pp"])  # pp-1 all zero, n_gpus == tp
    d = discover(Xc, y, max_terms=5)
    assert d.dropped["(pp-1)"] == "zero column"
    assert not any("pp-1" in t.variables for t in d.candidates)
    d = discover(Xc, y, terms=["batch*input_len", "batch*input_len*pp", "n_gpus*output_len", "1"])
    assert d.dropped["batch*input_len*pp"] == "same column as batch*input_len on this data"
    assert d.best.n_terms <= 3


# ----------------------------------------------------------------------------- the model
def test_save_load_round_trip(planted, tmp_path):
    X, _, _, d = planted
    m = d.best
    p = tmp_path / "m.json"
    m.save(p)
    m2 = DiscoveredModel.load(p)
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))
    lo, hi = m2.predict_interval(X)
    lo0, hi0 = m.predict_interval(X)
    np.testing.assert_allclose(lo, lo0) and np.testing.assert_allclose(hi, hi0)
    assert m2.formula() == m.formula() and m2.cv_error_ == m.cv_error_
    doc = json.loads(p.read_text())
    doc["format_version"] = 99
    with pytest.raises(ValueError, match="model file"):
        DiscoveredModel.from_dict(doc)
    doc["format_version"] = 1
    del doc["coef"]
    with pytest.raises(ValueError, match="malformed"):
        DiscoveredModel.from_dict(doc)
    with pytest.raises(ValueError, match="non-negative"):
        DiscoveredModel(["batch"], [-1.0])


def test_interval_covers_and_formula(planted):
    X, y, _, d = planted
    lo, hi = d.best.predict_interval(X, 0.95)
    inside = np.mean((y >= lo) & (y <= hi))
    assert 0.85 <= inside <= 1.0
    with pytest.raises(ValueError, match="level"):
        d.best.predict_interval(X, 1.5)
    text = d.best.formula()
    assert text.startswith("energy_j = ") and "batch*input_len" in text
    assert d.best.formula(latex=True).startswith(r"\hat{E} = ")
    rows = d.best.coefficients()
    assert {r["term"] for r in rows} == {str(t) for t in d.best.terms}
    assert next(r for r in rows if r["term"] == "batch*input_len")["unit"] == "J/(seq·tok)"
    assert "| terms |" in d.table()


def test_use_in_configspace(planted):
    _, _, _, d = planted
    space = ConfigSpace(
        {"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": [1, 4, 16, 64]},
        fixed={"input_len": 512, "output_len": 256},
        derived={"e_disc": d.best.to_expression()},
    )
    by_expr = space.argmin("e_disc")
    by_scorer = space.argmin("e", scorers={"e": d.best})
    assert by_expr.index == by_scorer.index
    assert by_expr.value == pytest.approx(by_scorer.value, rel=1e-9)
    frame = space.to_frame(as_frame=False)
    pred = d.best.predict(frame)
    np.testing.assert_allclose(frame["e_disc"], pred, rtol=1e-9)
    assert by_expr.index == frame["index"][int(np.argmin(pred))]


def test_public_name():
    assert energycore.discover is discover
    assert not math.isnan(default_terms()[0].exponent("batch") or 0.0)


def test_refit_keeps_the_structure(planted):
    X, y, _, d = planted
    sub = {k: v[:40] for k, v in X.items()}
    m = d.best.refit(sub, y[:40] * 2.0)
    assert m.terms == d.best.terms
    np.testing.assert_allclose(m.coef_, 2.0 * d.best.coef_, rtol=0.15)
    assert math.isnan(m.cv_error_) and m.score(sub, y[:40] * 2)["rmse_log"] < 0.03
    with pytest.raises(ValueError, match="at least 4 rows"):
        d.best.refit({k: v[:3] for k, v in X.items()}, y[:3])


def test_discovery_refit_picks_a_front_structure_the_new_rows_support(planted):
    X, y, _, d = planted
    few = {k: v[:50] for k, v in X.items()}
    m = d.refit(few, y[:50] * 3.0, cv=5, seed=1)
    fronts = {m2.terms for m2 in d.front}
    assert m.terms in fronts
    assert math.isfinite(m.cv_error_) and m.score(few, y[:50] * 3.0)["rmse_log"] < 0.05
    # deterministic for a seed; the lowest-CV pick is never smaller than the one-SE pick
    assert d.refit(few, y[:50] * 3.0, cv=5, seed=1).terms == m.terms
    low = d.refit(few, y[:50] * 3.0, cv=5, seed=1, one_se=False)
    assert low.n_terms >= m.n_terms and low.cv_error_ <= m.cv_error_
    # the CV error is the one of refits on held-out folds: a structure too small shows it
    assert d.front[0].n_terms == 1
    one = d.refit(few, y[:50], cv=5, seed=1, one_se=False)
    assert one.cv_error_ < d.front[0].refit(few, y[:50]).score(few, y[:50])["rmse_log"]
    with pytest.raises(ValueError, match="cv: must be an integer >= 2"):
        d.refit(few, y[:50], cv=1)
    with pytest.raises(ValueError, match="at least 10 rows"):
        d.refit({k: v[:6] for k, v in X.items()}, y[:6])
