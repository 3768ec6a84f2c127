"""ConfigSpace enumeration, filtering and reductions against brute-force Python references.

The references walk ``itertools.product`` over the axes and evaluate constraint strings with
Python itself (``eval`` on test-generated strings only: the library never evals), so the C++
bytecode, the ast compiler and the reductions are each checked against an independent oracle.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energycore import ConfigSpace
from tests.helpers import SPACE, fitted

NUMERIC_NAMES = ["tp", "pp", "batch", "a", "b"]


# ------------------------------------------------------------------------------ strategies
@st.composite
def spaces(draw: Any) -> dict[str, list[Any]]:
    """Small spaces: 1-3 positive integer axes, maybe a categorical and a boolean axis."""
    names = draw(st.lists(st.sampled_from(NUMERIC_NAMES), min_size=1, max_size=3, unique=True))
    axes: dict[str, list[Any]] = {
        n: draw(st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True)) for n in names
    }
    if draw(st.booleans()):
        axes["gpu"] = draw(
            st.lists(st.sampled_from(["H100", "A100", "L4"]), min_size=1, max_size=3, unique=True)
        )
    if draw(st.booleans()):
        axes["flag"] = draw(st.sampled_from([[False, True], [True], [True, False]]))
    return axes


def terms(names: list[str]) -> st.SearchStrategy[str]:
    """Arithmetic over numeric axes; divisors are atoms that cannot be zero."""
    atoms = st.sampled_from(names) | st.integers(1, 9).map(str)
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, st.sampled_from(["%", "//", "/"]), atoms).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(
                lambda t: f"{t[0]}({t[1]}, {t[2]})"
            ),
            inner.map(lambda t: f"abs({t})"),
            inner.map(lambda t: f"-{t}"),
            atoms.map(lambda t: f"{t} ** 2"),
        ),
        max_leaves=6,
    )


@st.composite
def conditions(draw: Any, axes: dict[str, list[Any]]) -> str:
    numeric = [n for n in axes if n in NUMERIC_NAMES]
    leaves = [
        st.tuples(
            terms(numeric), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), terms(numeric)
        ).map(" ".join)
    ]
    if "gpu" in axes:
        cats = axes["gpu"]
        leaves.append(st.sampled_from(cats).map(lambda c: f'gpu == "{c}"'))
        leaves.append(st.sampled_from(cats).map(lambda c: f'gpu != "{c}"'))
        leaves.append(
            st.lists(st.sampled_from(cats), min_size=1, max_size=2).map(
                lambda cs: f"gpu in {tuple(cs)!r}"
            )
        )
    if "flag" in axes:
        leaves.append(st.just("flag"))
    leaf = st.one_of(*leaves)
    expr = st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda t: f"not ({t})"),
        ),
        max_leaves=4,
    )
    return draw(expr)


# ------------------------------------------------------------------------------ references
def _env(axes: dict[str, list[Any]], point: tuple[Any, ...]) -> dict[str, Any]:
    env = dict(zip(axes, point))
    env.setdefault("tp", 1)
    env.setdefault("pp", 1)
    env["n_gpus"] = env["tp"] * env["pp"]
    return env


def _holds(expr: str, env: dict[str, Any]) -> bool:
    ns = {"__builtins__": {}, "min": min, "max": max, "abs": abs}
    return bool(eval(compile(expr, "<reference>", "eval"), ns, dict(env)))  # test oracle only


def reference_points(axes: dict[str, list[Any]], constraints: list[str]) -> list[int]:
    """Indices (enumeration order, last axis fastest) of the points meeting every constraint."""
    out = []
    for i, point in enumerate(itertools.product(*axes.values())):
        env = _env(axes, point)
        if all(_holds(c, env) for c in constraints):
            out.append(i)
    return out


# ------------------------------------------------------------------------------ enumeration
@given(data=st.data())
def test_enumeration_equals_bruteforce(data: Any) -> None:
    axes = data.draw(spaces())
    constraints = data.draw(st.lists(conditions(axes), min_size=0, max_size=2))
    space = ConfigSpace(axes, constraints=constraints, n_threads=2)
    want = reference_points(axes, constraints)
    assert space.size == math.prod(len(v) for v in axes.values())
    assert space.count_valid() == len(want)
    cols = space.to_frame(None, as_frame=False)
    assert cols["index"].tolist() == want
    points = list(itertools.product(*axes.values()))
    for name in axes:
        k = list(axes).index(name)
        assert cols[name].tolist() == [points[i][k] for i in want]
    limit = data.draw(st.integers(0, 5))
    assert space.to_frame(limit, as_frame=False)["index"].tolist() == want[:limit]


@given(data=st.data())
def test_where_and_top_k_equal_bruteforce(data: Any) -> None:
    axes = data.draw(spaces())
    cons = data.draw(st.lists(conditions(axes), max_size=1))
    where = data.draw(conditions(axes))
    numeric = [n for n in axes if n in NUMERIC_NAMES] + ["n_gpus"]
    objective = data.draw(st.sampled_from(numeric))
    maximize = data.draw(st.booleans())
    k = data.draw(st.integers(1, 6))
    space = ConfigSpace(axes, constraints=cons)
    valid = reference_points(axes, [*cons, where])
    assert space.count_valid(where=where) == len(valid)
    points = list(itertools.product(*axes.values()))
    val = {i: _env(axes, points[i])[objective] for i in valid}
    want = sorted(valid, key=lambda i: (-val[i] if maximize else val[i], i))[:k]
    got = space.top_k(objective, k, where=where, maximize=maximize, as_frame=False)
    assert got["index"].tolist() == want


def _relative_miss(v: float, op: str, limit: float) -> float:
    scale = max(abs(limit), 1e-12)
    if op in ("<=", "<"):
        return max(0.0, v - limit) / scale
    return max(0.0, limit - v) / scale


@given(data=st.data())
def test_argmin_and_nearest_equal_bruteforce(data: Any) -> None:
    em, lm = fitted()
    axes = {
        "tp": data.draw(
            st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=4, unique=True)
        ),
        "pp": data.draw(st.lists(st.sampled_from([1, 2, 4]), min_size=1, max_size=3, unique=True)),
        "batch": data.draw(
            st.lists(st.sampled_from([1, 2, 8, 32, 128]), min_size=1, max_size=4, unique=True)
        ),
    }
    space = ConfigSpace(axes, constraints=["tp * pp <= 8"])
    lin = data.draw(st.sampled_from([16, 300, 4096]))
    lout = data.draw(st.sampled_from([1, 64, 700]))
    objective = data.draw(
        st.sampled_from(["energy_j", "energy_per_request_j", "latency_s", "power_w"])
    )
    cols = space.to_frame(None, models=[em, lm], as_frame=False, input_len=lin, output_len=lout)
    lat_q = data.draw(st.floats(0.0, 1.0))
    pow_q = data.draw(st.floats(0.0, 1.0))
    if len(cols["index"]):
        lat_lim = float(np.quantile(cols["latency_s"], lat_q)) * data.draw(
            st.sampled_from([0.5, 1.0])
        )
        pow_lim = float(np.quantile(cols["power_w"], pow_q))
    else:  # every point fails the constraint
        lat_lim = pow_lim = 1.0
    limits = {"latency_s": ("<=", lat_lim), "power_w": ("<=", pow_lim)}
    r = space.argmin(objective, subject_to=limits, models=[em, lm], input_len=lin, output_len=lout)

    idx = cols["index"].tolist()
    ok = [
        j
        for j in range(len(idx))
        if cols["latency_s"][j] <= lat_lim and cols["power_w"][j] <= pow_lim
    ]
    assert r.n_valid == len(idx) and r.n_feasible == len(ok)
    if not idx:
        assert not r.feasible and r.nearest_index == -1
    elif ok:
        best = min(ok, key=lambda j: (cols[objective][j], idx[j]))
        assert r.feasible and r.index == idx[best] and r.value == cols[objective][best]
        assert r.config is not None and r.config[objective] == r.value
        assert r.nearest is None
    else:
        assert not r.feasible and r.index == -1 and math.isnan(r.value) and r.config is None
        miss = [
            _relative_miss(cols["latency_s"][j], "<=", lat_lim)
            + _relative_miss(cols["power_w"][j], "<=", pow_lim)
            for j in range(len(idx))
        ]
        near = min(range(len(idx)), key=lambda j: (miss[j], cols[objective][j], idx[j]))
        assert r.nearest_index == idx[near]
        assert r.violation == pytest.approx(miss[near], rel=1e-12)
        assert "infeasible" in r.message and r.nearest is not None


def _dominated(p: tuple[float, ...], q: tuple[float, ...]) -> bool:
    return all(b <= a for a, b in zip(p, q)) and any(b < a for a, b in zip(p, q))


@given(data=st.data())
def test_pareto_front_equals_bruteforce(data: Any) -> None:
    em, lm = fitted()
    axes = {
        "tp": [1, 2, 4, 8],
        "pp": data.draw(st.lists(st.sampled_from([1, 2, 4]), min_size=1, max_size=3, unique=True)),
        "batch": data.draw(
            st.lists(
                st.sampled_from([1, 2, 4, 8, 16, 64, 256]), min_size=1, max_size=5, unique=True
            )
        ),
        "gpu": ["H100", "A100"],
    }
    objectives = data.draw(
        st.sampled_from(
            [
                ["energy_per_request_j", "latency_s"],
                ["energy_j", "latency_s", "n_gpus"],
                ["power_w", "ttft_s"],
                ["n_gpus", "batch"],
            ]
        )
    )
    maximize = ["batch"] if "batch" in objectives else []
    space = ConfigSpace(axes, constraints=["tp * pp <= 8"])
    kw = {"input_len": data.draw(st.sampled_from([64, 2048])), "output_len": 128}
    cols = space.to_frame(None, models=[em, lm], as_frame=False, **kw)
    sign = [(-1.0 if o in maximize else 1.0) for o in objectives]
    pts = [
        tuple(s * float(cols[o][j]) for s, o in zip(sign, objectives))
        for j in range(len(cols["index"]))
    ]
    want = [
        int(cols["index"][j]) for j, p in enumerate(pts) if not any(_dominated(p, q) for q in pts)
    ]
    got = space.pareto_front(objectives, models=[em, lm], maximize=maximize, as_frame=False, **kw)
    assert sorted(got["index"].tolist()) == sorted(want)
    first = got[objectives[0]] * sign[0]
    assert (np.diff(first) >= 0).all()


# ------------------------------------------------------------------------------ threads
def test_thread_count_does_not_change_answers() -> None:
    em, lm = fitted()
    axes = {
        **SPACE,
        "batch": ConfigSpace.powers_of_two(1, 512),
        "knob": list(range(400)),
        "flag": [False, True],
    }
    answers = []
    for n in (1, 3, 8):
        s = ConfigSpace(axes, constraints=["tp * pp <= 8", "knob % tp != 1 or flag"], n_threads=n)
        kw = {"models": [em, lm], "input_len": 512, "output_len": 128}
        answers.append(
            (
                s.count_valid(**kw),
                s.top_k("energy_per_request_j", 7, as_frame=False, **kw)["index"].tolist(),
                s.argmin("energy_j", subject_to={"latency_s": ("<=", 0.4)}, **kw).index,
                s.pareto_front(["energy_per_request_j", "latency_s"], as_frame=False, **kw)[
                    "index"
                ].tolist(),
                s.to_frame(5000, as_frame=False, **kw)["index"].tolist(),
            )
        )
    assert s.size > 3 * 2**15  # several chunks
    assert answers[0] == answers[1] == answers[2]


# ------------------------------------------------------------------------------ built-ins
def test_powers_of_two() -> None:
    assert ConfigSpace.powers_of_two(1, 256) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert ConfigSpace.powers_of_two(3, 17) == [4, 8, 16]
    for lo, hi in ((0, 4), (8, 4), (5, 7)):
        with pytest.raises(ValueError, match="powers_of_two"):
            ConfigSpace.powers_of_two(lo, hi)


def test_builtin_constraints_match_their_formulas() -> None:
    mem = {"H100": 80, "A100": 40, "B200": 192}
    fit = ConfigSpace.memory_fit(
        weights_gb=140,
        kv_gb_per_token=0.0003,
        gpu_mem_gb=mem,
        utilization=0.9,
        activation_gb_per_token=1e-4,
    )
    axes = {"tp": [1, 2, 4, 8], "pp": [1, 2, 4], "batch": [1, 16, 256], "gpu": ["H100", "A100"]}
    cons = [
        fit,
        ConfigSpace.divisible(heads=64, layers=80),
        ConfigSpace.gpu_count({"H100": 8, "A100": 4}),
    ]
    space = ConfigSpace(axes, constraints=cons)
    got = space.to_frame(None, as_frame=False, input_len=2048, output_len=512)["index"].tolist()
    want = []
    for i, (tp, pp, b, gpu) in enumerate(itertools.product(*axes.values())):
        need = (140 + 0.0003 * b * (2048 + 512)) / (tp * pp) + 1e-4 * b * 2048 / tp
        ok = need <= mem[gpu] * 0.9 and 64 % tp == 0 and 80 % pp == 0
        if ok and tp * pp <= (8 if gpu == "H100" else 4):
            want.append(i)
    assert got == want and 0 < len(want) < space.size
    assert ConfigSpace.gpu_count(8) == "tp * pp <= 8.0"
    per_quant = ConfigSpace.memory_fit(
        weights_gb={"fp16": 140, "fp8": 70}, kv_gb_per_token=0.0, gpu_mem_gb=80
    )
    q = ConfigSpace({"tp": [1, 2], "quant": ["fp16", "fp8"]}, constraints=[per_quant])
    assert q.to_frame(None, as_frame=False, batch=1, input_len=1, output_len=1)[
        "index"
    ].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"weights_gb": -1, "kv_gb_per_token": 0, "gpu_mem_gb": 80},
            "weights_gb: must be non-negative",
        ),
        (
            {"weights_gb": 1, "kv_gb_per_token": 0, "gpu_mem_gb": 80, "utilization": 1.5},
            "utilization",
        ),
        (
            {"weights_gb": 1, "kv_gb_per_token": float("nan"), "gpu_mem_gb": 80},
            "kv_gb_per_token must be finite",
        ),
        ({"weights_gb": 1, "kv_gb_per_token": 0, "gpu_mem_gb": {}}, "gpu_mem_gb: empty mapping"),
    ],
)
def test_memory_fit_rejects_bad_numbers(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ConfigSpace.memory_fit(**kwargs)


def test_memory_lookup_needs_every_gpu_of_the_axis() -> None:
    fit = ConfigSpace.memory_fit(weights_gb=1, kv_gb_per_token=0, gpu_mem_gb={"H100": 80})
    with pytest.raises(ValueError, match="no entry for 'A100' of axis 'gpu'"):
        ConfigSpace({"tp": [1], "gpu": ["H100", "A100"]}, constraints=[fit])


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("axes", "match"),
    [
        ({}, "non-empty mapping"),
        ({"tp": []}, "axis 'tp' has no values"),
        ({"tp": [1, "a"]}, "mixes value types"),
        ({"tp": [1, 1]}, "repeats the value 1"),
        ({"tp": [1.0, float("inf")]}, "non-finite value"),
        ({"latency_s": [1]}, "reserved"),
        ({"2x": [1]}, "not a valid column name"),
        ({"tp": "1248"}, "needs a sequence"),
        ({f"a{i}": list(range(100)) for i in range(10)}, "more than 2\\*\\*62"),
    ],
)
def test_bad_axes(axes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ConfigSpace(axes)


def test_query_errors() -> None:
    em, lm = fitted()
    space = ConfigSpace(SPACE, constraints=["tp * pp <= 8"], fixed={"slo": 2.0})
    with pytest.raises(ValueError, match="did you mean 'input_len'"):
        space.count_valid(input_length=5)
    with pytest.raises(ValueError, match="tp: is an axis"):
        space.count_valid(tp=2)
    with pytest.raises(ValueError, match="input_len: must be non-negative"):
        space.count_valid(input_len=-1)
    with pytest.raises(ValueError, match="unknown column 'energy'"):
        space.argmin("energy", models=em, input_len=1, output_len=1)
    with pytest.raises(ValueError, match="categorical"):
        space.top_k("gpu")
    with pytest.raises(ValueError, match="op one of"):
        space.argmin(
            "energy_j",
            subject_to={"latency_s": ("=<", 1)},
            models=[em, lm],
            input_len=1,
            output_len=1,
        )
    with pytest.raises(ValueError, match="expected a mapping"):
        space.argmin("n_gpus", subject_to=[("latency_s", "<=", 1)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k: must be a positive integer"):
        space.top_k("n_gpus", 0)
    with pytest.raises(ValueError, match="limit"):
        space.to_frame(-1)
    with pytest.raises(ValueError, match="where 'latency_s < 1': unknown name 'latency_s'"):
        space.count_valid(where="latency_s < 1")
    with pytest.raises(ValueError, match="maximize: 'x' is not one of the objectives"):
        space.pareto_front(["n_gpus"], maximize=["x"])
    with pytest.raises(ValueError, match="fixed: 'tp' is an axis"):
        ConfigSpace(SPACE, fixed={"tp": 1})
    assert space.count_valid(where="slo > 1") == space.count_valid()
    assert space.count_valid(where="slo > 3") == 0
    assert space.count_valid(where="slo > 3", slo=4) == space.count_valid()


def test_empty_space_and_infeasible_limits_give_results() -> None:
    em, lm = fitted()
    space = ConfigSpace(SPACE, constraints=["tp * pp > 100"])
    assert space.count_valid() == 0
    assert len(space.to_frame()) == 0
    assert len(space.top_k("n_gpus", 3)) == 0
    assert len(space.pareto_front(["n_gpus", "batch"])) == 0
    r = space.argmin("energy_j", models=[em, lm], input_len=8, output_len=8)
    assert not r.feasible and r.nearest_index == -1 and r.n_valid == 0
    assert "no valid configuration" in r.message
    ok = ConfigSpace(SPACE)
    r = ok.argmin(
        "latency_s",
        subject_to={"latency_s": ("<", 0.0)},
        models=[em, lm],
        input_len=8,
        output_len=8,
    )
    assert not r.feasible and r.nearest is not None and r.violation >= 0
    assert "infeasible" in repr(r) and not bool(r)


# ------------------------------------------------------------------------------ persistence
def test_save_and_load(tmp_path: Path) -> None:
    space = ConfigSpace(SPACE, constraints=["tp * pp <= 8"], fixed={"input_len": 64})
    space.save(tmp_path / "space.json")
    assert ConfigSpace.load(tmp_path / "space.json") == space
    with pytest.raises(ValueError, match="cannot read"):
        ConfigSpace.load(tmp_path / "missing.json")


def test_json_round_trip_and_versions() -> None:
    space = ConfigSpace(
        {"tp": [1, 2, 4], "ratio": [0.5, 1.0], "gpu": ["H100", "A100"], "flag": [True, False]},
        constraints=["tp * pp <= 4", 'gpu == "H100" or not flag'],
        fixed={"slo": 1.5, "input_len": 256},
        derived={"quality": '{"H100": 0.9, "A100": 0.8}[gpu] * ratio'},
    )
    again = ConfigSpace.from_json(space.to_json())
    assert again == space
    assert again.count_valid(output_len=1) == space.count_valid(output_len=1)
    a = again.to_frame(None, as_frame=False)
    b = space.to_frame(None, as_frame=False)
    assert all((a[k] == b[k]).all() for k in b)
    d = json.loads(space.to_json())
    d["format_version"] = 99
    with pytest.raises(ValueError, match="newer energycore"):
        ConfigSpace.from_dict(d)
    with pytest.raises(ValueError, match="not an energycore space"):
        ConfigSpace.from_dict({"axes": []})
    with pytest.raises(ValueError, match="not valid JSON"):
        ConfigSpace.from_json("{")
    del d["axes"]
    d["format_version"] = 1
    with pytest.raises(ValueError, match="malformed"):
        ConfigSpace.from_dict(d)


def test_decoded_types_and_derived_columns() -> None:
    space = ConfigSpace(
        {"tp": [1, 2], "ratio": [0.5], "gpu": ["H100", "A100"], "flag": [True, False]},
        derived={"quality": '{"H100": 0.9, "A100": 0.8}[gpu] * ratio', "q2": "quality * 2"},
    )
    f = space.to_frame()
    assert f["tp"].dtype == np.int64 and f["flag"].dtype == bool and f["gpu"].iloc[2] == "A100"
    assert f["n_gpus"].dtype == np.int64
    np.testing.assert_allclose(f["q2"], 2 * f["quality"])
    np.testing.assert_allclose(f["quality"], np.where(f["gpu"] == "H100", 0.45, 0.4))
    assert "4 points" not in repr(space) and "8 points" in repr(space)
    with pytest.raises(ValueError, match="earlier columns only"):
        ConfigSpace({"tp": [1]}, derived={"a": "b + 1", "b": "tp"})


def test_concurrent_queries_from_eight_threads_equal_serial() -> None:
    em, lm = fitted()
    space = ConfigSpace(
        {**SPACE, "knob": list(range(50))}, constraints=["tp * pp <= 8", "knob % tp == 0"]
    )
    work = [(64 * (k + 1), 16 * (k + 3), 0.2 + 0.05 * k) for k in range(8)]

    def answer(lin: int, lout: int, lat: float) -> tuple[Any, ...]:
        kw = {"models": [em, lm], "input_len": lin, "output_len": lout}
        r = space.argmin("energy_per_request_j", subject_to={"latency_s": ("<=", lat)}, **kw)
        front = space.pareto_front(["energy_j", "latency_s"], as_frame=False, **kw)[
            "index"
        ].tolist()
        return r.index, r.nearest_index, space.count_valid(where=f"latency_s <= {lat}", **kw), front

    serial = [answer(*w) for w in work]
    out: list[Any] = [None] * 8

    def run(t: int) -> None:
        out[t] = [answer(*w) for w in work[t:] + work[:t]]

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in range(8):
        assert out[t] == serial[t:] + serial[:t]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_version_1_space_file_keeps_loading() -> None:
    text = (FIXTURES / "space_v1.json").read_text()
    space = ConfigSpace.from_json(text)
    d = json.loads(text)
    assert d["format_version"] == 1 and space.to_dict() == d
    axes = {a["name"]: a["values"] for a in d["axes"]}
    want = []
    for i, point in enumerate(itertools.product(*axes.values())):
        env = dict(zip(axes, point), input_len=512, output_len=128, slo_s=2.0)
        env["n_gpus"] = env["tp"] * env["pp"]
        env["quality"] = {"fp16": 1.0, "fp8": 0.98}[env["quant"]] * env["ratio"]
        if all(_holds(c, env) for c in d["constraints"]):
            want.append(i)
    got = space.to_frame(None, as_frame=False, output_len=128)
    assert got["index"].tolist() == want and 0 < len(want) < space.size
    np.testing.assert_allclose(
        got["quality"], [0.98 if q == "fp8" else 1.0 for q in got["quant"]] * got["ratio"]
    )
