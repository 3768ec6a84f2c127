"""Adversarial cases of issue 18 on the configuration space: each was a wrong answer or a crash."""

from __future__ import annotations

import pytest

from energycore import ConfigSpace, EnergyModel
from energycore.space.constraints import MAX_DEPTH, Expression


def test_integers_past_2_53_are_refused_and_below_exact() -> None:
    for bad in (2**70, 2**53 + 1, -(2**53) - 1):
        with pytest.raises(ValueError, match=r"past 2\*\*53"):
            ConfigSpace({"batch": [1, bad]})
    s = ConfigSpace({"batch": [1, 2**53], "x": [2**53 - 1]})
    d = s.to_frame(as_frame=False)
    assert [int(v) for v in d["batch"]] == [1, 2**53]
    assert int(d["x"][0]) == 2**53 - 1
    with pytest.raises(ValueError, match=r"past 2\*\*53"):
        ConfigSpace({"batch": [1, 2]}, fixed={"big": 2**60})
    with pytest.raises(ValueError, match=r"integer past 2\*\*53"):
        ConfigSpace({"batch": [1, 2]}, constraints=["batch < 9007199254740993"])
    with pytest.raises(ValueError, match="too large for a float64"):
        ConfigSpace({"x": [0.5, 10**400]})


def test_text_axes_compare_as_text() -> None:
    s = ConfigSpace({"gpu": ["A", "B"], "gpu2": ["B", "A", "C"]}, constraints=["gpu == gpu2"])
    d = s.to_frame(as_frame=False)
    assert list(zip(d["gpu"], d["gpu2"])) == [("A", "A"), ("B", "B")]
    s = ConfigSpace({"gpu": ["A", "B"], "gpu2": ["B", "A"]}, constraints=["gpu != gpu2"])
    d = s.to_frame(as_frame=False)
    assert sorted(zip(d["gpu"], d["gpu2"])) == [("A", "B"), ("B", "A")]
    s = ConfigSpace({"gpu": ["A"], "gpu2": ["B"]}, constraints=["gpu == gpu2"])
    assert s.count_valid() == 0
    same = ConfigSpace({"gpu": ["A", "B"], "g2": ["A", "B"]}, constraints=["gpu == g2"])
    assert same.count_valid() == 2


@pytest.mark.parametrize(
    "constraint",
    ["gpu < 1", "gpu == 0", "gpu + 1 > 0", "gpu < gpu2", "gpu in (0, 1)", "abs(gpu) > 0"],
)
def test_numbers_and_order_on_text_axes_are_refused(constraint: str) -> None:
    with pytest.raises(ValueError, match="categorical"):
        ConfigSpace({"gpu": ["A", "B"], "gpu2": ["B", "A"]}, constraints=[constraint])


def test_identifiers_that_nfkc_normalise_are_refused() -> None:
    with pytest.raises(ValueError, match="NFKC"):
        ConfigSpace({"ℌ": [1, 2], "H": [0, 5]}, constraints=["ℌ > 1"])
    with pytest.raises(ValueError, match="NFKC"):
        ConfigSpace({"H": [0, 5]}, constraints=["ℌ > 1"])
    # non-ASCII names in normal form and non-ASCII category values are fine
    s = ConfigSpace({"größe": [1, 2], "gpu": ["ﬁ-gpu", "b"]}, constraints=['gpu == "ﬁ-gpu"'])
    assert s.count_valid() == 2


@pytest.mark.parametrize(
    "source",
    [
        "+".join(["tp"] * 5000),
        "-" * 20000 + "1",
        "-" * 9000 + "1",
        "not " * 3000 + "1",
        "abs(" * (MAX_DEPTH + 5) + "tp" + ")" * (MAX_DEPTH + 5) + " > 0",
        " + ".join(["tp"] * (MAX_DEPTH + 5)) + " > 0",
    ],
)
def test_constraint_size_and_depth_limits(source: str) -> None:
    with pytest.raises(ValueError, match=r"too (long|complex)"):
        Expression(source)


def test_huge_space_with_nothing_valid_does_not_exhaust_memory() -> None:
    s = ConfigSpace(
        {"a": range(2**20), "b": range(2**20), "c": range(2**20)}, constraints=["a < 0"]
    )
    assert s.size == 2**60
    assert s.count_valid() == 0
    assert len(s.to_frame(as_frame=False)["index"]) == 0
    assert s.argmin("c").feasible is False
    assert len(s.top_k("c", 3, as_frame=False)["index"]) == 0
    assert len(s.pareto_front(["b", "c"], as_frame=False)["index"]) == 0
    # and a huge space with a few valid points finds them all, in order
    s = ConfigSpace(
        {"a": range(2**20), "b": range(2**20), "c": range(2**20)},
        constraints=["a == 5", "b == 7", "c < 3"],
    )
    d = s.to_frame(as_frame=False)
    assert list(d["c"]) == [0, 1, 2] and s.count_valid() == 3
    assert s.argmin("c", maximize=True).config["c"] == 2


def test_feature_axes_past_physical_bounds_are_refused() -> None:
    model = EnergyModel().fit(*_data())
    s = ConfigSpace({"batch": [1, 2**30]}, fixed={"input_len": 512, "output_len": 64})
    with pytest.raises(ValueError, match="physical bound"):
        s.argmin("energy_j", models=model)
    s = ConfigSpace({"batch": [1, 2]})
    with pytest.raises(ValueError, match="physical bound"):
        s.argmin("energy_j", models=model, input_len=1e300, output_len=64)


def _data() -> tuple[dict, list]:
    from energycore.simulate import Workload

    w = Workload(model="llama-3.1-8b", noise=0.0)
    rows = [
        {"tp": tp, "pp": pp, "batch": b, "input_len": il, "output_len": ol}
        for tp in (1, 2, 4)
        for pp in (1, 2)
        for b in (1, 8, 64)
        for il in (128, 1024)
        for ol in (64, 512)
    ]
    out = [w(dict(r), None) for r in rows]
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    return cols, [o["energy_j"] for o in out]
