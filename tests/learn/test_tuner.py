"""The Tuner: ask/tell, failures as results, journal and resume (SIGKILL), determinism,
objectives, bad input; CacheReplay reading Kernel Tuner caches (.json, .json.gz)."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from energycore import ConfigSpace, Tuner
from energycore.campaign import read_journal
from energycore.tune import CacheReplay

PARAMS = ["bx", "by", "tile"]


def _space_rows() -> list[dict[str, int]]:
    return [
        {"bx": bx, "by": by, "tile": t}
        for bx in (16, 32, 64, 128, 256)
        for by in (1, 2, 4, 8)
        for t in (1, 2, 3, 4)
    ]


def _time(c: dict[str, int]) -> float:
    """A smooth synthetic kernel time with its optimum at bx=64, by=4, tile=2."""
    return (
        1.0
        + (math.log2(c["bx"]) - 6) ** 2
        + 0.5 * (math.log2(c["by"]) - 2) ** 2
        + (c["tile"] - 2) ** 2
    )


def _measure(c: dict[str, int]) -> dict[str, float]:
    if c["bx"] * c["by"] > 512:  # "too many resources requested"
        return {"status": "RuntimeFailedConfig"}
    t = _time(c)
    return {"time": t, "energy": t * (300 - c["tile"] * 40)}


def _replay() -> CacheReplay:
    rows = _space_rows()
    return CacheReplay(PARAMS, rows, [_measure(c) for c in rows], device_name="fake")


# ---------------------------------------------------------------- ask / tell


def test_ask_tell_finds_the_optimum_and_records_failures() -> None:
    rows = _space_rows()
    t = Tuner(rows, budget=48, batch=8, seed=1)
    seen = set()
    while not t.done:
        configs = t.ask()
        assert configs and len(configs) <= 8
        for c in configs:
            key = tuple(c.values())
            assert key not in seen  # never asked twice
            seen.add(key)
        t.tell(configs, [_measure(c) for c in configs])
    assert t.n_measured == 48 and t.ask() == []
    assert t.best_config_ is not None and t.best_value_ == pytest.approx(
        min(_time(c) for c in rows if c["bx"] * c["by"] <= 512)
    )
    assert t.n_failed == sum(r["status"] == "failed" for r in t.records_) > 0
    tr = t.trace()
    assert tr.shape == (48,) and np.all(np.diff(tr[~np.isnan(tr)]) <= 0)


def test_tuner_beats_random_on_a_smooth_space() -> None:
    rows = _space_rows()
    best = min(_time(c) for c in rows if c["bx"] * c["by"] <= 512)

    def evals_to_best(tuner: Tuner) -> int:
        tr = tuner.run(_measure).trace()
        hit = np.flatnonzero(tr <= best)
        return int(hit[0]) + 1 if hit.size else 10**6

    ours = [evals_to_best(Tuner(rows, budget=60, batch=8, seed=s)) for s in range(5)]
    rand = [evals_to_best(Tuner(rows, budget=60, batch=8, seed=s, n_init=60)) for s in range(5)]
    assert np.median(ours) < np.median(rand)


def test_failures_are_results_not_exceptions() -> None:
    rows = _space_rows()[:6]
    t = Tuner(rows, budget=6, batch=6, seed=0)
    configs = t.ask()
    results = [None, float("nan"), RuntimeError("launch failed"), {"time": "oops"},
               {"status": "CompilationFailedConfig"}, 2.5]  # fmt: skip
    t.tell(configs, results)
    statuses = [r["status"] for r in t.records_]
    assert statuses == ["failed"] * 5 + ["ok"]
    assert "RuntimeError: launch failed" in t.records_[2]["error"]
    assert "not finite" in t.records_[1]["error"]
    assert t.best_value_ == 2.5


def test_run_records_a_measure_that_raises_or_returns_nan() -> None:
    rows = _space_rows()

    def flaky(c: dict[str, int]) -> object:
        if c["tile"] == 3:
            raise ValueError("segfault in kernel")
        if c["tile"] == 4:
            return float("nan")
        return _time(c)

    t = Tuner(rows, budget=40, batch=8, seed=3).run(flaky)
    assert t.n_measured == 40
    errors = [r["error"] for r in t.records_ if r["status"] == "failed"]
    assert any("segfault" in e for e in errors) and any("not finite" in e for e in errors)


def test_validity_model_avoids_failing_region() -> None:
    """Time falls with the thread count up to the resource limit, where launches fail: a
    ranker alone keeps pushing over the edge, the validity model learns the edge."""
    rows = _space_rows()

    def edge(c: dict[str, int]) -> object:
        threads = c["bx"] * c["by"]
        if threads > 512:
            return {"status": "RuntimeFailedConfig"}
        return 10.0 / math.log2(threads) + 0.1 * c["tile"]

    fails = {}
    for validity in ("auto", None):
        fails[validity] = sum(
            Tuner(rows, budget=40, batch=8, seed=s, validity=validity, explore=0.0)
            .run(edge)
            .n_failed
            for s in range(4)
        )
    assert fails["auto"] < fails[None]


def test_determinism_for_a_seed() -> None:
    rows = _space_rows()
    a = Tuner(rows, budget=40, batch=8, seed=7).run(_measure)
    b = Tuner(rows, budget=40, batch=8, seed=7).run(_measure)
    c = Tuner(rows, budget=40, batch=8, seed=8).run(_measure)
    order = [[r["config"] for r in t.records_] for t in (a, b, c)]
    assert order[0] == order[1]
    assert order[0] != order[2]


def test_tell_rejects_unknown_and_repeated_configs() -> None:
    t = Tuner(_space_rows(), budget=10, seed=0)
    c = t.ask(2)
    with pytest.raises(ValueError, match="unknown parameter"):
        t.tell([{**c[0], "bz": 1}], [1.0])
    with pytest.raises(ValueError, match="not in the space"):
        t.tell([{"bx": 17, "by": 1, "tile": 1}], [1.0])
    with pytest.raises(ValueError, match="one per configuration"):
        t.tell(c, [1.0])
    t.tell(c, [1.0, 2.0])
    with pytest.raises(ValueError, match="already told"):
        t.tell(c[:1], [1.0])
    assert t.n_measured == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget": 0}, "budget"),
        ({"batch": 1.5}, "batch"),
        ({"direction": "down"}, "direction"),
        ({"explore": 2.0}, "explore"),
        ({"time_limit": -1.0}, "time_limit"),
        ({"validity": "yes"}, "validity"),
        ({"performance": None}, "performance"),
        ({"objective": ""}, "objective"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Tuner(_space_rows(), **kwargs)


def test_empty_space_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no configurations"):
        Tuner([], budget=5)
    with pytest.raises(ValueError, match="no configurations"):
        Tuner(ConfigSpace({"a": [1, 2]}, constraints=["a > 5"]))
    with pytest.raises(ValueError, match="repeats"):
        Tuner([{"a": 1}, {"a": 1}])


def test_config_space_and_categorical_axes() -> None:
    space = ConfigSpace({"tp": [1, 2, 4], "gpu": ["A100", "H100"], "batch": [1, 2, 4, 8]},
                        constraints=["tp * batch <= 16"])  # fmt: skip
    t = Tuner(space, objective="energy", budget=12, batch=4, seed=0)
    assert t.n_configs == space.count_valid()

    def energy(c: dict) -> dict:
        return {"energy": c["tp"] * 10 + c["batch"] + (5 if c["gpu"] == "A100" else 0)}

    t.run(energy)
    assert t.best_config_ is not None and t.best_config_["gpu"] in ("A100", "H100")
    assert t.categories_ == {"gpu": ["A100", "H100"]}


def test_energy_under_a_time_limit_and_maximize() -> None:
    rows = _space_rows()
    rep = _replay()
    limit = 3.0
    t = Tuner(rep, objective="energy", time_limit=limit, budget=80, batch=8, seed=0).run(rep)
    feasible = [r for r in t.records_ if r["status"] == "ok" and r["result"]["time"] <= limit]
    assert t.best_value_ == min(r["result"]["energy"] for r in feasible)
    assert t.best_config_ is not None and _time(t.best_config_) <= limit
    # a measured configuration faster than the limit but with lower energy does not exist
    low = [r for r in t.records_ if r["status"] == "ok" and r["result"]["energy"] < t.best_value_]
    assert all(r["result"]["time"] > limit for r in low)
    m = Tuner(rows, objective="gflops", direction="maximize", budget=20, batch=5, seed=0)
    m.run(lambda c: {"gflops": 1000.0 / _time(c)})
    assert m.best_value_ == max(r["result"]["gflops"] for r in m.records_)


def test_precheck_features_and_failures() -> None:
    rows = _space_rows()
    calls = []

    def precheck(c: dict) -> dict | None:
        calls.append(c)
        if c["bx"] * c["by"] > 512:
            raise RuntimeError("ptxas: too many resources")
        return {"registers": 32 + 8 * c["tile"]}

    t = Tuner(rows, budget=40, batch=8, seed=0, precheck=precheck).run(_measure)
    pre = [r for r in t.records_ if r["stage"] == "precheck"]
    assert pre and all(r["status"] == "failed" for r in pre)
    assert t.n_measured == 40  # failed prechecks do not use the budget
    measured = [r for r in t.records_ if r["stage"] == "measure" and "features" in r]
    assert measured and all("registers" in r["features"] for r in measured)
    assert calls


# ---------------------------------------------------------------- journal and resume


def test_journal_has_the_campaign_format_and_resumes(tmp_path: Path) -> None:
    rows = _space_rows()
    path = tmp_path / "tune.jsonl"
    with Tuner(rows, budget=16, batch=8, seed=0, journal=path) as t:
        t.run(_measure)
    header, records = read_journal(path)
    assert header is not None and header["plan"] == "tuner" and header["objective"] == "time"
    assert len(records) == 16 and {r["type"] for r in records} == {"result"}
    with Tuner(rows, budget=32, batch=8, seed=0, journal=path) as t2:
        assert t2.n_resumed_ == 16
        told = {r["key"] for r in t2.records_}
        first = t2.ask()
        assert all(json.dumps(c, sort_keys=True, separators=(",", ":")) not in told for c in first)
        t2.tell(first, [_measure(c) for c in first])
        t2.run(_measure)
    _, records = read_journal(path)
    keys = [r["key"] for r in records]
    assert len(keys) == 32 == len(set(keys))
    with pytest.raises(ValueError, match="objective"):
        Tuner(rows, objective="energy", journal=path)
    with pytest.raises(ValueError, match="different space"):
        Tuner(rows[:-1], journal=path)


_KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_tuner import _measure, _space_rows
    from energycore import Tuner
    n = [0]
    def measure(c):
        n[0] += 1
        if n[0] == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)
        return _measure(c)
    Tuner(_space_rows(), budget=40, batch=8, seed=5, journal={path!r}).run(measure)
    """
)


