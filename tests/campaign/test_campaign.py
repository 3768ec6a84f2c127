"""energycore.campaign.campaign: plans, the journal, run/resume, failures, meters and export."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energycore import ConfigSpace, EnergyModel, NoGPUError
from energycore.campaign import plans as _plans
from energycore.campaign.campaign import Campaign, read_journal
from energycore.campaign.journal import config_key
from energycore.data import JournalWarning
from energycore.measure import GPULostError, Measurement
from energycore.simulate import Workload

try:
    import pandas as pd
except ImportError:  # the tests that need it are marked
    pd = None
needs_pandas = pytest.mark.skipif(pd is None, reason="needs pandas (to_frame, DataFrame input)")

SPACE = ConfigSpace(
    {
        "tp": [1, 2, 4, 8],
        "pp": [1, 2, 4],
        "batch": [1, 2, 4, 8, 16, 32, 64, 128],
        "input_len": [128, 512, 2048],
        "output_len": [64, 256, 1024],
    },
    constraints=["tp*pp <= 8"],
)
SMALL = ConfigSpace(
    {"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": [1, 8, 64]},
    constraints=["tp*pp <= 8"],
    fixed={"input_len": 512, "output_len": 128},
)


def sim() -> Workload:
    return Workload(model="llama-3.1-8b")


class Counting:
    """A simulator wrapper that counts calls and fails where asked."""

    requires_meter = False

    def __init__(self, fail_tp: int | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.inner = sim()
        self.fail_tp = fail_tp

    def __call__(self, config: dict[str, Any], meter: Any) -> dict[str, Any]:
        self.calls.append(config)
        if config["tp"] == self.fail_tp:
            raise RuntimeError(f"tp={self.fail_tp} crashed")
        return self.inner(config, meter)


# ------------------------------------------------------------------ plans
@pytest.mark.parametrize("plan", ["random", "latin_hypercube", "d_optimal"])
def test_plans_give_n_distinct_valid_points(plan: str) -> None:
    c = Campaign(SPACE, sim(), plan=plan, n=50, seed=3)
    keys = {config_key(x) for x in c.configs}
    assert len(c.configs) == 50 and len(keys) == 50
    for x in c.configs:
        assert x["tp"] * x["pp"] <= 8 and set(x) == {"tp", "pp", "batch", "input_len", "output_len"}
    again = Campaign(SPACE, sim(), plan=plan, n=50, seed=3)
    assert again.configs == c.configs  # reproducible from the seed


def test_d_optimal_identifies_all_twelve_coefficients() -> None:
    d_opt = _plans.design_matrix(Campaign(SPACE, sim(), plan="d_optimal", n=50).configs)
    assert np.linalg.matrix_rank(d_opt) == 12
    dets = [
        _plans.log_det_information(
            _plans.design_matrix(Campaign(SPACE, sim(), plan=p, n=50, seed=s).configs)
        )
        for p in ("random", "latin_hypercube")
        for s in range(3)
    ]
    assert _plans.log_det_information(d_opt) > max(dets) + 5  # e^5 times more information


@needs_pandas
def test_d_optimal_prior_and_missing_features() -> None:
    model = EnergyModel()
    info = model.template_info()
    prior = {p["name"]: p["typical"] for p in info["params"]}
    a = Campaign(SPACE, sim(), plan="d_optimal", n=20, prior=prior).configs
    b = Campaign(SPACE, sim(), plan="d_optimal", n=20).configs
    assert a == b
    with pytest.raises(ValueError, match="prior: missing coefficient"):
        Campaign(SPACE, sim(), plan="d_optimal", n=20, prior={"t1": 1.0})
    with pytest.raises(ValueError, match="prior: expected"):
        Campaign(SPACE, sim(), plan="d_optimal", n=20, prior=[1.0, 2.0])
    with pytest.raises(ValueError, match="not fitted"):
        Campaign(SPACE, sim(), plan="d_optimal", n=20, prior=EnergyModel())
    frame = Campaign(SPACE, sim(), n=60, seed=5).run().to_frame()
    for template in ("energy_v1", "energy_v2"):  # a fitted model's own template is used
        fitted = EnergyModel(template=template).fit(frame, "energy_j")
        plan = Campaign(SPACE, sim(), plan="d_optimal", n=50, prior=fitted).configs
        assert np.linalg.matrix_rank(_plans.design_matrix(plan, fitted)) == 12
    no_len = ConfigSpace({"tp": [1, 2], "batch": [1, 2, 4]})
    with pytest.raises(ValueError, match="missing input_len, output_len"):
        Campaign(no_len, sim(), plan="d_optimal", n=3)


def test_latin_hypercube_spreads_over_every_axis() -> None:
    c = Campaign(SPACE, sim(), plan="latin_hypercube", n=24, seed=1)
    for axis in ("tp", "batch", "input_len", "output_len"):
        assert len({x[axis] for x in c.configs}) >= 3, axis


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"plan": "sobol"}, "unknown plan 'sobol'"),
        ({"n": 0}, "n: must be positive"),
        ({"n": -3}, "n: must be positive"),
        ({"n": 2.5}, "n: expected a positive integer"),
        ({"n": 22}, "only 21 valid"),
        ({"executor": "dask"}, "executor"),
        ({"seed": -1}, "seed"),
        ({"warmup": -1}, "warmup"),
        ({"retries": 1.5}, "retries"),
        ({"cooldown_s": -1.0}, "cooldown_s"),
        ({"resources": 3}, "resources"),
        ({"plan": "all", "n": 3}, "plan 'all'"),
        ({"executor": "ray", "meter": object()}, "each task opens its own meter"),
    ],
)
def test_bad_campaign_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Campaign(SMALL, sim(), **kwargs)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="workload: expected a callable"):
        Campaign(SMALL, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        Campaign([], sim())
    with pytest.raises(ValueError, match="more than once"):
        Campaign([{"tp": 1}, {"tp": 1.0}], sim(), n=None)
    with pytest.raises(ValueError, match=r"space_or_configs\[1\]"):
        Campaign([{"tp": 1}, {"tp": [1]}], sim(), n=None)
    with pytest.raises(ValueError, match="expected a ConfigSpace"):
        Campaign("tp=1", sim())
    with pytest.raises(ValueError, match="no valid configuration"):
        Campaign(ConfigSpace({"tp": [2, 4]}, constraints=["tp > 8"]), sim())


@needs_pandas
def test_list_of_configs_and_plan_all() -> None:
    cfgs = [{"tp": 8, "pp": 1, "batch": b, "input_len": 256, "output_len": 64} for b in (1, 4, 16)]
    c = Campaign(cfgs, sim(), plan="all", n=None, progress=False).run()
    assert [r["config"]["batch"] for r in c.records] == [1, 4, 16]
    frame = Campaign(pd.DataFrame(cfgs), sim(), n=2).configs
    assert len(frame) == 2 and frame[0] in cfgs


# ------------------------------------------------------------------ running and the journal
@needs_pandas
def test_run_gives_a_frame_the_energy_model_fits(tmp_path: Path) -> None:
    c = Campaign(SPACE, sim(), plan="d_optimal", n=50, journal=tmp_path / "j.jsonl").run()
    assert c.done
    f = c.to_frame()
    assert len(f) == 50 and (f["method"] == "simulated").all()
    for col in ("tp", "pp", "batch", "input_len", "output_len", "energy_j", "latency_s"):
        assert col in f.columns
    model = EnergyModel().fit(f, "energy_j")
    pred = model.predict(f)
    assert np.median(np.abs(np.log(pred / f["energy_j"]))) < 0.06  # measured 0.028


@needs_pandas
def test_journal_format(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    c = Campaign(SMALL, sim(), n=5, seed=2, journal=path).run()
    lines = path.read_text().splitlines()
    assert len(lines) == 6
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["plan"] == "random" and header["n"] == 5
    assert header["configs"] == c.configs and len(header["campaign_id"]) == 32
    recs = [json.loads(x) for x in lines[1:]]
    assert [r["key"] for r in recs] == [config_key(x) for x in c.configs]
    assert all(r["status"] == "ok" and r["result"]["energy_j"] > 0 for r in recs)
    h, r2 = read_journal(path)
    assert h == header and r2 == recs
    # the simulator's own input/output lengths are recorded when the config leaves them out
    no_len = Campaign(ConfigSpace({"tp": [8], "batch": [1, 2]}), sim(), n=None).run()
    assert set(no_len.to_frame()["output_len"]) == {sim().output_len}


def test_resume_skips_what_is_done(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = Counting()
    c = Campaign(SMALL, w, n=8, journal=path)
    c.configs = c.configs[:3]  # a first session that stopped after three configurations
    c._hash = Campaign(SMALL, w, n=8)._hash
    c.run()
    assert len(w.calls) == 3
    w2 = Counting()
    c2 = Campaign(SMALL, w2, n=8, journal=path).resume()
    assert len(w2.calls) == 5 and c2.done
    assert [x for x in w2.calls] == Campaign(SMALL, w, n=8).configs[3:]
    _, recs = read_journal(path)
    assert sorted(r["key"] for r in recs) == sorted(config_key(x) for x in c2.configs)
    w3 = Counting()
    Campaign(SMALL, w3, n=8, journal=path).resume()
    assert w3.calls == []
    with pytest.raises(ValueError, match=r"already holds 8 result\(s\); call resume"):
        Campaign(SMALL, w3, n=8, journal=path).run()
    with pytest.raises(ValueError, match="different plan"):
        Campaign(SMALL, w3, n=8, seed=1, journal=path).resume()
    header_only = tmp_path / "h.jsonl"
    header_only.write_text(path.read_text().splitlines(keepends=True)[0])
    with pytest.raises(ValueError, match="different plan"):
        Campaign(SMALL, w3, n=3, journal=header_only).run()
    with pytest.raises(ValueError, match="no journal"):
        Campaign(SMALL, w3, n=8).resume()


def test_partial_last_line_is_ignored_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Campaign(SMALL, sim(), n=6, journal=path).run()
    lines = path.read_text().splitlines(keepends=True)
    # keep the header and two records, then half of the third record, no newline
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    _, recs = read_journal(path)
    assert len(recs) == 2
    c = Campaign(SMALL, sim(), n=6, journal=path).resume()
    _, recs = read_journal(path)
    assert len(recs) == 6 and len({r["key"] for r in recs}) == 6 and c.done
    text = path.read_text()
    assert text.endswith("\n") and all(json.loads(x) for x in text.splitlines())


def test_damaged_journal_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Campaign(SMALL, sim(), n=3, journal=path).run()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{broken\n" + "".join(lines[1:]))
    with pytest.warns(JournalWarning, match=r"j\.jsonl: line 2 skipped: not valid JSON"):
        _, recs = read_journal(path)
    assert len(recs) == 3
    (tmp_path / "other.jsonl").write_text('{"type": "result", "key": "x"}\n')
    with pytest.raises(ValueError, match="not an energycore journal"):
        read_journal(tmp_path / "other.jsonl")
    assert read_journal(tmp_path / "missing.jsonl") == (None, [])


@needs_pandas
def test_a_failing_configuration_is_recorded_and_the_campaign_goes_on(tmp_path: Path) -> None:
    w = Counting(fail_tp=2)
    c = Campaign(SMALL, w, n=None, journal=tmp_path / "j.jsonl").run()
    n_fail = sum(x["tp"] == 2 for x in c.configs)
    assert n_fail > 0 and len(w.calls) == len(c.configs)
    failed = [r for r in c.records if r["status"] == "failed"]
    assert len(failed) == n_fail
    assert all(r["error"] == "RuntimeError: tp=2 crashed" for r in failed)
    assert len(c.to_frame()) == len(c.configs) - n_fail
    full = c.to_frame(include_failed=True)
    assert set(full["status"]) == {"ok", "failed"} and len(full) == len(c.configs)
    # an invalid configuration of the simulator is a failure with its reason, too
    big = Campaign([{"tp": 1, "pp": 1, "batch": 64}], Workload(), n=None).run()
    assert "does not fit in memory" in big.records[0]["error"]


def test_warmup_cooldown_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    w = Counting()
    t0 = time.perf_counter()
    Campaign(SMALL, w, n=3, warmup=2, cooldown_s=0.02, progress=True).run()
    assert len(w.calls) == 9
    assert time.perf_counter() - t0 >= 0.04
    assert "3/3" in capsys.readouterr().err


@needs_pandas
def test_export_csv_and_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = Campaign(SMALL, sim(), n=4).run()
    c.to_csv(tmp_path / "r.csv")
    back = pd.read_csv(tmp_path / "r.csv")
    assert len(back) == 4 and back["energy_j"].tolist() == pytest.approx(
        c.to_frame()["energy_j"].tolist()
    )
    pytest.importorskip("pyarrow")
    c.to_parquet(tmp_path / "r.parquet")
    assert pd.read_parquet(tmp_path / "r.parquet")["tp"].tolist() == c.to_frame()["tp"].tolist()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"energycore\[parquet\]"):
        c.to_parquet(tmp_path / "x.parquet")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        c.to_frame()
    assert len(c.records) == 4  # the records need no pandas


# ------------------------------------------------------------------ real meters (fake NVML)
@needs_pandas
def test_meter_workload_with_windows(fake_nvml: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_nvml.setenv("FAKE_NVML_DEVICES", "2")
    fake_nvml.setenv("FAKE_NVML_POWER_W", "200,100")

    def workload(config: dict[str, Any], meter: Any) -> dict[str, Any]:
        meter.begin("prefill")
        time.sleep(0.002 * config["batch"] ** 0.5)
        prefill = meter.end("prefill")
        with meter.window("decode") as d:
            time.sleep(0.005)
        return {"prefill": prefill, "decode": d.measurement, "tokens": 7}

    c = Campaign(SMALL, workload, n=3, journal=tmp_path / "j.jsonl").run()
    f = c.to_frame()
    assert (f["method"] == "counter").all() and (f["tokens"] == 7).all()
    assert (f["prefill_energy_j"] > 0).all() and (f["decode_method"] == "counter").all()
    assert (f["energy_j"] >= f["prefill_energy_j"] + f["decode_energy_j"] - 1e-3).all()
    assert f["avg_power_w"].to_numpy() == pytest.approx(300, rel=0.05)
    assert set(f.columns) >= {"energy_gpu0_j", "energy_gpu1_j", "latency_s"}

    def returns_measurement(config: dict[str, Any], meter: Any) -> Measurement:
        with meter.window("x") as w:
            time.sleep(0.001)
        assert w.measurement is not None
        return w.measurement

    f2 = Campaign(SMALL, returns_measurement, n=2, gpus=[1]).run().to_frame()
    assert "energy_gpu1_j" in f2.columns and "energy_gpu0_j" not in f2.columns
    bad = Campaign(SMALL, lambda c, m: 42, n=1).run()
    assert "workload returned int" in bad.records[0]["error"]


def test_meter_workload_without_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENERGYCORE_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1")
    c = Campaign(SMALL, lambda cfg, meter: None, n=2, journal=tmp_path / "j.jsonl")
    with pytest.raises(NoGPUError):
        c.run()
    assert read_journal(tmp_path / "j.jsonl")[1] == []  # nothing made up


def test_a_lost_gpu_stops_the_campaign_unrecorded(
    fake_nvml: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Meter set-up reads the counter once; each configuration reads it twice: lost in the 3rd.
    fake_nvml.setenv("FAKE_NVML_LOST_AFTER", "5")
    path = tmp_path / "j.jsonl"

    def workload(config: dict[str, Any], meter: Any) -> None:
        time.sleep(0.001)

    with pytest.raises(GPULostError):
        Campaign(SMALL, workload, n=5, journal=path).run()
    _, recs = read_journal(path)
    assert [r["status"] for r in recs] == ["ok", "ok"]  # the third is not recorded as failed
    fake_nvml.delenv("FAKE_NVML_LOST_AFTER")  # the GPU is back
    c = Campaign(SMALL, workload, n=5, journal=path).resume()
    assert c.done and all(r["status"] == "ok" for r in read_journal(path)[1])


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_journal_cut_anywhere_reads_a_prefix_and_resumes(cut: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j.jsonl"
        full = Campaign(SMALL, sim(), n=4, journal=path).run()
        data = path.read_bytes()
        path.write_bytes(data[: cut % (len(data) + 1)])
        _, recs = read_journal(path)  # never raises
        want = [r["key"] for r in full.records]
        assert [r["key"] for r in recs] == want[: len(recs)]
        c = Campaign(SMALL, sim(), n=4, journal=path).resume()
        header, recs = read_journal(path)
        assert header is not None and c.done
        assert sorted(r["key"] for r in recs) == sorted(want)


def test_one_journal_one_running_campaign(tmp_path: Path) -> None:
    from energycore.campaign import journal as _journal

    path = tmp_path / "j.jsonl"
    # as if another campaign were running on this journal
    with (
        _journal.Writer(path),
        pytest.raises(ValueError, match="in use by another running campaign"),
    ):
        Campaign(SMALL, sim(), n=2, journal=path).run()
    assert Campaign(SMALL, sim(), n=2, journal=path).run().done  # lock released
