"""``energycore select`` serving-SLO flags and hardware refusals, ``fit`` provenance flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli_invoke as invoke
from tests.helpers import cli_json as as_json


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated H100 / llama-3.1-70b measurements and the models the CLI fitted to them."""
    d = tmp_path_factory.mktemp("slo")
    code, out = invoke("simulate", "-o", d / "m.csv", "--samples", "60", "--seed", "1")
    assert code == 0, out
    code, out = invoke("fit", d / "m.csv", "-o", d / "model.json")
    assert code == 0, out
    return d


def test_fit_records_provenance_from_the_csv_and_the_flags(d: Path) -> None:
    prov = json.loads((d / "model.json").read_text())["provenance"]
    assert prov == {"gpu": "H100", "served_model": "llama-3.1-70b", "engine": "simulated"}
    assert json.loads((d / "model.ttft.json").read_text())["provenance"] == prov
    code, res = as_json(
        "fit", d / "m.csv", "-o", d / "flags.json", "--gpu", "H200", "--served-model",
        "llama-3.1-8b", "--engine", "vllm",
    )  # fmt: skip
    assert code == 0
    want = {"gpu": "H200", "served_model": "llama-3.1-8b", "engine": "vllm"}
    assert res["provenance"] == want
    assert json.loads((d / "flags.json").read_text())["provenance"] == want
    code, res = as_json("fit", d / "m.csv", "-o", d / "odd.json", "--gpu", "TPUv9")
    assert code == 0 and any(
        "'TPUv9' is not in the simulator's catalogue" in n for n in res["notes"]
    )
    code, out = invoke("fit", d / "m.csv", "-o", d / "x.json", "--engine", "")
    assert code == 2 and "--engine: must not be empty" in out


def test_select_refuses_what_the_recorded_hardware_cannot_run(d: Path) -> None:
    code, res = as_json("select", d / "model.json", "--top", "100")
    assert code == 0
    assert res["hardware"]["gpu"] == "H100" and res["hardware"]["source"] == "recorded"
    (refusal,) = res["refused"]
    assert refusal["count"] == 30 and "weights need 141 GB > 72 GB" in refusal["reason"]
    assert all(c["tp"] * c["pp"] >= 4 for c in res["configurations"])
    assert any("30 configurations refused" in n for n in res["notes"])
    # explicit flags override the recorded ones
    code, res = as_json("select", d / "model.json", "--gpu", "H200", "--top", "100")
    assert code == 0 and res["hardware"]["source"] == "recorded+flags"
    assert res["hardware"]["gpu"] == "H200"
    assert any(c["tp"] * c["pp"] == 2 for c in res["configurations"])  # fits 141 GB x 2
    code, res = as_json(
        "select", d / "model.json", "--gpu", "B200", "--served-model", "8b", "--top", "100"
    )
    assert code == 0 and res["hardware"]["source"] == "flags" and res["refused"] == []
    code, out = invoke("select", d / "model.json", "--gpus", "1")
    assert code == 3 and "no configuration within 1 x H100 can run llama-3.1-70b" in out


def test_select_without_provenance_warns_that_the_check_is_skipped(d: Path) -> None:
    raw = json.loads((d / "model.json").read_text())
    del raw["provenance"]
    (d / "old.json").write_text(json.dumps(raw))
    code, res = as_json("select", d / "old.json")
    assert code == 0 and res["hardware"] is None and res["refused"] == []
    assert any("memory check skipped" in n for n in res["notes"])
    raw["provenance"] = {"gpu": "X1", "served_model": "llama-3.1-70b"}
    (d / "unknown.json").write_text(json.dumps(raw))
    code, out = invoke("select", d / "unknown.json")
    assert code == 1 and "recorded gpu: unknown name 'X1'; known: A100" in out


