"""Selector at a larger size (about 12 000 candidates) against a brute force over every valid
point's columns, and against ConfigSpace.argmin.

The space has a knob that no model reads, so that many candidates share their scores (the build
scores each such class once and expands it: ties must still go to the lowest index), a derived
objective that does read the knob (no sharing: every candidate its own class; sharing it by the
model's axes would give the knob-0 point's cost as every class member's bound, too high for most), a constraint on
the workload (judged per query; it rejects the low knobs, so a class's first members, for
prompts under 15 000 tokens) and a non-monotone objective (every bound is -inf: one run of
tied classes merged by index)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from energycore import ConfigSpace, Selector
from tests.helpers import fitted

EDGES = [0.0, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0]
OBJECTIVES = ["energy_per_request_j", "latency_s", "knob_cost", "tp_minus_input"]


def _space() -> ConfigSpace:
    return ConfigSpace(
        {
            "tp": [1, 2, 4, 8],
            "pp": [1, 2],
            "batch": ConfigSpace.powers_of_two(1, 256),
            "knob": list(range(300)),
        },
        constraints=["tp * pp <= 8", "knob % 3 != 1", "knob * 100 + input_len >= 15000"],
        derived={"knob_cost": "(6 - knob % 7) * tp", "tp_minus_input": "tp - input_len / 1000"},
    )


MODELS = list(fitted(1.0, seed=0))
SEL: dict[str, Selector] = {}


def _selector(objective: str) -> Selector:
    if objective not in SEL:
        SEL[objective] = Selector(
            _space(), models=MODELS, objective=objective,
            input_len_edges=EDGES, output_len_edges=EDGES,
        )  # fmt: skip
    return SEL[objective]


def _brute(objective: str, lin: float, lout: float, lat: float, cap: float) -> int:
    """Index of the feasible point with the smallest objective (ties: lowest index), -1 if none,
    from every valid point's columns."""
    cols = _space().to_frame(None, models=MODELS, as_frame=False, input_len=lin, output_len=lout)
    ok = (cols["latency_s"] <= lat) & (cols["power_w"] <= cap) & ~np.isnan(cols[objective])
    if not ok.any():
        return -1
    v = np.where(ok, cols[objective], np.inf)
    return int(cols["index"][np.flatnonzero(v == v.min())[0]])


def _queries(n: int, seed: int) -> list[tuple[float, float, float, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lin = float(rng.choice([rng.integers(0, 20000), rng.uniform(0, 1e5), 1024.0]))
        lout = float(rng.choice([rng.integers(0, 4000), rng.uniform(0, 1e5), 64.0]))
        out.append((lin, lout, float(rng.uniform(0.05, 40)), float(rng.uniform(50, 6000))))
    return out


def test_candidates_are_the_fixed_constraints() -> None:
    sel = _selector("energy_per_request_j")
    # tp * pp <= 8: 7 of 8 (tp, pp); knob % 3 != 1: 200 of 300; the workload constraint is not
    # fixed, so it does not filter candidates.
    assert sel.n_candidates == 7 * 9 * 200
    assert _selector("knob_cost").n_candidates == sel.n_candidates


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_best_equals_brute_force_and_argmin(objective: str) -> None:
    sel = _selector(objective)
    space = _space()
    feasible = 0
    for lin, lout, lat, cap in _queries(25, seed=len(objective)):
        got = sel.best(lin, lout, latency_limit_s=lat, power_cap_w=cap)
        want = space.argmin(
            objective, subject_to={"latency_s": ("<=", lat), "power_w": ("<=", cap)},
            models=MODELS, input_len=lin, output_len=lout,
        )  # fmt: skip
        assert (got.feasible, got.index, got.nearest_index) == (
            want.feasible, want.index, want.nearest_index,
        ), (objective, lin, lout, lat, cap)  # fmt: skip
        assert got.value == want.value or (math.isnan(got.value) and math.isnan(want.value))
        assert got.index == _brute(objective, lin, lout, lat, cap)
        feasible += got.feasible
    assert feasible > 0  # the queries reach feasible answers (and, below, infeasible ones)


def test_ties_go_to_the_lowest_index() -> None:
    # knob_cost = (6 - knob % 7) * tp is 0 for every knob = 6 mod 7: many tied optima, none of
    # them the first point of its class (knob 0), whose cost is the largest.
    sel = _selector("knob_cost")
    got = sel.best(2000.0, 100.0, latency_limit_s=1e9, power_cap_w=1e9)
    want = _brute("knob_cost", 2000.0, 100.0, 1e9, 1e9)
    assert got.feasible and got.value == 0.0 and got.index == want
    cfg: Any = got.config
    assert cfg["knob"] % 7 == 6 and cfg["knob"] % 3 != 1


def test_infeasible_queries_give_argmins_nearest_point() -> None:
    sel = _selector("energy_per_request_j")
    space = _space()
    for lin, lout in [(512.0, 128.0), (30000.0, 2000.0), (2e5, 10.0)]:
        got = sel.best(lin, lout, latency_limit_s=1e-6, power_cap_w=1.0)
        want = space.argmin(
            "energy_per_request_j", subject_to={"latency_s": ("<=", 1e-6), "power_w": ("<=", 1.0)},
            models=MODELS, input_len=lin, output_len=lout,
        )  # fmt: skip
        assert not got.feasible
        assert (got.nearest_index, got.violation) == (want.nearest_index, want.violation)