def test_resume_after_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.jsonl"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), kill_at=21, path=str(path))
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    _, records = read_journal(path)
    assert len(records) == 16  # two whole rounds; the third was being measured
    t = Tuner(_space_rows(), budget=40, batch=8, seed=5, journal=path)
    assert t.n_resumed_ == 16
    t.run(_measure)
    t.close()
    _, records = read_journal(path)
    keys = [r["key"] for r in records]
    assert len(keys) == 40 == len(set(keys))  # nothing measured twice, nothing lost


# ---------------------------------------------------------------- CacheReplay


def _kt_cache(rep: CacheReplay) -> dict:
    return rep.to_dict()


def test_cache_roundtrip_json_and_gz(tmp_path: Path) -> None:
    rep = _replay()
    for name in ("c.json", "c.json.gz"):
        p = rep.save(tmp_path / name)
        back = CacheReplay.load(p)
        assert len(back) == len(rep) and back.params == PARAMS
        assert back.device_name == "fake"
        assert back.valid().sum() == rep.valid().sum() < len(rep)
        c = {"bx": 64, "by": 4, "tile": 2}
        assert back(c)["time"] == pytest.approx(_time(c))
        assert back({"bx": 256, "by": 8, "tile": 1})["status"] == "RuntimeFailedConfig"
    assert (tmp_path / "c.json.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_cache_reads_kernel_tuner_layout(tmp_path: Path) -> None:
    """A cache as Kernel Tuner writes it: error names as the time, and left open."""
    entries = {
        "16,1": {"block_size_x": 16, "block_size_y": 1, "time": 1.5, "times": [1.4, 1.6],
                 "compile_time": 900.0, "GFLOP/s": 10.0, "timestamp": "2024"},
        "32,1": {"block_size_x": 32, "block_size_y": 1, "time": "CompilationFailedConfig",
                 "compile_time": 10.0},
    }  # fmt: skip
    head = {"device_name": "NVIDIA A100", "kernel_name": "k", "problem_size": [64],
            "tune_params_keys": ["block_size_x", "block_size_y"],
            "tune_params": {"block_size_x": [16, 32], "block_size_y": [1]}, "cache": {}}  # fmt: skip
    text = json.dumps(head)[:-2]  # open: no "}}"
    for k, v in entries.items():
        text += "\n" + json.dumps({k: v})[1:-1] + ","
    p = tmp_path / "open.json"
    p.write_text(text)
    rep = CacheReplay.load(p)
    assert rep.device_name == "NVIDIA A100" and len(rep) == 2
    ok = rep({"block_size_x": 16, "block_size_y": 1})
    assert ok["status"] == "ok" and ok["time"] == 1.5 and ok["GFLOP/s"] == 10.0
    assert "timestamp" not in ok
    assert rep({"block_size_x": 32, "block_size_y": 1})["status"] == "CompilationFailedConfig"
    closed = tmp_path / "closed.json.gz"
    head["cache"] = entries
    closed.write_bytes(gzip.compress(json.dumps(head).encode()))
    assert len(CacheReplay.load(closed)) == 2


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\x1f\x8b\x08garbage", "cannot read"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"tune_params_keys": ["a"]}', "no 'cache'"),
        (b'{"tune_params_keys": ["a"], "cache": {"1": {"b": 1}}}', "lacks parameter"),
    ],
)
def test_corrupt_cache_is_a_clear_error(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        CacheReplay.load(p)
    with pytest.raises(ValueError, match="does not exist"):
        CacheReplay.load(tmp_path / "missing.json")


def test_replay_rejects_unknown_parameters() -> None:
    rep = _replay()
    with pytest.raises(ValueError, match="unknown parameter"):
        rep({"bx": 16, "by": 1, "tile": 1, "bz": 2})
    with pytest.raises(ValueError, match="not in the cache"):
        rep({"bx": 17, "by": 1, "tile": 1})
    assert rep({"bx": 16.0, "by": 1, "tile": 1})["status"] == "ok"
    assert rep.threshold(1.0) == pytest.approx(np.nanmax(rep.values()))
    assert rep.threshold(1e-9) == pytest.approx(np.nanmin(rep.values()))


def test_tuner_on_a_shared_benchmark_hub_cache(shared_data: Path) -> None:
    import pandas as pd

    csv = shared_data / "benchmark-hub-convolution" / "convolution_milo_cache.csv"
    if not csv.exists():
        pytest.skip("benchmark-hub-convolution not present")
    df = pd.read_csv(csv)
    df = df[df.gpu == "A6000"].drop(columns="gpu")
    params = [c for c in df.columns[:10]]
    rep = CacheReplay.from_frame(df, params, device_name="A6000")
    assert len(rep) == 4362 and int((~rep.valid()).sum()) == 221 + 252
    t = Tuner(rep, budget=64, batch=16, seed=0).run(rep)
    assert t.n_measured == 64
    # far better than the median configuration, with fewer failures than the base rate
    assert t.best_value_ < np.nanmedian(rep.values()) / 2
    assert t.n_failed / t.n_measured < (~rep.valid()).mean()


# ---------------------------------------------------------------- the loop's parts


def _big_space() -> dict[str, np.ndarray]:
    """6^5 = 7776 configurations of a smooth bowl with its optimum at 3 in every axis."""
    g = np.stack(np.meshgrid(*[np.arange(6)] * 5, indexing="ij"), -1).reshape(-1, 5)
    return {f"p{j}": g[:, j] for j in range(5)}


def _bowl(c: dict[str, int]) -> float:
    return 1.0 + sum((c[f"p{j}"] - 3) ** 2 for j in range(5))


def test_local_picks_are_neighbours_of_the_incumbents() -> None:
    """With local=1 every model pick differs from one of the best measured in one parameter."""
    t = Tuner(_big_space(), budget=64, batch=8, seed=2, local=1.0, explore=0.0, incumbents=2)
    while not t.done:
        measured = [(r["result"]["time"], r["config"]) for r in t.records_ if r["status"] == "ok"]
        configs = t.ask()
        if len(measured) >= t.n_init:
            second = sorted(v for v, _ in measured)[1]
            inc = [c for v, c in measured if v <= second]  # the two best, with their ties
            for c in configs:
                assert min(sum(c[k] != i[k] for k in c) for i in inc) == 1
        t.tell(configs, [_bowl(c) for c in configs])


def test_local_search_and_top_weight_find_the_optimum_deterministically() -> None:
    kw = {"budget": 96, "batch": 8, "local": 0.5, "top_weight": 3.0}
    a = Tuner(_big_space(), seed=4, **kw).run(_bowl)
    b = Tuner(_big_space(), seed=4, **kw).run(_bowl)
    assert [r["config"] for r in a.records_] == [r["config"] for r in b.records_]
    assert a.best_value_ == 1.0


def test_top_weight_favours_the_best_rows() -> None:
    t = Tuner(_space_rows(), top_weight=3.0)
    w = t._weights(np.array([0.0, 5.0, 1.0, 4.0]))
    assert w is not None and list(np.argsort(-w)) == [1, 3, 2, 0] and w.min() >= 1.0
    assert Tuner(_space_rows(), top_weight=0.0)._weights(np.arange(4.0)) is None


def test_diversity_spreads_a_batch() -> None:
    """The diversity penalty gives a batch more distinct parameter values than pure greedy."""

    def spread(diversity: float) -> float:
        total = 0
        for s in range(3):
            t = Tuner(_big_space(), budget=48, batch=16, seed=s, explore=0.0, diversity=diversity)
            t.tell(*(lambda cs: (cs, [_bowl(c) for c in cs]))(t.ask()))
            t.tell(*(lambda cs: (cs, [_bowl(c) for c in cs]))(t.ask()))
            batch = t.ask()
            total += sum(len({c[k] for c in batch}) for k in t.params)
        return total

    assert spread(2.0) > spread(0.0)


def test_validity_model_refits_only_when_new_failures_arrive() -> None:
    rows = _space_rows()
    t = Tuner(rows, budget=200, batch=8, seed=0)
    models = []
    while not t.done:
        configs = t.ask()
        models.append((t.n_failed, t.validity_model_))
        t.tell(configs, [_measure(c) for c in configs])
    for (f0, m0), (f1, m1) in itertools.pairwise(models):
        if m0 is not None and m1 is not None:
            assert (m1 is m0) == (f1 == f0)
    assert any(m is not None for _, m in models)


def test_scored_subset_on_a_large_space() -> None:
    """Past max_scored free candidates, rounds between full scorings score a subset that keeps
    the best of the previous utility; the tuner still finds the optimum, deterministically."""
    kw = {"budget": 96, "batch": 8, "max_scored": 1000, "rescore_every": 3, "local": 0.5}
    sizes: list[int] = []
    orig = Tuner._scored

    def spy(self: Tuner, free: np.ndarray, ok: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = orig(self, free, ok, rng)
        sizes.append(out.size)
        return out

    a = Tuner(_big_space(), seed=1, **kw)
    a._scored = spy.__get__(a)  # type: ignore[method-assign]
    a.run(_bowl)
    b = Tuner(_big_space(), seed=1, **kw).run(_bowl)
    assert [r["config"] for r in a.records_] == [r["config"] for r in b.records_]
    assert a.best_value_ == 1.0
    assert any(s > 7000 for s in sizes) and any(1000 <= s < 1500 for s in sizes)
    with pytest.raises(ValueError, match="max_scored"):
        Tuner(_big_space(), max_scored=1)
    with pytest.raises(ValueError, match="local"):
        Tuner(_big_space(), local=1.5)


def test_ensemble_members_pick_their_own_tops_deterministically() -> None:
    """With members > 1 the greedy picks come from bagged members (each its own top), the
    run is deterministic for a seed and still finds the optimum."""
    kw = {"budget": 96, "batch": 8, "members": 4, "explore": 0.0, "local": 0.0}
    a = Tuner(_big_space(), seed=3, **kw).run(_bowl)
    b = Tuner(_big_space(), seed=3, **kw).run(_bowl)
    assert [r["config"] for r in a.records_] == [r["config"] for r in b.records_]
    assert a.best_value_ == 1.0
    one = Tuner(_big_space(), seed=3, **{**kw, "members": 1}).run(_bowl)
    assert [r["config"] for r in a.records_] != [r["config"] for r in one.records_]


def test_ensemble_members_are_bootstrap_fits_with_fewer_trees() -> None:
    t = Tuner(_big_space(), budget=64, batch=8, seed=0, members=3, member_trees=0.5)
    y = np.linspace(0.0, 1.0, 40)
    X = t.features_[:40]
    m = t._fit_rank(t.performance, X, y, 5, boot=True)
    assert m.get_params()["n_estimators"] == t.performance.get_params()["n_estimators"] // 2
    full = t._fit_rank(t.performance, X, y, 5)
    assert full.get_params()["n_estimators"] == t.performance.get_params()["n_estimators"]
    assert not np.allclose(m.predict(t.features_), full.predict(t.features_))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"members": 0}, "members"),
        ({"members": 2.0}, "members"),
        ({"member_trees": 0.0}, "member_trees"),
        ({"member_trees": 1.5}, "member_trees"),
        ({"member_trees": True}, "member_trees"),
    ],
)
def test_bad_ensemble_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Tuner(_big_space(), **kwargs)


