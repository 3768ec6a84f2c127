"""``energycore select --power-cap``, on the point prediction and on the bound (--confidence)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli_invoke as invoke
from tests.helpers import cli_json as as_json


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("power")
    code, out = invoke("simulate", "-o", d / "m.csv", "--samples", "60", "--seed", "2")
    assert code == 0, out
    code, out = invoke("fit", d / "m.csv", "-o", d / "model.json")
    assert code == 0, out
    return d


def test_power_cap_on_the_point_and_on_the_bound(d: Path) -> None:
    code, free = as_json("select", d / "model.json", "--top", "500", "--power-cap", "1e9")
    assert code == 0 and free["power_cap_w"] == 1e9
    powers = sorted(r["power_w"] for r in free["configurations"])
    cap = powers[len(powers) // 2]
    base = ("select", d / "model.json", "--top", "500", "--power-cap", repr(cap))
    code, point = as_json(*base)
    assert code == 0
    rows = point["configurations"]
    assert rows and all(r["power_w"] <= cap for r in rows)
    assert "power_upper_w" not in rows[0]
    code, bound = as_json(*base, "--confidence", "0.9")
    assert code == 0 and bound["confidence"] == 0.9
    rows_b = bound["configurations"]
    assert rows_b and all(r["power_w"] <= r["power_upper_w"] <= cap for r in rows_b)
    assert len(rows_b) < len(rows)
    code, out = invoke(*base, "--confidence", "0.9")
    assert code == 0 and f"power <= {cap!r} W" in " ".join(out.split())  # the title wraps
    # without the flag the output is as before: no power columns
    code, plain = as_json("select", d / "model.json", "--top", "3")
    assert code == 0 and "power_w" not in plain["configurations"][0]


def test_impossible_power_cap(d: Path) -> None:
    code, out = invoke("select", d / "model.json", "--power-cap", "1", "--confidence", "0.9")
    assert code == 3 and "--power-cap 1.0 W" in out and "lowest power" in out
    assert "bound at confidence 0.9" in out


def test_power_cap_needs_latency_models(d: Path, tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text((d / "model.json").read_text())  # no latency files
    code, out = invoke("select", tmp_path / "model.json", "--power-cap", "1000")
    assert code == 1 and "--power-cap needs latency models" in out


def test_power_cap_bound_needs_recorded_uncertainty(d: Path, tmp_path: Path) -> None:
    for name in ("model.json", "model.ttft.json", "model.tpot.json"):
        doc = json.loads((d / name).read_text())
        if name == "model.json":
            doc["fit"].pop("residual_scale", None)
        (tmp_path / name).write_text(json.dumps(doc))
    code, out = invoke(
        "select", tmp_path / "model.json", "--power-cap", "1e6", "--confidence", "0.9"
    )  # fmt: skip
    assert code == 1 and "--confidence: the EnergyModel records no residual scale" in out, out
    # a latency limit alone still works with that energy model
    code, out = invoke(
        "select", tmp_path / "model.json", "--latency-limit", "50", "--confidence", "0.9"
    )  # fmt: skip
    assert code == 0, out
