"""The root is lazy: ``import energycore`` loads no heavy dependency and no capability package,
yet every public name and every old module path resolves."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

import energycore


def _fresh(code: str) -> str:
    env_path = str(__import__("pathlib").Path(energycore.__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "PATH": ""},
    )
    return out.stdout.strip()


def test_import_loads_nothing_heavy() -> None:
    loaded = _fresh(
        "import sys, energycore; "
        "print(','.join(m for m in ('sklearn', 'scipy', 'pandas', 'numpy', 'energycore.fit', "
        "'energycore.learn', 'energycore._core') if m in sys.modules))"
    )
    assert loaded == ""


def test_a_public_name_loads_only_its_capability() -> None:
    loaded = _fresh(
        "import sys, energycore; energycore.EnergyModel; "
        "print(','.join(m for m in ('sklearn', 'energycore.fit', 'energycore.learn') "
        "if m in sys.modules))"
    )
    assert loaded == "energycore.fit"


@pytest.mark.parametrize("name", energycore.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(energycore, name) is not None
    assert name in dir(energycore)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'EnergyModle'"):
        _ = energycore.EnergyModle  # type: ignore[attr-defined]


def test_old_module_paths_are_the_new_modules_with_a_warning() -> None:
    from energycore import _aliases

    for old, new in _aliases.ALIASES.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
            mod = __import__(old, fromlist=["_"])
        assert mod is sys.modules[new]
        assert mod.__spec__.name == new  # the real module's spec is left alone
        sys.modules.pop(old, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import energycore.fit.energy  # noqa: F401  (new paths never warn)