def _product_space() -> dict[str, np.ndarray]:
    g = np.stack(np.meshgrid(np.arange(1, 33), np.arange(1, 33), np.arange(3), indexing="ij"), -1)
    g = g.reshape(-1, 3)
    return {"a": g[:, 0], "b": g[:, 1], "c": g[:, 2]}


def _product_measure(c: dict[str, int]) -> float | None:
    """Fails past a resource limit a * b > 300; fastest just below it."""
    if c["a"] * c["b"] > 300:
        return None
    return 1.0 + (300 - c["a"] * c["b"]) / 100 + c["c"]


def test_validity_products_adds_pairwise_products() -> None:
    t = Tuner(_product_space(), validity_products=True)
    V = t._validity_features()
    X = t.features_
    assert V.shape == (X.shape[0], 3 + 3)
    np.testing.assert_array_equal(V[:, :3], X)
    np.testing.assert_array_equal(V[:, 3], X[:, 0] * X[:, 1])
    cats = Tuner([{"a": 1, "k": "x"}, {"a": 2, "k": "y"}], validity_products=True)
    assert cats._validity_features().shape == (2, 2)  # a categorical column: no products
    with pytest.raises(ValueError, match="validity_products"):
        Tuner(_product_space(), validity_products=1)


def test_validity_products_predict_a_product_limit_better() -> None:
    """On a failure boundary a * b > L, the validity model with the products separates the
    untried candidates better than the one on the raw parameters (same measurements)."""
    t = Tuner(_product_space(), budget=200, batch=16, seed=0)
    t.run(_product_measure)
    rows = np.flatnonzero(t._state != 0)  # the measured configurations
    truth = t.features_[:, 0] * t.features_[:, 1] <= 300
    labels = truth[rows].astype(float)
    assert 0 < labels.sum() < labels.size
    acc = {}
    for products in (False, True):
        u = Tuner(_product_space(), seed=0, validity_products=products)
        V = u._validity_features() if products else u.features_
        vm = u.validity.fit(V[rows], labels)
        rest = np.setdiff1d(np.arange(truth.size), rows)
        acc[products] = float(((vm.predict_proba(V[rest])[:, 1] > 0.5) == truth[rest]).mean())
    assert acc[True] > acc[False]


