"""EnergyModel: recovery, robustness, multi-start, intervals, bootstrap, threads, errors."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from energycore import EnergyModel, IdentifiabilityWarning, TpotModel, TtftModel, _core
from energycore.errors import ConvergenceWarning
from tests.helpers import draw_design, draw_theta, energy, noisy_problem, table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
@example(seed=25396)
def test_noiseless_data_are_recovered(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = draw_design(rng, 60)
    theta = draw_theta(rng)
    y = energy(X, theta)
    # 8 starts miss the global basin on about 1 design in 400 (seed 25396: a local minimum at
    # cost 2e-5, found again from 16 starts or from the truth); 16 starts missed none of 400.
    model = EnergyModel(loss="linear", n_starts=16, seed=1).fit(X, y)
    # The fit reproduces the data it saw ...
    assert np.max(np.abs(np.log(model.predict(X) / y))) < 1e-5
    # ... and predicts unseen configurations of the same ranges.
    X_new = draw_design(rng, 200)
    err = np.abs(np.log(model.predict(X_new) / energy(X_new, theta)))
    assert np.median(err) < 1e-3


def test_robust_loss_resists_gross_outliers() -> None:
    rng = np.random.default_rng(7)
    X = draw_design(rng, 80)
    theta = draw_theta(rng)
    y = energy(X, theta) * np.exp(rng.normal(0, 0.01, 80))
    bad = rng.choice(80, 8, replace=False)  # 10 % gross outliers
    y[bad] *= rng.choice([0.2, 5.0], 8)
    X_test = draw_design(rng, 300)
    truth = energy(X_test, theta)

    def error(loss: str) -> float:
        with warnings.catch_warnings():
            # examined: the linear loss on 10 % gross outliers wanders a flat valley of cost
            # ~8 and stops at max_iter, which is now reported (ConvergenceWarning); that fit
            # being poor is the point of the comparison
            if loss == "linear":
                warnings.simplefilter("ignore", ConvergenceWarning)
            m = EnergyModel(loss=loss, f_scale=0.05, outliers=0).fit(X, y)  # the loss alone
        return float(np.median(np.abs(m.predict(X_test) / truth - 1)))

    robust, plain = error("soft_l1"), error("linear")
    assert robust < 0.02
    assert plain > 3 * robust


def test_multi_start_finds_the_optimum_one_start_misses() -> None:
    # A data set (found by search over seeds) where the typical-value start ends in a local
    # minimum: more starts must reach a cost close to the noise level.
    # (The seed was found for energy_v1; multi-start is the same code for every template.)
    X, y, _ = noisy_problem(244, n=50, noise=0.01, template="energy_v1")
    with warnings.catch_warnings():
        # the local minimum may switch the prefill term off, leaving t3/t4 undetermined
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        one = EnergyModel(loss="linear", n_starts=1, template="energy_v1").fit(X, y)
    many = EnergyModel(loss="linear", n_starts=16, template="energy_v1").fit(X, y)
    assert many.fit_result_.cost < 0.2 * one.fit_result_.cost
    assert many.fit_result_.start_index > 0
    assert many.metrics(X, y)["mape"] < 0.02


def test_confidence_and_prediction_intervals_cover() -> None:
    X, y, theta = noisy_problem(11, n=200, noise=0.05)
    m = EnergyModel(loss="linear").fit(X, y)
    lo, hi = m.predict_interval(X, 0.95)
    coverage = np.mean((y >= lo) & (y <= hi))
    assert 0.88 < coverage <= 1.0
    ci = m.confidence_interval(0.99)
    inside = [ci[n][0] <= theta[j] <= ci[n][1] for j, n in enumerate(m.param_names())]
    assert sum(inside) >= 9  # most true coefficients lie in their 99 % intervals


def test_bootstrap_agrees_with_asymptotic_errors_and_is_deterministic() -> None:
    X, y, _ = noisy_problem(5, n=150, noise=0.03)
    m = EnergyModel(loss="linear").fit(X, y)
    b1 = m.bootstrap(X, y, n=200, seed=3)
    b2 = EnergyModel(loss="linear", n_threads=1).fit(X, y).bootstrap(X, y, n=200, seed=3)
    np.testing.assert_array_equal(b1.samples, b2.samples)  # thread count does not matter
    assert b1.n_failed == 0 and b1.samples.shape == (200, 12)
    # For the well-determined decode coefficients the two error estimates agree within 2x.
    for name in ("t6", "t7", "t12"):
        ratio = b1.stderr[name] / m.stderr_[name]
        assert 0.5 < ratio < 2.0, (name, ratio)
    lo, hi = b1.interval(0.9)["t6"]
    assert lo < m.params_["t6"] < hi


def test_phases_sum_to_prediction_and_per_request() -> None:
    X, y, _ = noisy_problem(2)
    m = EnergyModel().fit(X, y)
    ph = m.predict_phases(X)
    assert set(ph) == {"prefill", "decode", "fixed"}
    np.testing.assert_allclose(ph["prefill"] + ph["decode"] + ph["fixed"], m.predict(X), rtol=1e-12)
    np.testing.assert_allclose(m.predict_per_request(X), m.predict(X) / X["batch"])


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    X, y, _ = noisy_problem(3)
    m = EnergyModel(loss="huber", f_scale=0.2, fixed={"t4": 0.1}).fit(X, y)
    m.save(tmp_path / "m.json")
    m2 = EnergyModel.load(tmp_path / "m.json")
    np.testing.assert_array_equal(m2.coef_, m.coef_)
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))
    np.testing.assert_array_equal(list(m2.stderr_.values()), list(m.stderr_.values()))
    np.testing.assert_array_equal(m2.covariance_, m.covariance_)
    assert m2.get_params() == m.get_params() and m2.fit_result_ == m.fit_result_
    assert repr(m2) == repr(m)


def test_version_1_fixture_keeps_loading() -> None:
    m = EnergyModel.load(FIXTURES / "energy_model_v1.json")
    # written before EnergyModel had a `template` parameter: the file's template is kept
    assert m.template_name == "energy_v1" and m.get_params()["template"] == "energy_v1"
    expected = json.loads((FIXTURES / "energy_model_v1_predictions.json").read_text())
    np.testing.assert_allclose(m.predict(expected["X"]), expected["energy_j"], rtol=1e-12)


def test_energy_templates_differ_only_in_the_all_reduce_share() -> None:
    rng = np.random.default_rng(4)
    X = draw_design(rng, 200)
    theta = draw_theta(rng)
    Xt = table(X)
    p1 = _core.template_phases("energy_v1", Xt, theta)
    p2 = _core.template_phases("energy_v2", Xt, theta)
    tp, b = X["tp"].astype(float), X["batch"].astype(float)
    lin, lout = X["input_len"].astype(float), X["output_len"].astype(float)
    # prefill: t5*b*Lin*s(tp); decode: t11*b*Lout*s(tp); s = 1 - 1/tp (v1) or tp - 1 (v2)
    ds = (tp - 1.0) - (1.0 - 1.0 / tp)
    np.testing.assert_allclose(p2[:, 0] - p1[:, 0], theta[4] * b * lin * ds, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(p2[:, 1] - p1[:, 1], theta[10] * b * lout * ds, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(p2[:, 2], p1[:, 2])
    one = tp == 1  # without tensor parallelism the two templates are the same model
    np.testing.assert_allclose(p2[one], p1[one], rtol=1e-15)


@pytest.mark.parametrize("template", ["energy_v1", "energy_v2"])
def test_each_energy_template_fits_its_own_data_and_round_trips(
    tmp_path: Path, template: str
) -> None:
    X, y, _ = noisy_problem(21, n=120, noise=0.0, template=template)
    m = EnergyModel(template=template, loss="linear").fit(X, y)
    assert m.template_name == template
    assert m.metrics(X, y)["mape"] < 1e-6
    m.save(tmp_path / "m.json")
    back = EnergyModel.load(tmp_path / "m.json")
    assert back.template_name == template and back.get_params() == m.get_params()
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    other = "energy_v1" if template == "energy_v2" else "energy_v2"
    wrong = EnergyModel(template=other, loss="linear").fit(X, y)
    assert wrong.metrics(X, y)["mape"] > 100 * m.metrics(X, y)["mape"]


def test_unknown_energy_template_is_a_value_error(tmp_path: Path) -> None:
    X, y, _ = noisy_problem(2, n=40)
    with pytest.raises(ValueError, match="template: unknown energy template 'ttft_v1'"):
        EnergyModel(template="ttft_v1").fit(X, y)
    d = json.loads((FIXTURES / "energy_model_v1.json").read_text())
    d["hyper"]["template"] = "energy_v2"  # disagrees with the file's template
    (tmp_path / "m.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="'template' is 'energy_v1' but hyper-parameters"):
        EnergyModel.load(tmp_path / "m.json")


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: json.dumps({**d, "format_version": 99}), "newer energycore"),
        (lambda d: json.dumps({**d, "format": "other"}), "not an energycore model"),
        (lambda d: json.dumps({**d, "template": "ttft_v1"}), "holds template"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "hyper"}), "malformed"),
        (lambda d: json.dumps({**d, "fit": {**d["fit"], "covariance": [[1.0]]}}), "covariance"),
        (lambda d: json.dumps(d)[: len(json.dumps(d)) // 2], "not valid JSON"),
    ],
)
def test_corrupt_files_raise_value_error(tmp_path: Path, mutate, match: str) -> None:
    d = json.loads((FIXTURES / "energy_model_v1.json").read_text())
    p = tmp_path / "bad.json"
    p.write_text(mutate(d))
    with pytest.raises(ValueError, match=match):
        EnergyModel.load(p)


def _good():
    X, y, _ = noisy_problem(9, n=30)
    return {k: np.asarray(v, dtype=float) for k, v in X.items()}, y


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda X, y: (X, np.where(np.arange(len(y)) == 4, np.nan, y)), r"non-finite .* row 4"),
        (
            lambda X, y: ({**X, "batch": np.where(np.arange(30) == 2, np.inf, X["batch"])}, y),
            "batch.*row 2",
        ),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, 0.0, y)), r"positive.*row 3"),
        (lambda X, y: (X, -y), "energy_j.*positive"),
        (lambda X, y: ({k: v for k, v in X.items() if k != "pp"}, y), "missing column 'pp'"),
        (
            lambda X, y: (
                {
                    **{k: v for k, v in X.items() if k != "input_len"},
                    "input_length": X["input_len"],
                },
                y,
            ),
            "did you mean 'input_length'",
        ),
        (lambda X, y: ({**X, "tp": X["tp"] + 0.5}, y), "'tp' must be an integer"),
        (lambda X, y: ({**X, "pp": X["pp"] * 0}, y), "'pp' must be positive"),
        (lambda X, y: ({**X, "output_len": -X["output_len"]}, y), "non-negative"),
        (lambda X, y: (X, y[:-1]), "has 29 values but X has 30 rows"),
        (lambda X, y: ({**X, "tp": X["tp"][:-1]}, y), "different lengths"),
        (lambda X, y: ({k: v[:0] for k, v in X.items()}, y[:0]), "at least 1 row"),
        (lambda X, y: (np.ones((30, 5)).tolist(), y), "named columns"),
        (lambda X, y: (np.ones((30, 4)), y), r"expected an array of shape \(n, 5\)"),
        (lambda X, y: ({**X, "batch": np.array(["a"] * 30)}, y), "must be numeric"),
    ],
)
def test_bad_input_names_the_problem(change, match: str) -> None:
    X, y = change(*_good())
    with pytest.raises(ValueError, match=match):
        EnergyModel().fit(X, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loss": "l2"}, "unknown loss"),
        ({"f_scale": 0.0}, "f_scale"),
        ({"n_starts": 0}, "n_starts"),
        ({"fixed": {"t99": 1.0}}, "unknown coefficient 't99'"),
        ({"fixed": {"t3": 5.0}}, "outside its bounds"),
        ({"fixed": {"t1": float("nan")}}, "finite"),
    ],
)
def test_bad_hyper_parameters(kwargs, match: str) -> None:
    X, y = _good()
    with pytest.raises(ValueError, match=match):
        EnergyModel(**kwargs).fit(X, y)


def test_bad_x0_and_level() -> None:
    X, y = _good()
    with pytest.raises(ValueError, match="x0: missing"):
        EnergyModel().fit(X, y, x0={"t1": 1.0})
    with pytest.raises(ValueError, match="x0: expected 12"):
        EnergyModel().fit(X, y, x0=[1.0, 2.0])
    m = EnergyModel().fit(X, y)
    with pytest.raises(ValueError, match="level"):
        m.confidence_interval(1.5)
    with pytest.raises(RuntimeError, match="not fitted"):
        EnergyModel().predict(X)


def test_unidentified_coefficients_warn_and_can_be_pinned() -> None:
    X, y = _good()
    X1 = {**X, "tp": np.ones(30), "pp": np.ones(30)}
    with pytest.warns(IdentifiabilityWarning, match="t3, t4, t5, t9, t10, t11") as rec:
        m = EnergyModel(reduce=False).fit(X1, y)
    assert rec[0].filename == __file__  # reported at the caller's line
    assert set(m.unidentified_) == {"t3", "t4", "t5", "t9", "t10", "t11"}
    assert np.isnan(m.stderr_["t3"]) and "unidentified" in repr(m)
    pins = {"t3": 0.0, "t4": 0.1, "t5": 0.0, "t9": 0.0, "t10": 0.1, "t11": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m2 = EnergyModel(fixed=pins, reduce=False).fit(X1, y)
    assert m2.params_["t3"] == 0.0 and "fixed" in repr(m2)


def test_concurrent_fits_match_serial() -> None:
    problems = [noisy_problem(s) for s in range(8)]
    serial = [EnergyModel(n_threads=1).fit(X, y).coef_ for X, y, _ in problems]
    out: list[np.ndarray | None] = [None] * 8

    def work(i: int) -> None:
        X, y, _ = problems[i]
        out[i] = EnergyModel(n_threads=2).fit(X, y).coef_

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, out):
        np.testing.assert_array_equal(a, b)


def test_repr_and_html() -> None:
    assert "not fitted" in repr(EnergyModel())
    X, y, _ = noisy_problem(4)
    m = EnergyModel().fit(X, y)
    text = repr(m)
    for name in EnergyModel.param_names():
        assert f"\n  {name} " in text
    assert "J/token" in text and "stderr" in text
    html = m._repr_html_()
    assert html.count("<tr>") == 13 and "J/GPU" in html


def test_sample_weight_zero_drops_rows() -> None:
    X, y, _ = noisy_problem(6, n=60)
    y2 = y.copy()
    y2[:10] *= 10.0  # corrupt rows that get weight zero
    w = np.ones(60)
    w[:10] = 0.0
    a = EnergyModel(loss="linear").fit({k: v[10:] for k, v in X.items()}, y[10:])
    b = EnergyModel(loss="linear").fit(X, y2, sample_weight=w)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-6)
    with pytest.raises(ValueError, match="sample_weight: must be non-negative"):
        EnergyModel().fit(X, y, sample_weight=-w)


def test_latency_templates_fit_their_own_data() -> None:
    rng = np.random.default_rng(1)
    X = draw_design(rng, 80)
    Xt = table(X)
    a = np.array([2e-5, 1e-10, -0.8, 0.1, 1e-6, 0.02])
    c = np.array([0.01, 2e-5, 1e-9, -0.7, 0.05, 1e-6])
    ttft = _core.template_value("ttft_v1", Xt, a)
    tpot = _core.template_value("tpot_v1", Xt, c)
    assert TtftModel().fit(X, ttft).metrics(X, ttft)["mape"] < 1e-4
    assert TpotModel().fit(X, tpot).metrics(X, tpot)["mape"] < 1e-4


def test_accepts_dataframe_and_structured_array_and_column_name() -> None:
    pd = pytest.importorskip("pandas")
    X, y, _ = noisy_problem(8)
    df = pd.DataFrame(X).assign(energy_j=y, gpu="H100")
    a = EnergyModel().fit(df, "energy_j")
    rec = df.drop(columns="gpu").to_records(index=False)
    b = EnergyModel().fit(rec, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_fit_groups_equals_separate_fits() -> None:
    parts = [noisy_problem(s, n=40) for s in (21, 22, 23)]
    X = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    y = np.concatenate([p[1] for p in parts])
    gpu = np.repeat(np.array(["A100", "H100", "B200"]), 40)
    X["gpu"] = gpu
    models = EnergyModel.fit_groups(X, y, by="gpu", loss="linear")
    assert list(models) == ["A100", "B200", "H100"]
    for label, (Xp, yp, _) in zip(["A100", "H100", "B200"], parts):
        alone = EnergyModel(loss="linear").fit(Xp, yp)
        np.testing.assert_array_equal(models[label].coef_, alone.coef_)
        assert models[label].fit_result_ == alone.fit_result_
    with pytest.raises(ValueError, match=r"group 'x'.*cannot determine"):
        EnergyModel.fit_groups(X, y, by=np.where(np.arange(120) < 3, "x", "y"), reduce=False)
    with pytest.raises(ValueError, match="by: expected one label per row"):
        EnergyModel.fit_groups(X, y, by=["a"])


@pytest.mark.parametrize("name", ["energy_v1", "energy_v2", "ttft_v1", "tpot_v1"])
def test_batched_evaluation_equals_per_row(name: str) -> None:
    # template_value/template_jacobian use the templates' batched paths (power caches);
    # template_phases goes row by row: the two must agree.
    rng = np.random.default_rng(3)
    X = draw_design(rng, 300)
    X["tp"] = rng.choice(
        [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 2048], 300
    )
    Xt = table(X)
    info = _core.template_info(name)["params"]
    theta = np.array(
        [p["typical"] * (1.7 if p["linear"] else 1.0) + (0.0 if p["linear"] else 0.3) for p in info]
    )
    v = _core.template_value(name, Xt, theta)
    np.testing.assert_allclose(v, _core.template_phases(name, Xt, theta).sum(axis=1), rtol=1e-12)
    J = _core.template_jacobian(name, Xt, theta)
    h = 1e-6
    for j in range(len(theta)):
        tp_, tm = theta.copy(), theta.copy()
        step = h * max(abs(theta[j]), 1e-3)
        tp_[j] += step
        tm[j] -= step
        fd = (_core.template_value(name, Xt, tp_) - _core.template_value(name, Xt, tm)) / (2 * step)
        np.testing.assert_allclose(J[:, j], fd, rtol=1e-5, atol=1e-9 * np.abs(v).max())


def test_x0_outside_the_bounds_names_the_coefficient() -> None:
    rng = np.random.default_rng(0)
    X = draw_design(rng, 40)
    y = energy(X, draw_theta(rng))
    with pytest.raises(ValueError, match=r"x0: t1=-1\.0 is not finite or outside \[0\.0, inf\]"):
        EnergyModel().fit(X, y, x0=[-1.0] + [0.1] * 11)
    with pytest.raises(ValueError, match=r"x0: expected 12 coefficients, got shape \(3,\)"):
        EnergyModel().fit(X, y, x0=[0.1, 0.1, 0.1])
