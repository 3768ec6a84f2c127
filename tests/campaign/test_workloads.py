"""energycore.workloads: OpenAIServer and Launcher against the fake server on 127.0.0.1."""

from __future__ import annotations

import socket
import sys

import pytest

from energycore import Campaign
from energycore.campaign.journal import read as read_journal
from energycore.workloads import (
    Launcher,
    LaunchError,
    OpenAIServer,
    ServerUnreachableError,
    free_port,
)
from tests.helpers import FAKE_SERVER, FakeServer

pytest.importorskip("httpx")

MODEL = "fake-model"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------- OpenAIServer
@pytest.mark.parametrize("api", ["completions", "chat"])
def test_streams_every_request_and_records_its_tokens(api):
    with FakeServer() as srv:
        wl = OpenAIServer(srv.url, MODEL, n_requests=6, concurrency=3, max_tokens=5, api=api)
        results = wl.run({"input_len": 20})
    assert [r.ok for r in results] == [True] * 6
    for r in results:
        assert r.output_tokens == 5  # from the server's usage chunk
        assert r.prompt_tokens == 20
        assert len(r.itl_s) == 4  # one gap between each pair of the five text chunks
        assert 0 < r.ttft_s <= r.latency_s
    assert len({r.start_s for r in results}) == 6


def test_columns_of_a_run():
    with FakeServer() as srv:
        row = OpenAIServer(srv.url, MODEL, n_requests=8, max_tokens=4)({"batch": 4}, None)
    assert (row["n_requests"], row["n_ok"], row["n_errors"], row["error_rate"]) == (8, 8, 0, 0.0)
    assert row["output_tokens"] == 32
    assert row["output_len"] == 4.0 and row["input_len"] == 128.0  # not in the config: measured
    assert row["latency_s"] == row["request_latency_s"]
    assert row["ttft_p50_s"] <= row["ttft_p99_s"]
    assert row["tpot_s"] > 0 and row["itl_p90_s"] > 0


def test_failing_responses_are_counted_and_too_many_fail_the_configuration():
    with FakeServer("--fail-every", "4") as srv:
        row = OpenAIServer(srv.url, MODEL, n_requests=8, concurrency=1, max_tokens=3)({}, None)
        assert (row["n_ok"], row["n_errors"], row["error_rate"]) == (6, 2, 0.25)
        assert row["first_error"].startswith("HTTP 500")
        strict = OpenAIServer(srv.url, MODEL, n_requests=8, concurrency=1, max_error_rate=0.1)
        with pytest.raises(RuntimeError, match=r"2 of 8 requests failed; first error: HTTP 500"):
            strict({"output_len": 3}, None)


def test_a_slow_response_times_out_as_a_failed_request():
    with FakeServer("--slow-every", "2", "--slow-s", "20") as srv:
        wl = OpenAIServer(srv.url, MODEL, n_requests=4, concurrency=4, max_tokens=2, timeout_s=1)
        results = wl.run({})
    assert [r.ok for r in results].count(False) == 2
    assert all(r.error == "timeout after 1 s" for r in results if not r.ok)
    assert not any(r.connect_error for r in results)


def test_an_unknown_model_is_an_http_error_of_the_configuration():
    with FakeServer() as srv, pytest.raises(RuntimeError, match=r"HTTP 404.*not served"):
        OpenAIServer(srv.url, "other", n_requests=2)({}, None)


def test_no_server_is_a_system_error():
    wl = OpenAIServer(f"http://127.0.0.1:{free_port()}/v1", MODEL, n_requests=3)
    with pytest.raises(ServerUnreachableError, match="no request could connect"):
        wl({}, None)


def test_base_url_fields_come_from_the_configuration():
    wl = OpenAIServer("http://127.0.0.1:{port}/v1", MODEL, api="chat")
    assert wl.url({"port": 8001.0}) == "http://127.0.0.1:8001/v1/chat/completions"
    with pytest.raises(ValueError, match=r"base_url: field \{port\}"):
        wl.url({})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "127.0.0.1:8000"}, "base_url"),
        ({"model": ""}, "model"),
        ({"prompts": "one prompt"}, "prompts"),
        ({"prompts": []}, "prompts: empty"),
        ({"concurrency": 0}, "concurrency"),
        ({"n_requests": True}, "n_requests"),
        ({"request_rate": 0}, "request_rate"),
        ({"api": "embeddings"}, "api"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"max_error_rate": 1.5}, "max_error_rate"),
    ],
)
def test_bad_options_name_the_field(kwargs, match):
    args = {"base_url": "http://127.0.0.1:1/v1", "model": MODEL, **kwargs}
    with pytest.raises(ValueError, match=match):
        OpenAIServer(**args)


