"""``energycore predict`` / ``select`` / ``report`` with a DiscoveredModel file (issue 14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from energycore import discover
from energycore.data import read_csv
from energycore.fit.discover import DiscoveredModel
from tests.helpers import cli_invoke as invoke


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated measurements, the CLI's fitted models, and a discovered model beside them."""
    d = tmp_path_factory.mktemp("cli-discover")
    code, out = invoke("simulate", "-o", d / "m.csv", "--samples", "80", "--seed", "3")
    assert code == 0, out
    code, out = invoke("fit", d / "m.csv", "-o", d / "model.json")
    assert code == 0, out
    cols = read_csv(d / "m.csv")
    ok = cols["status"] == "ok" if "status" in cols else np.isfinite(cols["energy_j"])
    X = {k: np.asarray(cols[k][ok], dtype=float) for k in
         ("tp", "pp", "batch", "input_len", "output_len")}  # fmt: skip
    m = discover(X, np.asarray(cols["energy_j"][ok], dtype=float), max_terms=5, seed=0).best
    m.set_provenance(gpu="H100", served_model="llama-3.1-70b")
    m.save(d / "disc.json")
    for kind in ("ttft", "tpot"):  # the latency models beside it, as `fit` writes them
        shutil.copy(d / f"model.{kind}.json", d / f"disc.{kind}.json")
    return d


def test_predict_with_a_discovered_model(workdir: Path) -> None:
    code, out = invoke("predict", workdir / "disc.json", workdir / "m.csv", "-o", workdir / "p.csv")
    assert code == 0, out
    got = read_csv(workdir / "p.csv")
    m = DiscoveredModel.load(workdir / "disc.json")
    cols = read_csv(workdir / "m.csv")
    X = {k: cols[k] for k in ("tp", "pp", "batch", "input_len", "output_len")}
    np.testing.assert_allclose(got["pred_energy_j"], m.predict(X), rtol=1e-9)
    assert m.provenance["gpu"] == "H100"


def test_select_with_a_discovered_model(workdir: Path) -> None:
    args = ("select", workdir / "disc.json", "--gpus", "8", "--input-len", "512",
            "--output-len", "256")  # fmt: skip
    code, loose = invoke(*args, "--latency-limit", "1000", "--json")
    assert code == 0, loose
    code, tight = invoke(*args, "--latency-limit", "5", "--json")
    assert code == 0, tight
    a, b = json.loads(loose), json.loads(tight)
    assert a != b
    code, out = invoke(*args, "--latency-limit", "0.001")
    assert code == 3 and "no configuration" in out


def test_report_with_a_discovered_model(workdir: Path) -> None:
    code, out = invoke("report", workdir / "disc.json", workdir / "m.csv", "-o", workdir / "rep")
    assert code == 0, out
    assert (workdir / "rep" / "residuals.png").stat().st_size > 1000
