"""Shared test fixtures: hypothesis profiles and the location of the public datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI draws the same examples on every run (derandomize): a red run is reproducible and a rare
# input cannot turn CI red at random; "dev" (HYPOTHESIS_PROFILE=dev) explores fresh ones.
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: ../shared/data beside the project root (never copied into the project).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public measurement datasets; skips the test cleanly when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public datasets not found at {SHARED_DATA}")
    return SHARED_DATA


# ---------------------------------------------------------------- fake NVML and CUDA driver
def _compiler() -> list[str] | None:
    import shlex
    import shutil
    import sysconfig

    for cc in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc"):
        if cc:
            args = shlex.split(cc)
            if args and shutil.which(args[0]):
                return args
    return None


def _build_fake(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess

    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler found ($CC, sysconfig CC, cc, gcc) to build the fake library")
    src = Path(__file__).with_name(f"{name}.c")
    out = tmp_path_factory.mktemp(name) / f"lib{name}.so"
    subprocess.run([*cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(src)], check=True)
    return out


@pytest.fixture(scope="session")
def fake_nvml_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fake_nvml.c built into a shared library for this test session."""
    return _build_fake("fake_nvml", tmp_path_factory)


@pytest.fixture(scope="session")
def fake_cuda_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fake_cuda.c built into a shared library for this test session."""
    return _build_fake("fake_cuda", tmp_path_factory)


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch, fake_nvml_path: Path) -> pytest.MonkeyPatch:
    """The fake NVML behind ENERGYCORE_NVML_LIBRARY, every FAKE_NVML_* setting cleared and all
    GPUs visible; set FAKE_NVML_* with the returned monkeypatch before creating a meter."""
    for k in list(os.environ):
        if k.startswith("FAKE_NVML_"):
            monkeypatch.delenv(k)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("ENERGYCORE_NVML_LIBRARY", str(fake_nvml_path))
    return monkeypatch
