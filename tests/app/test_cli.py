"""The ``energycore`` command, driven end to end on files it wrote itself."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers import cli_invoke as invoke


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated measurement CSV and the models fitted to it, written by the CLI."""
    d = tmp_path_factory.mktemp("cli")
    code, out = invoke("simulate", "-o", d / "m.csv", "--samples", "60", "--seed", "1")
    assert code == 0, out
    code, out = invoke("fit", d / "m.csv", "-o", d / "model.json")
    assert code == 0, out
    return d


def test_help_everywhere() -> None:
    code, out = invoke("--help")
    assert code == 0
    for cmd in ("demo", "simulate", "fit", "predict", "select", "report"):
        assert cmd in out
        code, sub = invoke(cmd, "--help")
        assert code == 0 and "Usage" in sub


def test_demo_prints_the_table_and_writes_plot_and_csv(tmp_path: Path) -> None:
    out_dir = tmp_path / "demo"
    code, out = invoke("demo", "--samples", "30", "--seed", "2", "-o", out_dir)
    assert code == 0, out
    assert "SIMULATED 8 x H100" in out
    for word in ("pick (model)", "true optimum", "latency-optimal", "max throughput", "regret"):
        assert word in out
    meas = rows(out_dir / "measurements.csv")
    ok = [r for r in meas if r["status"] == "ok"]
    assert len(ok) == 30
    assert {r["source"] for r in meas} == {"simulated"}
    assert all(float(r["energy_j"]) > 0 for r in ok)
    assert (out_dir / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out_dir / "model.json").read_text())["template"] == "energy_v2"


def test_demo_options_choose_gpu_model_and_workload(tmp_path: Path) -> None:
    code, out = invoke(
        "demo", "--gpu", "B200", "--model", "llama-3.1-8b", "--gpus", "4", "--samples", "20",
        "--input-len", "1024", "--output-len", "128", "--latency-limit", "30", "-o", tmp_path,
    )  # fmt: skip
    assert code == 0, out
    assert "SIMULATED 4 x B200 serving llama-3.1-8b" in out
    assert "1024 prompt -> 128 output" in out and "limit 30 s" in out


def test_simulate_writes_failures_with_their_reason(workdir: Path) -> None:
    meas = rows(workdir / "m.csv")
    failed = [r for r in meas if r["status"] == "failed"]
    assert failed and all(r["reason"] for r in failed)
    assert all(r["energy_j"] == "" for r in failed)


