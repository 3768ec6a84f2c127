"""The flow runs one way: no module of energycore imports a layer above its own.

Every ``import`` of every module (at the top, inside functions, under ``TYPE_CHECKING``) is parsed
and checked against the layer order of docs/architecture.md:

    _util, errors, _version, _core  <-  fit, measure, simulate, data  <-  space  <-  campaign
    <-  learn  <-  app, integrations, tune (the public namespace of the tuner)

A module may import its own package and any lower layer, never a sibling package of the same
layer nor a higher one. The root ``energycore/__init__.py`` (lazy public names) and the alias
finder of old module paths are the only exemptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "energycore"

#: top-level package or module of energycore -> layer (0 is the bottom)
LAYERS: dict[str, int] = {
    "_core": 0,
    "_version": 0,
    "errors": 0,
    "_util": 0,
    "fit": 1,
    "measure": 1,
    "simulate": 1,
    "data": 1,
    "space": 2,
    "campaign": 3,
    "workloads": 4,
    "learn": 4,
    "tune": 5,
    "app": 5,
    "integrations": 5,
    "compiler": 5,
}
EXEMPT = {"__init__", "_aliases"}


def _unit(parts: tuple[str, ...]) -> str:
    """The top-level unit of a module path inside the package (``fit`` for fit/energy.py)."""
    return parts[0].removesuffix(".py")


def _modules() -> list[Path]:
    """Every module of the package but the exempt ones."""
    return sorted(
        p for p in PACKAGE.rglob("*.py") if _unit(p.relative_to(PACKAGE).parts) not in EXEMPT
    )


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported energycore unit) for every import statement of a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(PACKAGE).parts
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                base = list(rel[: len(rel) - node.level])
                mod = ".".join(["energycore", *base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            names = [mod] if mod != "energycore" else [f"energycore.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "energycore" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def test_every_unit_has_a_layer():
    units = {_unit(p.relative_to(PACKAGE).parts) for p in _modules()}
    assert units - set(LAYERS) == set(), "new package: give it a layer in LAYERS and docs"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_against_the_layer_order(path):
    own = _unit(path.relative_to(PACKAGE).parts)
    bad = [
        f"{path.relative_to(PACKAGE)}:{line} imports energycore.{unit} "
        f"(layer {LAYERS.get(unit, '?')}) from {own} (layer {LAYERS[own]})"
        for line, unit in _imports(path)
        if unit != own and LAYERS.get(unit, 99) >= LAYERS[own]
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_an_upward_import(monkeypatch):
    """The test itself can fail: a simulator module importing the fit layer is caught."""
    fake = PACKAGE / "simulate" / "__probe_layers__.py"
    fake_text = "def f():\n    from energycore.fit import EnergyModel\n    from energycore._util import columns\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: fake_text)
    assert _imports(fake) == [(2, "fit"), (3, "_util")]


TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    "path", sorted(TESTS.rglob("test_*.py")), ids=lambda p: str(p.relative_to(TESTS))
)
def test_no_test_module_imports_another(path):
    """Shared helpers live in tests/helpers.py and conftest.py, never in a test module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            names = [mod] if mod else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        bad += [f"line {node.lineno}: {n}" for n in names if n.split(".")[-1].startswith("test_")]
    assert not bad, f"{path.name} imports another test module: {bad}"


def test_tests_mirror_the_package():
    """Each capability's tests are in the folder of the same name (tests/fit for fit/ ...)."""
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} - {"_util"}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= folders, f"no test folder for {sorted(packages - folders)}"
