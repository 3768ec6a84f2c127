"""``energycore profile``: a space file through Campaign against the fake server on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest

from energycore.campaign.journal import read as read_journal
from energycore.campaign.spacefile import load_space_file
from energycore.workloads import Launcher, OpenAIServer, free_port
from tests.helpers import FAKE_SERVER, FakeServer
from tests.helpers import cli_invoke as invoke

pytest.importorskip("httpx")


def space_file(path: Path, base_url: str, launch: list[str] | None = None) -> Path:
    text = f"""
[space.axes]
batch = [1, 2, 4]

[space]
fixed = {{ input_len = 16, output_len = 4 }}

[campaign]
plan = "all"
journal = "profile.jsonl"

[server]
base_url = {json.dumps(base_url)}
model = "fake-model"
n_requests = 4
"""
    if launch is not None:
        text += f"""
[launch]
command = {json.dumps(launch)}
poll_s = 0.05
ready_timeout_s = 30
"""
    path.write_text(text)
    return path


def test_profile_with_a_launcher_records_launch_failures(fake_nvml, tmp_path):
    cmd = [sys.executable, str(FAKE_SERVER), "--port", "{port}", "--batch", "{batch}",
           "--oom-above", "2", "--max-seconds", "60"]  # fmt: skip
    f = space_file(tmp_path / "space.toml", "http://127.0.0.1:{port}/v1", cmd)
    code, out = invoke("profile", f, "-o", tmp_path / "out" / "results.csv")
    assert code == 0, out
    assert "profiled 3 of 3 configurations: 2 ok, 1 failed" in out
    assert re.search(r"failed: batch=4 \S.*: LaunchError: out_of_memory: .*CUDA out of memory", out)
    with (tmp_path / "out" / "results.csv").open(newline="") as fh:
        rows = {int(r["batch"]): r for r in csv.DictReader(fh)}
    assert [rows[b]["status"] for b in (1, 2, 4)] == ["ok", "ok", "failed"]
    assert float(rows[2]["n_ok"]) == 4 and float(rows[2]["energy_j"]) > 0
    assert float(rows[2]["ttft_s"]) > 0 and float(rows[2]["output_len"]) == 4
    _, recs = read_journal(tmp_path / "profile.jsonl")  # relative to the space file
    assert len(recs) == 3


def test_profile_stops_when_the_server_dies_and_resumes_from_the_journal(fake_nvml, tmp_path):
    port = free_port()
    f = space_file(tmp_path / "space.toml", f"http://127.0.0.1:{port}/v1")
    with FakeServer("--die-after", "6", port=port):  # dies during the second configuration
        code, out = invoke("profile", f)
    assert code == 1
    assert "ServerUnreachableError" in out and "rerun with --resume" in out
    _, recs = read_journal(tmp_path / "profile.jsonl")
    assert [r["config"]["batch"] for r in recs] == [1]
    code, out = invoke("profile", f)  # without --resume: refused, the journal is kept
    assert code == 1 and "resume" in out
    with FakeServer(port=port):
        code, out = invoke("profile", f, "--resume")
    assert code == 0, out
    assert "profiled 3 of 3 configurations: 3 ok, 0 failed" in out
    _, recs = read_journal(tmp_path / "profile.jsonl")
    assert sorted(r["config"]["batch"] for r in recs) == [1, 2, 4]


def test_space_file_builds_the_workload(tmp_path):
    f = space_file(tmp_path / "s.toml", "http://127.0.0.1:{port}/v1", ["serve", "{port}"])
    spec = load_space_file(f)
    wl = spec.workload()
    assert isinstance(wl, Launcher) and isinstance(wl.workload, OpenAIServer)
    assert wl.workload.n_requests == 4 and wl.cwd == tmp_path
    assert spec.campaign["journal"] == tmp_path / "profile.jsonl"
    assert spec.space.count_valid() == 3


def test_yaml_space_file(tmp_path):
    pytest.importorskip("yaml")
    f = tmp_path / "s.yaml"
    f.write_text(
        "space:\n  axes: {tp: [1, 2]}\nserver: {base_url: 'http://127.0.0.1:1/v1', model: m}\n"
    )
    spec = load_space_file(f)
    assert spec.launch is None and isinstance(spec.workload(), OpenAIServer)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[space.axes]\ntp = [1]\n", r"missing section \[server\]"),
        ("[spaces]\n", "unknown section"),
        ("[space.axes]\ntp=[1]\n[server]\nmodel='m'\n", r"\[server\] needs base_url"),
        ("[space.axes]\ntp=[1]\n[server]\nbase_url='http://h/v1'\nmodel='m'\nturbo=1\n",
         r"unknown key\(s\) in \[server\]: turbo"),
        ("[space.axes]\ntp=[1]\n[server]\nbase_url='http://h/v1'\nmodel='m'\nn_requests=0\n",
         "n_requests"),
        ("[space]\naxes={}\n[server]\n", r"\[space.axes\] must list"),
        ("[space.axes\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_space_files_name_the_problem(tmp_path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_space_file(f)
    code, out = invoke("profile", f)
    assert code == 1 and "bad.toml" in out
