"""Plots are written as PNGs; without matplotlib they are skipped with a message."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from energycore.app import plots
from energycore.app.cli import app

PNG = b"\x89PNG\r\n\x1a\n"


def test_pareto_and_residual_plots_write_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(1, 10, 50)
    en = 1000 / lat * rng.uniform(1, 2, 50)
    p = plots.pareto_plot(
        tmp_path / "p.png", lat, en, predicted_latency_s=lat, predicted_energy_j=en * 1.1,
        measured_latency_s=lat[:5], measured_energy_j=en[:5], pick=3, optimum=4,
        latency_limit_s=5.0, title="simulated",
    )  # fmt: skip
    r = plots.residual_plot(tmp_path / "r.png", en, en * rng.uniform(0.9, 1.1, 50))
    for f in (p, r):
        assert f.read_bytes()[:8] == PNG


def test_without_matplotlib_plots_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(plots.PlotUnavailable, match="matplotlib is not installed"):
        plots.pareto_plot(tmp_path / "x.png", np.ones(2), np.ones(2))
    res = CliRunner().invoke(app, ["demo", "--samples", "20", "-o", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    assert "pareto plot skipped" in res.output
    assert (tmp_path / "d" / "measurements.csv").is_file()
    assert not (tmp_path / "d" / "pareto.png").exists()