def test_ensemble_members_with_a_prior() -> None:
    """The ensemble blends each member with the prior's score; runs stay deterministic."""
    rows = _space_rows()
    src = {k: [r[k] for r in rows] for k in PARAMS}
    src["time"] = [_time(r) * 1.3 if r["bx"] * r["by"] <= 512 else math.nan for r in rows]
    kw = {"budget": 40, "batch": 8, "members": 3, "member_trees": 0.5, "prior": {"gpu": src}}
    a = Tuner(rows, seed=2, **kw).run(_measure)
    b = Tuner(rows, seed=2, **kw).run(_measure)
    assert [r["config"] for r in a.records_] == [r["config"] for r in b.records_]
    assert a.n_measured == 40 and a.best_value_ == pytest.approx(
        min(_time(c) for c in rows if c["bx"] * c["by"] <= 512)
    )


# ---------------------------------------------------------------- stagnation


def _tell_rows(t: Tuner, rows: list[dict[str, int]]) -> None:
    """Tell ``rows`` their bowl values, ties broken by the order told (later = slower)."""
    t.tell(rows, [_bowl(c) + 1e-3 * (t.n_measured + j) for j, c in enumerate(rows)])


def _stagnated(kw: dict, best_last: bool) -> tuple[Tuner, list[dict[str, int]]]:
    """A tuner told 3 batches of 8 rows near the optimum of the bowl; the optimum itself
    first (then 23 rows without a new best) or last (the best is new)."""
    t = Tuner(_big_space(), budget=200, batch=8, seed=3, explore=0.0, **kw)
    rng = np.random.default_rng(0)
    near = []
    for _ in range(200):
        c = {f"p{j}": int(np.clip(3 + rng.integers(-1, 2), 0, 5)) for j in range(5)}
        if c not in near and any(v != 3 for v in c.values()):
            near.append(c)
    opt = {f"p{j}": 3 for j in range(5)}
    rows = [opt, *near[:23]] if not best_last else [*near[:23], opt]
    for b in range(3):
        _tell_rows(t, rows[8 * b : 8 * b + 8])
    return t, t.ask()