def test_simulate_a_plan_file(tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("tp,pp,batch,input_len,output_len\n4,1,8,512,128\n1,1,8,512,128\n")
    code, out = invoke("simulate", "--plan", plan, "-o", tmp_path / "out.csv")
    assert code == 0, out
    meas = rows(tmp_path / "out.csv")
    assert [r["status"] for r in meas] == ["ok", "failed"]
    assert "does not fit in memory" in meas[1]["reason"]


def test_fit_writes_energy_and_latency_models(workdir: Path) -> None:
    for name in ("model.json", "model.ttft.json", "model.tpot.json"):
        assert json.loads((workdir / name).read_text())["format"] == "energycore.model"
    fmt = json.loads((workdir / "model.latency.json").read_text())["format"]
    assert fmt == "energycore.latency_model"


def test_predict_on_its_own_measurements(workdir: Path) -> None:
    code, out = invoke(
        "predict", workdir / "model.json", workdir / "m.csv", "-o", workdir / "p.csv"
    )
    assert code == 0, out
    pred = rows(workdir / "p.csv")
    ok = [r for r in pred if r["status"] == "ok"]
    err = [abs(float(r["pred_energy_j"]) / float(r["energy_j"]) - 1) for r in ok]
    assert sum(err) / len(err) < 0.25
    assert all(float(r["pred_latency_s"]) > 0 for r in ok)


def test_select_under_a_latency_limit(workdir: Path) -> None:
    args = ("select", workdir / "model.json", "--gpus", "8", "--input-len", "512",
            "--output-len", "256", "--gpu", "H100", "--served-model", "llama-3.1-70b")  # fmt: skip
    code, loose = invoke(*args, "--latency-limit", "1000")
    assert code == 0, loose
    code, tight = invoke(*args, "--latency-limit", "5")
    assert code == 0, tight
    assert "rank" in tight and tight != loose
    code, out = invoke(*args, "--latency-limit", "0.001")
    assert code == 3 and "no configuration" in out  # 3: infeasible


def test_report_writes_residual_and_pareto_plots(workdir: Path) -> None:
    code, out = invoke("report", workdir / "model.json", workdir / "m.csv", "-o", workdir / "rep")
    assert code == 0, out
    assert "SIMULATED" in out
    assert (workdir / "rep" / "residuals.png").stat().st_size > 1000
    fronts = list((workdir / "rep").glob("pareto_*.png"))  # one per workload shape
    assert fronts and all(p.stat().st_size > 1000 for p in fronts)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fit", "{d}/nothere.csv", "-o", "{d}/x.json"), "nothere.csv: no such file"),
        (("fit", "{d}/bad.csv", "-o", "{d}/x.json"), "missing column(s) tp, pp"),
        (("fit", "{d}/empty.csv", "-o", "{d}/x.json"), "no rows"),
        (("predict", "{d}/bad.json", "{d}/m.csv"), "not an energycore model"),
        (("predict", "{d}/notjson.json", "{d}/m.csv"), "is not valid JSON"),
        (("predict", "{d}/model.json", "{d}/bad.csv"), "missing column(s)"),
        (("demo", "--gpu", "H999", "-o", "{d}/x"), "unknown name 'H999'"),
        (("demo", "--model", "llama-3.1-405b", "--gpus", "1", "-o", "{d}/x"), "the fit needs"),
        (("select", "{d}/noprov.json", "--gpu", "H100"), "--gpu and --served-model go together"),
        (
            ("simulate", "--plan", "{d}/badplan.csv", "-o", "{d}/x.csv"),
            "'batch' must be a positive",
        ),
        (("simulate", "--plan", "{d}/textplan.csv", "-o", "{d}/x.csv"), "'pp' must be numeric"),
        (("select", "{d}/energy_only.json", "--latency-limit", "3"), "needs latency models"),
    ],
)
def test_bad_files_and_options_give_one_line_and_exit_code(
    workdir: Path, args: tuple[str, ...], message: str
) -> None:
    (workdir / "bad.csv").write_text("a,b\n1,2\n")
    (workdir / "empty.csv").write_text("tp,pp\n")
    (workdir / "badplan.csv").write_text("tp,pp,batch\n1,1,4\n1,1,2.5\n")
    (workdir / "textplan.csv").write_text("tp,pp,batch\n1,one,4\n")
    (workdir / "bad.json").write_text('{"x": 1}')
    (workdir / "notjson.json").write_text("{")
    (workdir / "energy_only.json").write_text((workdir / "model.json").read_text())
    noprov = json.loads((workdir / "model.json").read_text())
    del noprov["provenance"]  # a file from before provenance was recorded
    (workdir / "noprov.json").write_text(json.dumps(noprov))
    code, out = invoke(*(a.format(d=workdir) for a in args))
    assert code != 0
    assert message in out
    assert len(out.strip().splitlines()) <= 2  # one line (rich may wrap a long path)


def test_bad_option_values_are_usage_errors(workdir: Path) -> None:
    code, out = invoke("select", workdir / "model.json", "--gpus", "0")
    assert code == 2 and "--gpus" in out
    code, out = invoke("demo", "--samples", "3")
    assert code == 2 and "--samples" in out


def test_main_is_the_console_entry_point(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import energycore

    # the subprocess imports the same energycore as this test (installed, or the source tree)
    env = {**os.environ, "PYTHONPATH": str(Path(energycore.__file__).resolve().parents[1])}
    code = "import sys; from energycore.app.cli import main; sys.argv = ['energycore', '--help']; main()"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
        check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "demo" in res.stdout and "select" in res.stdout
