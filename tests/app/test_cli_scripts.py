"""The ``energycore`` command for scripts: --version, --json, -o, -v/-q, exit codes, fixed bugs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from energycore import LatencyModel, __version__
from energycore.app import cli
from energycore.app.cli import app

runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr)."""
    res = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.output
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli_scripts")
    code, out, err = invoke("simulate", "-o", d / "m.csv", "--samples", "60", "--seed", "1")
    assert code == 0, out + err
    code, out, err = invoke("fit", d / "m.csv", "-o", d / "model.json")
    assert code == 0, out + err
    return d


def test_version():
    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"energycore {__version__}"


def test_every_command_has_json():
    for cmd in ("demo", "simulate", "fit", "predict", "select", "report", "profile"):
        code, out, _ = invoke(cmd, "--help")
        assert code == 0 and "--json" in out, cmd


def test_fit_json_is_one_object_and_nothing_else(workdir, tmp_path):
    code, out, _ = invoke("fit", workdir / "m.csv", "-o", tmp_path / "model.json", "--json")
    assert code == 0
    d = json.loads(out)  # the whole stdout is one JSON document
    assert d["template"] == "energy_v2" and d["n_rows"] > 10
    assert set(d["params"]) == {f"t{i}" for i in range(1, 13)}
    assert 0 <= d["mape"] < 0.2
    assert str(tmp_path / "model.latency.json") in d["files"]


def test_simulate_and_predict_json(workdir, tmp_path):
    code, out, _ = invoke("simulate", "-o", tmp_path / "s.csv", "--samples", "15", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["n_ok"] == 15 and d["n_failed"] > 0 and d["source"] == "simulated"
    n = d["n_ok"] + d["n_failed"]  # failed configurations are rows too, with their reason
    code, out, _ = invoke("predict", workdir / "model.json", tmp_path / "s.csv", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["n"] == n and len(d["predictions"]) == n
    assert all(p["pred_energy_j"] > 0 for p in d["predictions"])


def test_select_json_and_output_files(workdir, tmp_path):
    base = ("select", workdir / "model.json", "--gpus", "8", "--top", "3")
    code, out, _ = invoke(*base, "--latency-limit", "1000", "--json", "-o", tmp_path / "s.csv")
    assert code == 0
    d = json.loads(out)
    ranked = d["configurations"]
    assert [r["rank"] for r in ranked] == [1, 2, 3]
    energies = [r["energy_per_request_j"] for r in ranked]
    assert energies == sorted(energies)
    assert all(r["latency_s"] <= 1000 for r in ranked)
    with (tmp_path / "s.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["energy_per_request_j"]) for r in rows] == pytest.approx(energies)
    code, _, _ = invoke(*base, "-o", tmp_path / "s.json")
    assert code == 0
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["configurations"][0]["tp"] == ranked[0]["tp"]


def test_infeasible_is_exit_code_3_with_a_json_error(workdir):
    args = ("select", workdir / "model.json", "--latency-limit", "0.0001", "--json")
    code, out, err = invoke(*args)
    assert code == 3
    d = json.loads(out)
    assert d["exit_code"] == 3 and "no configuration" in d["error"]
    assert "no configuration" in err


def test_user_and_usage_errors_are_1_and_2(workdir):
    code, out, _ = invoke("fit", workdir / "nothere.csv", "-o", workdir / "x.json", "--json")
    assert code == 1 and json.loads(out) == {
        "error": f"{workdir / 'nothere.csv'}: no such file",
        "exit_code": 1,
    }
    code, _, _ = invoke("select", workdir / "model.json", "--no-such-option")
    assert code == 2


def test_demo_with_an_impossible_limit_is_infeasible_not_nan(tmp_path):
    code, out, err = invoke(
        "demo", "--samples", "12", "--latency-limit", "0.001", "-o", tmp_path, "--json"
    )
    assert code == 3
    assert "nan" not in (out + err).lower()
    assert "latency limit 0.001 s" in json.loads(out)["error"]


def test_demo_json_holds_the_decision(tmp_path):
    code, out, _ = invoke("demo", "--samples", "20", "-o", tmp_path, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["source"] == "simulated"
    assert d["pick"]["tp"] * d["pick"]["pp"] <= 8
    assert d["n_profiled"] == 20
    assert math.isfinite(d["regret"])
    assert len(d["sweep"]) == 9
    assert all(r["latency_optimal_extra"] is not None for r in d["sweep"])


def test_report_json(workdir, tmp_path):
    code, out, _ = invoke(
        "report", workdir / "model.json", workdir / "m.csv", "-o", tmp_path, "--json"
    )
    assert code == 0
    d = json.loads(out)
    assert d["simulated"] is True and 0 < d["r2"] <= 1 and d["n"] > 10


def test_quiet_prints_nothing_and_verbose_logs(workdir, tmp_path):
    code, out, err = invoke("-q", "fit", workdir / "m.csv", "-o", tmp_path / "q.json")
    assert code == 0 and out == "" and err == ""
    assert (tmp_path / "q.json").is_file()
    code, out, err = invoke("-v", "fit", workdir / "m.csv", "-o", tmp_path / "v.json")
    assert code == 0 and "INFO energycore.cli: fitted energy_v2" in err


# ------------------------------------------------------------------ the listed bugs, each fixed
def test_plot_skipped_hint_keeps_the_extra(monkeypatch, capsys):
    from energycore.app.plots import PlotUnavailable

    def draw():
        raise PlotUnavailable("matplotlib is not installed (pip install 'energycore[plot]')")

    cli._plot_or_skip("pareto", draw)
    assert "pip install 'energycore[plot]'" in capsys.readouterr().out


def test_error_messages_keep_square_brackets(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("[space.axes]\ntp = [1]\n")
    code, _, err = invoke("profile", f)
    assert code == 1 and "missing section [server]" in err


def test_fit_seed_help_is_about_the_fit():
    _, out, _ = invoke("fit", "--help")
    assert "multi-start" in out and "measurement noise" not in out


def test_cli_latency_file_loads_as_a_latency_model(workdir):
    lm = LatencyModel.load(workdir / "model.latency.json")
    from energycore import TpotModel, TtftModel

    ttft = TtftModel.load(workdir / "model.ttft.json")
    tpot = TpotModel.load(workdir / "model.tpot.json")
    X = {"tp": [1.0, 4.0], "pp": [1.0, 2.0], "batch": [8.0, 64.0], "input_len": [512.0, 512.0],
         "output_len": [256.0, 128.0]}  # fmt: skip
    want = ttft.predict(X) + np.array(X["output_len"]) * tpot.predict(X)
    assert lm.predict(X) == pytest.approx(want)


def test_coefficient_table_says_fixed_only_for_fixed_coefficients(workdir):
    from energycore import EnergyModel

    m = EnergyModel.load(workdir / "model.json")
    m.fixed_mask_ = (True,) + (False,) * 11
    m.stderr_ = {**m.stderr_, "t1": math.nan, "t2": math.nan}
    t = cli._coef_table(m, "x")
    col = list(t.columns[2].cells)
    assert col[0] == "fixed" and col[1] == "n/a"
    assert "fixed" not in col[1:]


def test_demo_caption_counts_every_run(tmp_path):
    code, out, _ = invoke("demo", "--samples", "20", "-o", tmp_path)
    assert code == 0
    with (tmp_path / "measurements.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    failed = sum(r["status"] == "failed" for r in rows)
    assert failed > 0
    text = " ".join(out.split())  # the caption may wrap
    assert f"{len(rows)} configurations run: 20 measured, {failed} failed" in text
    assert "decision sweep (SIMULATED truth, 9 scenarios" in text
