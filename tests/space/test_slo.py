"""Serving SLOs in ConfigSpace queries and the Selector, checked against brute-force filters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from energycore.fit.energy import EnergyModel, TpotModel, TtftModel
from energycore.fit.provenance import RESID_PERCENTILES
from energycore.space import SLO, ConfigSpace, Selector
from energycore.space.slo import slo_parts, sustained_rate
from tests.helpers import SPACE, template_data

IL, OL = 512.0, 128.0


def _noisy_models(seed: int, scale: float = 1.0) -> list[Any]:
    X, y = template_data(scale, 0)
    rng = np.random.default_rng(seed)
    noise = {k: np.exp(rng.normal(0.0, 0.15, len(v))) for k, v in y.items()}
    return [
        EnergyModel(n_threads=1, template="energy_v1").fit(X, y["energy_v1"] * noise["energy_v1"]),
        TtftModel(n_threads=1).fit(X, y["ttft_v1"] * noise["ttft_v1"]),
        TpotModel(n_threads=1).fit(X, y["tpot_v1"] * noise["tpot_v1"]),
    ]


@pytest.fixture(scope="module")
def models() -> list[Any]:
    return _noisy_models(1)


@pytest.fixture(scope="module")
def space() -> ConfigSpace:
    axes = {k: v for k, v in SPACE.items() if k != "gpu"}
    return ConfigSpace(axes, constraints=["tp * pp <= 8"])


@pytest.fixture(scope="module")
def table(space: ConfigSpace, models: list[Any]) -> dict[str, np.ndarray]:
    return space.to_frame(None, models=models, as_frame=False, input_len=IL, output_len=OL)


def _factor(model: Any, p: float | None) -> float:
    return 1.0 if p is None else math.exp(model.resid_quantiles_[p])


def _mask(t: dict[str, np.ndarray], models: list[Any], slo: SLO) -> np.ndarray:
    """The brute-force filter: the SLO applied row by row to the enumerated table."""
    ok = np.ones(len(t["index"]), dtype=bool)
    ft, fp = _factor(models[1], slo.percentile), _factor(models[2], slo.percentile)
    if slo.ttft_s is not None:
        ok &= t["ttft_s"] * ft <= slo.ttft_s
    for lim in (slo.tpot_s, slo.itl_s):
        if lim is not None:
            ok &= t["tpot_s"] * fp <= lim
    if slo.request_rate is not None:
        reps = 1 if slo.gpus is None else np.floor(slo.gpus / (t["tp"] * t["pp"]))
        ok &= t["batch"] * reps / t["latency_s"] >= slo.request_rate
    return ok


def _cases(t: dict[str, np.ndarray]) -> list[SLO]:
    ttft = float(np.median(t["ttft_s"]))
    tpot = float(np.median(t["tpot_s"]))
    rate = float(np.median(t["batch"] / t["latency_s"]))
    return [
        SLO(ttft_s=ttft),
        SLO(tpot_s=tpot),
        SLO(itl_s=tpot),
        SLO(ttft_s=ttft, percentile=90),
        SLO(tpot_s=tpot, percentile=99),
        SLO(itl_s=tpot * 1.2, percentile=50),
        SLO(request_rate=rate),
        SLO(request_rate=rate * 3, gpus=8),
        SLO(ttft_s=ttft * 2, tpot_s=tpot * 1.5, percentile=95, request_rate=rate / 2, gpus=8),
        SLO(ttft_s=ttft, tpot_s=tpot * 2, itl_s=tpot),
    ]


def test_every_limit_alone_and_combined_matches_a_brute_force_filter(
    space: ConfigSpace, models: list[Any], table: dict[str, np.ndarray]
) -> None:
    for slo in _cases(table):
        mask = _mask(table, models, slo)
        assert 0 < mask.sum() < len(mask), slo  # each case keeps some and drops some
        kw: dict[str, Any] = {"models": models, "input_len": IL, "output_len": OL, "slo": slo}
        assert space.count_valid(**kw) == mask.sum(), slo
        got = space.top_k("energy_per_request_j", 10_000, as_frame=False, **kw)
        assert sorted(got["index"].tolist()) == table["index"][mask].tolist(), slo
        kept = space.to_frame(None, as_frame=False, **kw)
        assert kept["index"].tolist() == table["index"][mask].tolist(), slo
        sel = space.argmin("energy_per_request_j", **kw)
        e = np.where(mask, table["energy_per_request_j"], np.inf)
        assert sel.feasible and sel.index == int(table["index"][int(np.argmin(e))]), slo
        assert sel.n_feasible == mask.sum()


def test_slo_as_a_mapping_and_with_other_limits(
    space: ConfigSpace, models: list[Any], table: dict[str, np.ndarray]
) -> None:
    ttft = float(np.median(table["ttft_s"]))
    lat = float(np.quantile(table["latency_s"], 0.7))
    slo = {"ttft_s": ttft, "percentile": 90}
    mask = _mask(table, models, SLO(**slo)) & (table["latency_s"] <= lat)
    sel = space.argmin(
        "energy_per_request_j", {"latency_s": ("<=", lat)}, models=models, slo=slo,
        input_len=IL, output_len=OL,
    )  # fmt: skip
    e = np.where(mask, table["energy_per_request_j"], np.inf)
    assert sel.index == int(table["index"][int(np.argmin(e))])
    n = space.count_valid("batch >= 8", models=models, slo=slo, input_len=IL, output_len=OL)
    assert n == (_mask(table, models, SLO(**slo)) & (table["batch"] >= 8)).sum()


def test_an_infeasible_ttft_limit_answers_with_the_nearest_point(
    space: ConfigSpace, models: list[Any], table: dict[str, np.ndarray]
) -> None:
    slo = SLO(ttft_s=float(table["ttft_s"].min()) / 10)
    sel = space.argmin("energy_j", models=models, slo=slo, input_len=IL, output_len=OL)
    assert not sel.feasible and sel.n_feasible == 0
    assert sel.nearest_index == int(table["index"][int(np.argmin(table["ttft_s"]))])


def test_percentile_uses_the_stored_residual_quantile(models: list[Any]) -> None:
    X, y = template_data(1.0, 0)
    rng = np.random.default_rng(1)
    for name in ("energy_v1", "ttft_v1", "tpot_v1"):  # the draws of _noisy_models(1)
        noise = np.exp(rng.normal(0.0, 0.15, len(y[name])))
        if name == "ttft_v1":
            measured = y[name] * noise
    ttft = models[1]
    resid = np.log(measured / ttft.predict(X))
    q = ttft.resid_quantiles_
    assert list(q) == list(RESID_PERCENTILES)
    assert q[90.0] == pytest.approx(float(np.quantile(resid, 0.90)), rel=1e-12, abs=1e-15)
    assert q[99.9] == pytest.approx(float(np.quantile(resid, 0.999)), rel=1e-12, abs=1e-15)
    # the SLO moves the limit onto the mean prediction: limit / exp(q90)
    parts = slo_parts(SLO(ttft_s=0.5, percentile=90), models, {"ttft", "tpot", "energy"})
    assert parts.limits == [("ttft_s", "<=", 0.5 / math.exp(q[90.0]))]
    # between stored percentiles: linear interpolation (92.5 is halfway from 92 to 93)
    parts = slo_parts(SLO(ttft_s=0.5, percentile=92.5), models, {"ttft"})
    assert parts.factors["ttft_s"][0] == pytest.approx(math.exp((q[92.0] + q[93.0]) / 2))
    assert q[90.0] > 0 > q[10.0]  # a spread, centred near the prediction


def test_request_rate_formula_by_hand_on_two_configurations(models: list[Any]) -> None:
    space = ConfigSpace({"tp": [1, 2]})
    kw = {"models": models, "batch": 8, "pp": 1, "input_len": IL, "output_len": OL}
    X = {
        "tp": np.array([1.0, 2.0]), "pp": np.ones(2), "batch": np.full(2, 8.0),
        "input_len": np.full(2, IL), "output_len": np.full(2, OL),
    }  # fmt: skip
    latency = models[1].predict(X) + OL * models[2].predict(X)
    # 4 GPUs: tp=1 has 4 replicas, tp=2 has 2; each does 8 requests per batch latency
    rates = [8 * 4 / latency[0], 8 * 2 / latency[1]]
    assert sustained_rate(8, latency[0], 1, 1, gpus=4) == pytest.approx(rates[0])
    assert sustained_rate(8, latency[1], 2, 1, gpus=4) == pytest.approx(rates[1])
    assert sustained_rate(8, latency[0]) == pytest.approx(8 / latency[0])  # one replica
    lo, hi = sorted(rates)
    keep = [r >= (lo + hi) / 2 for r in rates]
    got = space.to_frame(slo=SLO(request_rate=(lo + hi) / 2, gpus=4), as_frame=False, **kw)
    assert got["tp"].tolist() == [tp for tp, k in zip((1, 2), keep) if k]
    assert space.count_valid(slo=SLO(request_rate=lo * 0.999, gpus=4), **kw) == 2
    assert space.count_valid(slo=SLO(request_rate=hi * 1.001, gpus=4), **kw) == 0
    one = space.to_frame(slo=SLO(request_rate=1e-9, gpus=1), as_frame=False, **kw)
    assert one["tp"].tolist() == [1]  # tp=2 does not fit one GPU: no replica, rate 0


def test_selector_best_with_an_slo_equals_argmin(
    space: ConfigSpace, models: list[Any], table: dict[str, np.ndarray]
) -> None:
    sel = Selector(space, models=models)
    for slo in _cases(table):
        for il, ol in ((IL, OL), (100.0, 700.0)):
            a = sel.best(il, ol, slo=slo)
            b = space.argmin("energy_per_request_j", models=models, slo=slo,
                             input_len=il, output_len=ol)  # fmt: skip
            assert (a.feasible, a.index, a.nearest_index) == (
                b.feasible,
                b.index,
                b.nearest_index,
            ), slo
    # keyword limits still work next to an slo
    lat = float(np.median(table["latency_s"]))
    a = sel.best(IL, OL, latency_limit_s=lat, slo=SLO(ttft_s=float(np.median(table["ttft_s"]))))
    b = space.argmin(
        "energy_per_request_j", {"latency_s": ("<=", lat)}, models=models,
        slo=SLO(ttft_s=float(np.median(table["ttft_s"]))), input_len=IL, output_len=OL,
    )  # fmt: skip
    assert a.index == b.index


def test_per_gpu_models_with_different_spreads(models: list[Any]) -> None:
    other = _noisy_models(7, scale=1.3)
    space = ConfigSpace(SPACE, constraints=["tp * pp <= 8"])
    keyed = {"H100": models, "A100": other}
    t = space.to_frame(None, models=keyed, as_frame=False, input_len=IL, output_len=OL)
    slo = SLO(ttft_s=float(np.median(t["ttft_s"])), percentile=90)
    f = np.where(t["gpu"] == "H100", _factor(models[1], 90.0), _factor(other[1], 90.0))
    mask = t["ttft_s"] * f <= slo.ttft_s
    kw: dict[str, Any] = {"models": keyed, "input_len": IL, "output_len": OL, "slo": slo}
    assert space.count_valid(**kw) == mask.sum()
    got = space.argmin("energy_per_request_j", **kw)
    e = np.where(mask, t["energy_per_request_j"], np.inf)
    assert got.index == int(t["index"][int(np.argmin(e))])
    sel = Selector(space, models=keyed)
    assert sel.best(IL, OL, slo=slo).index == got.index  # answered by a scan


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttft_s": math.nan}, "slo.ttft_s: must be a finite positive number"),
        ({"tpot_s": math.inf}, "slo.tpot_s: must be a finite positive number"),
        ({"itl_s": 0.0}, "slo.itl_s: must be a finite positive number"),
        ({"request_rate": -1.0}, "slo.request_rate: must be a finite positive number"),
        ({"ttft_s": "1"}, "slo.ttft_s: must be a number"),
        ({"ttft_s": True}, "slo.ttft_s: must be a number"),
        ({"ttft_s": 1.0, "percentile": 100}, r"slo.percentile: must lie in \(0, 100\)"),
        ({"ttft_s": 1.0, "percentile": 0}, "slo.percentile: must be a finite positive"),
        ({"ttft_s": 1.0, "percentile": math.nan}, "slo.percentile"),
        ({"percentile": 90}, "slo.percentile: needs a ttft_s, tpot_s or itl_s"),
        ({"request_rate": 1.0, "gpus": 0}, "slo.gpus: must be a positive integer"),
        ({"request_rate": 1.0, "gpus": 2.5}, "slo.gpus: must be a positive integer"),
        ({"gpus": 8}, "slo.gpus: only counts replicas for a request_rate"),
    ],
)
def test_bad_slo_values_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SLO(**kwargs)


def test_bad_slo_arguments_to_queries(space: ConfigSpace, models: list[Any]) -> None:
    kw: dict[str, Any] = {"input_len": IL, "output_len": OL}
    with pytest.raises(ValueError, match="slo: unknown field 'ttft'"):
        space.count_valid(models=models, slo={"ttft": 1.0}, **kw)
    with pytest.raises(ValueError, match="slo: expected an SLO or a mapping"):
        space.count_valid(models=models, slo=[1.0], **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"slo\.tpot_s: needs a TpotModel"):
        space.count_valid(models=models[:2], slo=SLO(tpot_s=1.0), **kw)
    with pytest.raises(ValueError, match=r"slo\.ttft_s: needs a TtftModel"):
        space.argmin("energy_j", models=models[0], slo=SLO(ttft_s=1.0), **kw)
    with pytest.raises(ValueError, match=r"slo\.request_rate: needs a latency model"):
        space.count_valid(models=[models[0], models[2]], slo=SLO(request_rate=1.0), **kw)
    old = TtftModel.from_dict(
        {**models[1].to_dict(), "fit": {
            k: v for k, v in models[1].to_dict()["fit"].items() if k != "resid_quantiles"}}
    )  # fmt: skip
    assert old.resid_quantiles_ is None
    with pytest.raises(ValueError, match=r"slo\.ttft_s: a percentile limit needs the residual"):
        space.count_valid(models=[old, models[2]], slo=SLO(ttft_s=1.0, percentile=90), **kw)
    # a mean limit on the same model is fine
    assert space.count_valid(models=[old, models[2]], slo=SLO(ttft_s=1.0), **kw) > 0
    sel = Selector(space, models=[models[0], old, models[2]])
    with pytest.raises(ValueError, match="residual"):
        sel.best(IL, OL, slo=SLO(ttft_s=1.0, percentile=99))


def test_slo_repr_and_describe() -> None:
    s = SLO(ttft_s=0.5, tpot_s=0.05, percentile=90, request_rate=20, gpus=8)
    assert repr(s) == "SLO(ttft_s=0.5, tpot_s=0.05, percentile=90.0, request_rate=20.0, gpus=8)"
    assert s.describe() == "p90 TTFT <= 0.5 s, p90 TPOT <= 0.05 s, >= 20 req/s on 8 GPUs"
    assert SLO(itl_s=0.1).describe() == "mean ITL <= 0.1 s"
    assert SLO().empty and SLO().describe() == "no limits"
    assert SLO.make({"ttft_s": 1}) == SLO(ttft_s=1.0)


def test_a_fixed_value_named_slo_still_works() -> None:
    space = ConfigSpace({"tp": [1, 2, 4]}, fixed={"slo": 2.0})
    assert space.count_valid(where="tp <= slo") == 2
    assert space.count_valid(where="tp <= slo", slo=4) == 3