def test_energy_of_the_requests_window_with_the_fake_nvml(fake_nvml):
    from energycore.measure import EnergyMeter

    fake_nvml.setenv("FAKE_NVML_DEVICES", "2")
    fake_nvml.setenv("FAKE_NVML_POWER_W", "100,50")
    with FakeServer() as srv, EnergyMeter() as meter:
        row = OpenAIServer(srv.url, MODEL, n_requests=4, max_tokens=3)({"batch": 2}, meter)
    assert row["serve_energy_j"] == pytest.approx(row["energy_gpu0_j"] + row["energy_gpu1_j"])
    assert row["energy_per_request_j"] == pytest.approx(row["serve_energy_j"] / 4)
    assert row["energy_j"] == pytest.approx(2 * row["energy_per_request_j"])  # J per batch of 2
    assert row["method"] in ("counter", "sampled")
    # the fake GPUs draw a constant 150 W: the energy is that of the requests' window
    assert row["serve_energy_j"] == pytest.approx(150 * row["wall_s"], rel=0.05)
    assert row["avg_power_w"] == pytest.approx(150, rel=0.05)
    assert "time_s" not in row  # latency_s is the mean request latency, not the window


def test_a_server_that_dies_mid_run_stops_the_campaign_and_resume_finishes_it(fake_nvml, tmp_path):
    port = free_port()
    configs = [{"batch": b, "output_len": 4} for b in (1, 2, 3, 4, 5)]
    wl = OpenAIServer(f"http://127.0.0.1:{port}/v1", MODEL, n_requests=4, concurrency=2)
    journal = tmp_path / "serve.jsonl"
    camp = Campaign(configs, wl, plan="all", n=None, journal=journal, progress=False)
    # requests 1-8 serve the first two configurations; the server dies inside request 10
    dies = FakeServer("--die-after", "10", port=port)
    with dies, pytest.raises(ServerUnreachableError, match="went away during the run"):
        camp.run()
    _, first = read_journal(journal)
    assert [r["config"]["batch"] for r in first] == [1, 2]
    assert all(r["status"] == "ok" for r in first)
    with FakeServer(port=port):  # the server is back
        camp.resume()
    _, recs = read_journal(journal)
    assert sorted(r["config"]["batch"] for r in recs) == [1, 2, 3, 4, 5]  # none twice
    assert recs[:2] == first
    assert all(r["status"] == "ok" and r["result"]["n_ok"] == 4 for r in recs)
    assert camp.done


# ---------------------------------------------------------------- Launcher
def _launcher(*extra: str, **kwargs):
    cmd = [sys.executable, str(FAKE_SERVER), "--port", "{port}", "--batch", "{batch}",
           "--max-seconds", "60", *extra]  # fmt: skip
    wl = OpenAIServer("http://127.0.0.1:{port}/v1", MODEL, n_requests=4, max_tokens=3)
    return Launcher(cmd, wl, **{"poll_s": 0.05, "ready_timeout_s": 30, **kwargs})


def test_launcher_starts_waits_measures_and_stops_the_server():
    ports = []

    class Spy:
        requires_meter = False

        def __init__(self, inner):
            self.inner = inner

        def __call__(self, config, meter):
            ports.append(config["port"])
            assert _listening(config["port"])
            return self.inner(config, meter)

    la = _launcher("--startup-s", "0.3")
    la.workload = Spy(la.workload)
    row = la({"batch": 2}, None)
    assert row["n_ok"] == 4
    assert not _listening(ports[0])  # torn down after the run
    assert la.requires_meter is False


def test_launch_failures_are_failed_configurations_with_the_reason(tmp_path):
    camp = Campaign(
        [{"batch": 2}, {"batch": 8}],
        _launcher("--oom-above", "4", log_dir=tmp_path / "logs"),
        plan="all",
        n=None,
        progress=False,
        meter=None,
    )
    camp.workload.workload.requires_meter = False  # no meter: latency only
    recs = {r["config"]["batch"]: r for r in camp.run().records}
    assert recs[2]["status"] == "ok"
    assert recs[8]["status"] == "failed"
    assert recs[8]["error"].startswith("LaunchError: out_of_memory: the server exited with code 1")
    assert "CUDA out of memory" in recs[8]["error"]
    assert len(list((tmp_path / "logs").glob("launch-*.log"))) == 2


def test_a_crash_at_start_up():
    with pytest.raises(LaunchError, match=r"^crash: the server exited with code 3 before") as e:
        _launcher("--crash-on-start")({"batch": 1}, None)
    assert e.value.reason == "crash"


def test_a_server_that_never_becomes_healthy_times_out():
    la = _launcher("--startup-s", "30", ready_timeout_s=0.5)
    with pytest.raises(LaunchError, match=r"^timeout: .*/health did not answer 200 within 0.5 s"):
        la({"batch": 1}, None)


def test_a_server_that_dies_under_a_launcher_fails_the_configuration():
    with pytest.raises(LaunchError, match=r"^crash: the server exited with code 1 during the run"):
        _launcher("--die-after", "2")({"batch": 1}, None)


def test_launcher_fields_and_bad_options():
    la = Launcher("serve {model} --tp {tp} --port {port}", print, fields={"model": "m"})
    assert la.argv_for({"tp": 2.0}, 9000) == ["serve", "m", "--tp", "2", "--port", "9000"]
    with pytest.raises(ValueError, match=r"command: field \{tp\} is neither"):
        la.argv_for({}, 9000)
    with pytest.raises(ValueError, match="command: empty"):
        Launcher(" ", print)
    with pytest.raises(ValueError, match="health_url"):
        Launcher("x", print, health_url="localhost/health")
    with pytest.raises(ValueError, match="ready_timeout_s"):
        Launcher("x", print, ready_timeout_s=0)
    with pytest.raises(ValueError, match="port"):
        Launcher("x", print, port=70000)
