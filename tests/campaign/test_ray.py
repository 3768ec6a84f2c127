"""The Ray executor of Campaign on a local Ray instance, with the simulator as workload."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import energycore
from energycore.campaign.campaign import Campaign, read_journal
from energycore.campaign.journal import config_key
from energycore.simulate import Workload

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'energycore[ray]')")

pytestmark = pytest.mark.slow

SPACE_CONFIGS = [
    {"tp": tp, "pp": 1, "batch": b, "input_len": 256, "output_len": 64}
    for tp in (1, 2, 4, 8)
    for b in (1, 4, 16)
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local Ray instance for the module (2 CPUs, no dashboard), shut down at the end."""
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    # Workers start elsewhere: give them this energycore by an absolute path.
    root = str(Path(energycore.__file__).resolve().parents[1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([root, *sys.path[1:]]))
        mp.setenv("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        try:
            yield ray
        finally:
            ray.shutdown()


class KillOnce:
    """The simulator, except that the first call for ``config`` kills its own worker process
    (``always``: every call does)."""

    requires_meter = False

    def __init__(self, marker: Path, config: dict[str, Any], always: bool = False) -> None:
        self.marker = str(marker)
        self.key = config_key(config)
        self.always = always
        self.inner = Workload(model="llama-3.1-8b")

    def __call__(self, config: dict[str, Any], meter: Any) -> dict[str, Any]:
        if config_key(config) == self.key and (self.always or not os.path.exists(self.marker)):
            with open(self.marker, "a") as f:
                f.write(f"{os.getpid()}\n")
            os._exit(1)  # the worker dies, as on a segfault or an OOM kill
        out = self.inner(config, meter)
        out["worker_pid"] = os.getpid()
        return out


def test_ray_campaign_runs_and_resumes(local_ray: Any, tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    sim = Workload(model="llama-3.1-8b")
    c = Campaign(SPACE_CONFIGS, sim, n=8, seed=1, journal=path, executor="ray").run()
    assert c.done
    f = c.to_frame()
    assert len(f) == 8 and (f["method"] == "simulated").all()
    header, recs = read_journal(path)
    assert header is not None and header["executor"] == "ray"
    assert sorted(r["key"] for r in recs) == sorted(config_key(x) for x in c.configs)
    # the same plan on the local executor gives the same rows (the simulator is seeded)
    local = Campaign(SPACE_CONFIGS, Workload(model="llama-3.1-8b"), n=8, seed=1).run()
    assert sorted(f["energy_j"]) == pytest.approx(sorted(local.to_frame()["energy_j"]))
    # resume after losing the last records: only those run again
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]))
    c2 = Campaign(SPACE_CONFIGS, sim, n=8, seed=1, journal=path, executor="ray").resume()
    assert len(c2._records) == 8 and c2.done
    _, recs = read_journal(path)
    assert len(recs) == 8 and len({r["key"] for r in recs}) == 8


def test_ray_worker_killed_is_retried_then_failed(local_ray: Any, tmp_path: Path) -> None:
    victim = SPACE_CONFIGS[4]
    once = KillOnce(tmp_path / "once", victim)
    c = Campaign(SPACE_CONFIGS, once, plan="all", n=None, executor="ray", retries=1).run()
    rec = next(r for r in c.records if r["key"] == config_key(victim))
    assert rec["status"] == "ok"  # retried on a fresh worker
    assert len((tmp_path / "once").read_text().splitlines()) == 1
    assert all(r["status"] == "ok" for r in c.records) and c.done

    always = KillOnce(tmp_path / "always", victim, always=True)
    path = tmp_path / "j.jsonl"
    c = Campaign(
        SPACE_CONFIGS[:6], always, plan="all", n=None, executor="ray", retries=1, journal=path
    ).run()
    rec = next(r for r in c.records if r["key"] == config_key(victim))
    assert rec["status"] == "failed" and "after 1 retry" in rec["error"]
    assert len((tmp_path / "always").read_text().splitlines()) == 2  # first try and one retry
    assert sum(r["status"] == "ok" for r in c.records) == 5  # the campaign went on
    assert len(read_journal(path)[1]) == 6


def test_ray_resources_and_workload_errors(local_ray: Any) -> None:
    asked: list[dict[str, Any]] = []

    def resources(cfg: dict[str, Any]) -> dict[str, Any]:
        asked.append(cfg)
        return {"num_cpus": 0.5}

    big = [{"tp": 1, "pp": 1, "batch": 64}]  # does not fit on one GPU for the 70B model
    c = Campaign(
        big + SPACE_CONFIGS[9:11], Workload(), plan="all", n=None, executor="ray",
        resources=resources,
    ).run()  # fmt: skip
    assert len(asked) == 3
    first = next(r for r in c.records if r["index"] == 0)
    assert first["status"] == "failed" and "does not fit in memory" in first["error"]
    assert sum(r["status"] == "ok" for r in c.records) == 2


def test_ray_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    c = Campaign(SPACE_CONFIGS, Workload(), n=2, executor="ray")
    with pytest.raises(ImportError, match=r"energycore\[ray\]"):
        c.run()