def test_stagnation_triggers_far_picks_on_a_constructed_stagnation() -> None:
    kw = {"stagnation": 2, "stagnation_share": 0.5, "stagnation_distance": 0.6}
    t, batch = _stagnated(kw, best_last=False)
    assert t.stagnating_ and t.n_diversified_ == 4
    inc = sorted(((r["result"]["time"], r["config"]) for r in t.records_), key=lambda x: x[0])[:3]
    far = [c for c in batch if min(sum(c[k] != i[k] for k in c) for _, i in inc) >= 3]
    assert len(far) >= 4  # the far share: >= 60 % of the 5 parameters away from each incumbent
    # the same history without the option: no far picks (local + greedy near the best)
    t0, batch0 = _stagnated({}, best_last=False)
    assert not t0.stagnating_ and t0.n_diversified_ == 0
    far0 = [c for c in batch0 if min(sum(c[k] != i[k] for k in c) for _, i in inc) >= 3]
    assert len(far0) < len(far)


def test_stagnation_does_not_trigger_after_a_new_best() -> None:
    t, _ = _stagnated({"stagnation": 2}, best_last=True)
    assert not t.stagnating_ and t.n_diversified_ == 0
    # 16 measurements since the best = stagnation * batch: triggers at exactly the threshold
    t2, _ = _stagnated({"stagnation": 3}, best_last=False)
    assert t2.n_diversified_ == 0  # 23 < 3 * 8 told since the best
    t3, _ = _stagnated({"stagnation": 2}, best_last=False)
    assert t3.stagnating_


def test_stagnation_is_deterministic_and_still_finds_the_optimum() -> None:
    kw = {"budget": 120, "batch": 8, "stagnation": 1, "stagnation_share": 0.5}
    a = Tuner(_big_space(), seed=5, **kw).run(_bowl)
    b = Tuner(_big_space(), seed=5, **kw).run(_bowl)
    c = Tuner(_big_space(), seed=6, **kw).run(_bowl)
    order = [[r["config"] for r in t.records_] for t in (a, b, c)]
    assert order[0] == order[1] and order[0] != order[2]
    assert a.n_diversified_ > 0 and a.best_value_ == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stagnation": 0}, "stagnation"),
        ({"stagnation": 2.5}, "stagnation"),
        ({"stagnation": True}, "stagnation"),
        ({"stagnation_share": 1.5}, "stagnation_share"),
        ({"stagnation_share": -0.1}, "stagnation_share"),
        ({"stagnation_share": math.nan}, "stagnation_share"),
        ({"stagnation_distance": 2.0}, "stagnation_distance"),
        ({"stagnation_distance": "far"}, "stagnation_distance"),
    ],
)
def test_bad_stagnation_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Tuner(_big_space(), **kwargs)
