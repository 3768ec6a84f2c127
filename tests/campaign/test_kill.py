"""A campaign killed with SIGKILL at random moments resumes with nothing lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from energycore.campaign.campaign import Campaign, read_journal
from energycore.campaign.journal import config_key
from energycore.simulate import Workload

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

N_CONFIGS = 300
SECONDS = 0.002  # real delay per configuration of the simulated workload
CHILD = """
import sys
from energycore import ConfigSpace
from energycore.campaign.campaign import Campaign
from energycore.simulate import Workload
space = ConfigSpace({"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": list(range(1, 65))},
                    constraints=["tp*pp <= 8"], fixed={"input_len": 256, "output_len": 64})
c = Campaign(space, Workload(model="llama-3.1-8b", seconds=%(seconds)r), n=%(n)d, seed=7,
             journal=sys.argv[1], progress=False)
print("ready", flush=True)
c.resume()
print("done", flush=True)
"""


def plan() -> list[dict]:
    from energycore import ConfigSpace

    space = ConfigSpace(
        {"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": list(range(1, 65))},
        constraints=["tp*pp <= 8"],
        fixed={"input_len": 256, "output_len": 64},
    )
    return Campaign(space, Workload(model="llama-3.1-8b"), n=N_CONFIGS, seed=7).configs


def check(path: Path, planned: set[str]) -> int:
    """The journal parses, holds only planned configurations, each at most once."""
    header, recs = read_journal(path)
    keys = [r["key"] for r in recs]
    assert len(keys) == len(set(keys)), "a configuration was recorded twice"
    assert set(keys) <= planned
    assert all(r["status"] == "ok" for r in recs)
    if recs:
        assert header is not None
    return len(keys)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    path = tmp_path / "campaign.jsonl"
    script = tmp_path / "child.py"
    script.write_text(CHILD % {"seconds": SECONDS, "n": N_CONFIGS})
    planned = {config_key(c) for c in plan()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    rng = np.random.default_rng(2024)
    kills = 0
    progress = []
    done = 0
    for _ in range(100):  # bounded, whatever happens in the child
        if kills >= 25 or done == N_CONFIGS:
            break
        with subprocess.Popen(
            [sys.executable, str(script), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        ) as proc:
            try:
                assert proc.stdout is not None and proc.stderr is not None
                line = proc.stdout.readline().strip()
                assert line == "ready", proc.stderr.read()
                # Kill anywhere from before the first record to well into the campaign.
                time.sleep(float(rng.uniform(0.0, 0.04)))
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                proc.kill()
                proc.wait(timeout=30)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        done = check(path, planned)
        progress.append(done)
    assert kills >= 20, f"only {kills} kills before the campaign finished: {progress}"
    assert progress == sorted(progress)  # nothing ever lost
    # A last run to the end: every configuration exactly once.
    out = subprocess.run(
        [sys.executable, str(script), str(path)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "done" in out.stdout
    assert check(path, planned) == N_CONFIGS
    _, recs = read_journal(path)
    assert sorted(r["key"] for r in recs) == sorted(planned)
