"""Selector: equal to ConfigSpace.argmin on random queries (inside and outside the precomputed
grid, feasible or not), concurrent queries equal serial ones, best_variant, errors."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energycore import ConfigSpace, Selector
from tests.helpers import SPACE, fitted

AXES = {**SPACE, "batch": ConfigSpace.powers_of_two(1, 256), "flag": [False, True]}
CONSTRAINTS = [
    "tp * pp <= 8",
    ConfigSpace.memory_fit(
        weights_gb=60, kv_gb_per_token=0.002, gpu_mem_gb={"H100": 80, "A100": 40}
    ),
    "not flag or batch >= 4",
]


def _space() -> ConfigSpace:
    return ConfigSpace(AXES, constraints=CONSTRAINTS)


def _models() -> dict[str, list[Any]]:
    return {"H100": list(fitted(1.0)), "A100": list(fitted(1.7, seed=1))}


def _same(a: Any, b: Any) -> None:
    assert (a.feasible, a.index, a.nearest_index) == (b.feasible, b.index, b.nearest_index)
    assert a.value == b.value or (math.isnan(a.value) and math.isnan(b.value))
    if not a.feasible and a.nearest_index >= 0:
        assert a.violation == b.violation


SEL: dict[str, Selector] = {}


def _selector(objective: str) -> Selector:
    if objective not in SEL:
        models = _models()
        SEL[objective] = Selector(
            _space(),
            energy_model={k: v[0] for k, v in models.items()},
            latency_model={k: v[1] for k, v in models.items()},
            objective=objective,
        )
    return SEL[objective]


lengths = st.one_of(
    st.integers(0, 9000),
    st.floats(0, 300_000, allow_nan=False),  # beyond the grid too
    st.sampled_from([0, 1, 2, 1024, 131071, 131072, 262144]),  # cell edges
)


@given(
    objective=st.sampled_from(
        ["energy_per_request_j", "energy_j", "latency_s", "power_w", "n_gpus"]
    ),
    lin=lengths,
    lout=lengths,
    lat=st.one_of(st.none(), st.floats(1e-3, 50)),
    cap=st.one_of(st.none(), st.floats(10, 5000)),
)
def test_best_equals_argmin(
    objective: str, lin: float, lout: float, lat: float | None, cap: float | None
) -> None:
    sel = _selector(objective)
    got = sel.best(lin, lout, latency_limit_s=lat, power_cap_w=cap)
    limits = {}
    if lat is not None:
        limits["latency_s"] = ("<=", lat)
    if cap is not None:
        limits["power_w"] = ("<=", cap)
    want = _space().argmin(
        objective, subject_to=limits, models=_models(), input_len=lin, output_len=lout
    )
    _same(got, want)
    assert got.n_valid == -1
    if got.feasible:
        assert got.config == want.config


def test_some_queries_are_feasible_and_some_not() -> None:
    sel = _selector("energy_per_request_j")
    ok = sel.best(512, 128, latency_limit_s=30.0)
    assert ok.feasible and ok.config is not None and ok.config["latency_s"] <= 30.0
    bad = sel.best(512, 128, latency_limit_s=1e-6)
    assert not bad.feasible and bad.nearest is not None and "infeasible" in bad.message
    huge = sel.best(1e6, 1e6)  # outside the grid and beyond memory for every point
    assert not huge.feasible and huge.nearest_index == -1


def test_concurrent_queries_equal_serial() -> None:
    sel = _selector("energy_per_request_j")
    rng = np.random.default_rng(0)
    queries = [
        (
            float(rng.integers(1, 8000)),
            float(rng.integers(1, 2000)),
            float(rng.uniform(0.05, 20)),
            float(rng.uniform(100, 4000)),
        )
        for _ in range(400)
    ]
    serial = [sel.best(*q) for q in queries]
    results: list[list[Any]] = [[] for _ in range(8)]

    def work(t: int) -> None:
        results[t] = [sel.best(*q) for q in queries]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    def key(s: Any) -> tuple[Any, ...]:
        return (s.feasible, s.index, None if math.isnan(s.value) else s.value, s.nearest_index)

    assert 0 < sum(s.feasible for s in serial) < len(serial)
    for r in results:
        assert [key(s) for s in r] == [key(s) for s in serial]


def test_best_variant_picks_highest_quality_within_budget() -> None:
    small, large = fitted(1.0), fitted(3.0, seed=2)
    space = ConfigSpace(
        {"variant": ["small", "large"], "tp": [1, 2, 4], "batch": [1, 8]},
        derived={"quality": '{"small": 0.71, "large": 0.80}[variant]'},
        model_axis="variant",
    )
    sel = Selector(
        space,
        latency_model={"small": small[1], "large": large[1]},
        energy_model={"small": small[0], "large": large[0]},
    )
    cols = space.to_frame(
        None,
        models={"small": list(small), "large": list(large)},
        as_frame=False,
        input_len=300,
        output_len=50,
    )
    for budget in [*sorted(cols["latency_s"]), 1e-9, 1e9]:
        got = sel.best_variant(budget, input_len=300, output_len=50)
        fits = cols["latency_s"] <= budget
        if fits.any():
            q = np.where(fits, cols["quality"], -np.inf)
            j = int(np.flatnonzero(q == q.max())[0])
            assert (
                got.feasible and got.index == cols["index"][j] and got.value == cols["quality"][j]
            )
        else:
            assert not got.feasible and got.nearest is not None
        want = space.argmin(
            "quality", subject_to={"latency_s": ("<=", budget)}, maximize=True,
            models={"small": list(small), "large": list(large)}, input_len=300, output_len=50,
        )  # fmt: skip
        _same(got, want)


def test_selector_errors() -> None:
    em, lm = fitted()
    with pytest.raises(ValueError, match="'input_len' is an axis"):
        Selector(ConfigSpace({"tp": [1], "input_len": [1, 2]}), em, lm)
    with pytest.raises(ValueError, match="needs an energy_model"):
        Selector(_space())
    with pytest.raises(ValueError, match="either models="):
        Selector(_space(), em, models=[em])
    with pytest.raises(ValueError, match="expected a ConfigSpace"):
        Selector({"tp": [1]}, em)  # type: ignore[arg-type]
    sel = Selector(ConfigSpace(SPACE), em)
    with pytest.raises(ValueError, match="latency_limit_s: needs a latency model"):
        sel.best(1, 1, latency_limit_s=1.0)
    with pytest.raises(ValueError, match="best_variant needs a latency model"):
        sel.best_variant(1.0, input_len=1, output_len=1)
    with pytest.raises(ValueError, match="input_len: must be finite and non-negative"):
        sel.best(-1, 1)
    with pytest.raises(ValueError, match="output_len: must be a number"):
        sel.best(1, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_len_edges: edges must increase"):
        Selector(ConfigSpace(SPACE), em, input_len_edges=[0, 4, 2])
    with pytest.raises(ValueError, match="latency_model: no model for 'A100'"):
        Selector(ConfigSpace(SPACE), {"H100": em, "A100": em}, {"H100": lm})
    with pytest.raises(ValueError, match="GiB of tables"):
        Selector(
            ConfigSpace({"tp": list(range(1, 40_001)), "pp": [1, 2]}),
            em,
            input_len_edges=range(100),
            output_len_edges=range(100),
            batch=1,
        )
    assert "candidates" in repr(sel) and sel.n_candidates == ConfigSpace(SPACE).size
