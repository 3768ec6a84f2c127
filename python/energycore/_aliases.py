"""Old module paths (before the package was grouped by capability), kept for one release.

``import energycore.model`` still works: a finder on ``sys.meta_path`` answers each old name with
the very module that now holds the code (``energycore.fit.energy``), after a
``DeprecationWarning``. The table below is the whole list; nothing else is aliased.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module path -> new module path
ALIASES: dict[str, str] = {
    "energycore.model": "energycore.fit.energy",
    "energycore.latency": "energycore.fit.latency",
    "energycore.constraints": "energycore.space.constraints",
    "energycore.selector": "energycore.space.selector",
    "energycore.selection": "energycore.space.selection",
    "energycore.gbdt": "energycore.learn.gbdt",
    "energycore.scorers": "energycore.learn.scorers",
    "energycore.profile": "energycore.campaign.campaign",
    "energycore.cli": "energycore.app.cli",
    "energycore.plots": "energycore.app.plots",
    "energycore._columns": "energycore._util.columns",
    "energycore._persist": "energycore._util.persist",
    "energycore._axes": "energycore.space.axes",
    "energycore._scorers": "energycore.space.query_columns",
    "energycore._modelset": "energycore.space.modelset",
    "energycore._estimator": "energycore.learn._estimator",
    "energycore._plans": "energycore.campaign.plans",
    "energycore._journal": "energycore.campaign.journal",
    "energycore._ray_executor": "energycore.campaign.ray_executor",
    "energycore.simulate.demo": "energycore.app.demo",
    "energycore.simulate._grid": "energycore.app.grid",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module that replaced it."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ALIASES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = ALIASES[spec.name]
        warnings.warn(
            f"{spec.name} is deprecated and will be removed in the next release; "
            f"import {new} (or the public name from energycore)",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: give the module back the spec the import machinery replaced."""
        module.__spec__ = self._specs[module.__name__]


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
