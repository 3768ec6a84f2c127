"""The version is written once, in ``energycore/_version.py``; the build reads it from there
(scikit-build-core's regex provider), and the package, the CLI and the installed metadata agree."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

import energycore
from energycore._version import __version__

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"

# scikit-build-core's default pattern for the regex version provider.
_SKBUILD_REGEX = r"""(?i)^(__version__|VERSION)(?: ?\: ?str)? *= *(['"])v?(?P<value>.+?)\2"""


def test_version_is_pep440_like() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", __version__), __version__
    assert energycore.__version__ == __version__


@pytest.mark.skipif(not PYPROJECT.exists(), reason="no source tree (installed wheel only)")
def test_build_reads_the_version_file() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        tomllib = pytest.importorskip("tomli")
    cfg = tomllib.loads(PYPROJECT.read_text())
    assert "version" in cfg["project"]["dynamic"]
    assert "version" not in cfg["project"]
    provider = cfg["tool"]["scikit-build"]["metadata"]["version"]
    assert provider["provider"] == "scikit_build_core.metadata.regex"
    source = ROOT / provider["input"]
    assert source.resolve() == (ROOT / "python/energycore/_version.py").resolve()
    match = re.search(provider.get("regex", _SKBUILD_REGEX), source.read_text(), re.MULTILINE)
    assert match is not None and match.group("value") == __version__


def test_installed_metadata_agrees() -> None:
    try:
        dist = importlib.metadata.distribution("energycore")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("energycore is not installed (running from the source tree)")
    installed_init = Path(str(dist.locate_file("energycore/__init__.py"))).resolve()
    if installed_init != Path(energycore.__file__).resolve():
        pytest.skip("the imported energycore is not the installed distribution")
    assert dist.version == __version__