def _limits(d: Path) -> dict[str, float]:
    code, res = as_json("select", d / "model.json", "--top", "1000")
    assert code == 0
    cfgs = res["configurations"]
    mid = sorted(cfgs, key=lambda c: c["ttft_s"])[len(cfgs) // 2]
    return {"ttft": mid["ttft_s"], "tpot": mid["tpot_s"], "rate": mid["request_rate_rps"]}


def test_each_slo_flag_filters_the_ranking(d: Path) -> None:
    lim = _limits(d)
    base = ("select", d / "model.json", "--top", "1000")
    code, res = as_json(*base, "--ttft-limit", str(lim["ttft"]))
    assert code == 0 and res["slo"]["ttft_s"] == lim["ttft"]
    assert res["configurations"] and all(c["ttft_s"] <= lim["ttft"] for c in res["configurations"])
    for flag, key in (("--tpot-limit", "tpot_s"), ("--itl-limit", "itl_s")):
        code, res = as_json(*base, flag, str(lim["tpot"]))
        assert code == 0 and res["slo"][key] == lim["tpot"]
        assert all(c["tpot_s"] <= lim["tpot"] for c in res["configurations"])
    code, res = as_json(*base, "--request-rate", str(lim["rate"]))
    assert code == 0 and res["slo"]["request_rate"] == lim["rate"] and res["slo"]["gpus"] == 8
    assert all(c["request_rate_rps"] >= lim["rate"] for c in res["configurations"])
    code, mean = as_json(*base, "--ttft-limit", str(lim["ttft"]))
    code, p99 = as_json(*base, "--ttft-limit", str(lim["ttft"]), "--percentile", "99")
    assert code == 0 and p99["slo"]["percentile"] == 99.0
    assert all(c["ttft_p99_s"] <= lim["ttft"] for c in p99["configurations"])
    assert all(c["ttft_p99_s"] > c["ttft_s"] for c in p99["configurations"])
    assert len(p99["configurations"]) < len(mean["configurations"])  # p99 is the stricter
    code, both = as_json(
        *base, "--ttft-limit", str(lim["ttft"] * 2), "--tpot-limit", str(lim["tpot"] * 2),
        "--percentile", "90", "--request-rate", str(lim["rate"] / 2), "--latency-limit", "60",
    )  # fmt: skip
    assert code == 0 and both["configurations"]
    for c in both["configurations"]:
        assert c["ttft_p90_s"] <= lim["ttft"] * 2 and c["tpot_p90_s"] <= lim["tpot"] * 2
        assert c["request_rate_rps"] >= lim["rate"] / 2 and c["latency_s"] <= 60


def test_slo_exit_codes_and_messages(d: Path) -> None:
    m = d / "model.json"
    code, out = invoke("select", m, "--ttft-limit", "1e-6", "--percentile", "95")
    assert code == 3 and "meets p95 TTFT <= 1e-06 s" in out and "lowest p95 TTFT" in out
    code, res = as_json("select", m, "--request-rate", "1e9")
    assert code == 3 and res["exit_code"] == 3 and "highest rate" in res["error"]
    for args, flag in (
        (("--percentile", "100", "--ttft-limit", "1"), "--percentile: must lie in (0, 100)"),
        (("--percentile", "0", "--ttft-limit", "1"), "--percentile"),
        (("--percentile", "90"), "--percentile: needs a --ttft-limit, --tpot-limit or"),
        (("--ttft-limit", "0"), "--ttft-limit: must be a finite positive number"),
        (("--ttft-limit", "-1"), "--ttft-limit"),
        (("--request-rate", "nan"), "--request-rate"),
    ):
        code, out = invoke("select", m, *args)
        assert code == 2 and flag in out, (args, out)
    raw = json.loads((d / "model.ttft.json").read_text())
    del raw["fit"]["resid_quantiles"]
    for name in ("model.json", "model.tpot.json"):
        (d / "oldq" / name).parent.mkdir(exist_ok=True)
        (d / "oldq" / name).write_text((d / name).read_text())
    (d / "oldq" / "model.ttft.json").write_text(json.dumps(raw))
    code, out = invoke(
        "select", d / "oldq" / "model.json", "--ttft-limit", "9", "--percentile", "90"
    )
    assert code == 1 and "residual spread" in out
    code, _ = invoke("select", d / "oldq" / "model.json", "--ttft-limit", "9")
    assert code == 0  # a mean limit needs no residual record
    (d / "energy_only").mkdir(exist_ok=True)
    (d / "energy_only" / "model.json").write_text((d / "model.json").read_text())
    for flag in ("--ttft-limit", "--tpot-limit", "--itl-limit", "--request-rate"):
        code, out = invoke("select", d / "energy_only" / "model.json", flag, "1")
        assert code == 1 and f"{flag} needs latency models" in out


def test_select_confidence_judges_the_bound(d: Path) -> None:
    base = ("select", d / "model.json", "--top", "200", "--latency-limit", "20")
    code, point = as_json(*base)
    assert code == 0
    code, bound = as_json(*base, "--confidence", "0.9")
    assert code == 0 and bound["confidence"] == 0.9
    assert point["confidence"] is None
    rows = bound["configurations"]
    assert rows and all(r["latency_upper_s"] <= 20 for r in rows)
    assert all(r["latency_upper_s"] >= r["latency_s"] for r in rows)
    assert len(rows) <= len(point["configurations"])
    code, out = invoke(*base, "--confidence", "0.9")
    assert code == 0 and "confidence 0.9" in out
    # TPOT SLO on the bound
    code, res = as_json(
        "select", d / "model.json", "--tpot-limit", "0.08", "--confidence", "0.95", "--top", "50"
    )  # fmt: skip
    assert code == 0 and all(r["tpot_upper_s"] <= 0.08 for r in res["configurations"])
    # an impossible bound: exit 3 with the bound in the message
    code, out = invoke("select", d / "model.json", "--latency-limit", "1e-6", "--confidence", "0.9")
    assert code == 3 and "bound at confidence 0.9" in out


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "-0.2", "nan"])
def test_select_bad_confidence(d: Path, bad: str) -> None:
    code, out = invoke("select", d / "model.json", "--latency-limit", "20", "--confidence", bad)
    assert code == 2 and "--confidence" in out


def test_select_confidence_needs_recorded_uncertainty(d: Path, tmp_path: Path) -> None:
    for name in ("model.json", "model.ttft.json", "model.tpot.json"):
        doc = json.loads((d / name).read_text())
        if name != "model.json":
            doc["fit"].pop("residual_scale", None)
        (tmp_path / name).write_text(json.dumps(doc))
    code, out = invoke(
        "select", tmp_path / "model.json", "--latency-limit", "20", "--confidence", "0.9"
    )  # fmt: skip
    assert code == 1 and "--confidence: the TtftModel records no residual scale" in out, out
