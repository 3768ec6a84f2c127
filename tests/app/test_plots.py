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


def test_pareto_figure_labels_baselines_and_the_saving() -> None:
    import matplotlib.pyplot as plt

    lat = np.array([1.0, 2.0, 3.0, 4.0, 8.0])
    en = np.array([50.0, 30.0, 20.0, 25.0, 10.0])
    fig = plots.pareto_figure(
        lat, en, measured_latency_s=lat[:2], measured_energy_j=en[:2],
        measured_label="measured at 512 -> 256 tokens (2 of 9)", pick=2, optimum=2,
        baselines={"latency-optimal": 0, "max throughput": 3, "absent": None},
        latency_limit_s=5.0,
    )  # fmt: skip
    try:
        ax = fig.axes[0]
        assert ax.get_xlabel() == "batch latency (s)"
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        for want in ("latency-optimal", "max throughput", "pick", "true optimum",
                     "measured at 512 -> 256 tokens (2 of 9)"):  # fmt: skip
            assert want in labels
        assert "absent" not in labels
        notes = [c.get_text() for c in ax.texts]
        assert notes == [
            "pick uses 60 % less energy than latency-optimal\n"
            "pick uses 20 % less energy than max throughput"
        ]
        assert ax.xaxis.get_major_formatter()(3.0, 0) == "3"  # not 3x10^0
        # the legend sits outside the axes, so it hides no data
        fig.canvas.draw()
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    finally:
        plt.close(fig)


def test_report_draws_one_pareto_front_per_workload_shape(tmp_path: Path) -> None:
    runner = CliRunner()
    d = tmp_path
    assert (
        runner.invoke(app, ["simulate", "-o", str(d / "m.csv"), "--samples", "40"]).exit_code == 0
    )
    assert runner.invoke(app, ["fit", str(d / "m.csv"), "-o", str(d / "model.json")]).exit_code == 0
    res = runner.invoke(
        app, ["report", str(d / "model.json"), str(d / "m.csv"), "-o", str(d / "r")]
    )
    assert res.exit_code == 0, res.output
    import csv

    with (d / "m.csv").open(newline="") as fh:
        shapes = {(float(r["input_len"]), float(r["output_len"])) for r in csv.DictReader(fh)
                  if r["status"] == "ok"}  # fmt: skip
    files = sorted(p.name for p in (d / "r").glob("pareto*.png"))
    assert len(shapes) > 1
    assert files == sorted(f"pareto_{a:g}x{b:g}.png" for a, b in shapes)


def test_a_baseline_that_is_the_pick_says_so() -> None:
    import matplotlib.pyplot as plt

    lat, en = np.array([1.0, 2.0, 4.0]), np.array([9.0, 4.0, 2.0])
    fig = plots.pareto_figure(lat, en, pick=1, baselines={"max throughput": 1})
    try:
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert "max throughput (= pick)" in labels
        assert [c.get_text() for c in fig.axes[0].texts] == [
            "pick uses 0 % less energy than max throughput"
        ]
    finally:
        plt.close(fig)
