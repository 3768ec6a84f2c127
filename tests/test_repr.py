"""Reprs (text and HTML) against golden files, as iminuit does: presentation changes are reviewed.

The objects are fitted to noise-free data from known coefficients, so every printed figure is
exact. After an intended change of presentation, regenerate the files with
``ENERGYCORE_REGEN_GOLDEN=1 python -m pytest tests/test_repr.py`` and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import energycore as ec
from tests.helpers import SPACE, template_data

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "repr"


def _models() -> tuple[Any, Any]:
    X, y = template_data(1.0, 0)
    em = ec.EnergyModel(template="energy_v1", n_threads=1).fit(X, y["energy_v1"])
    lm = ec.LatencyModel(n_threads=1).fit(X, y["ttft_v1"], y["tpot_v1"])
    return em, lm


def _selection() -> Any:
    em, lm = _models()
    space = ec.ConfigSpace(SPACE, constraints=["tp * pp <= 8"])
    return space.argmin(
        "energy_per_request_j",
        subject_to={"latency_s": ("<=", 2.0)},
        models=[em, lm],
        input_len=512,
        output_len=128,
    )


CASES: dict[str, Callable[[], str]] = {
    "energy_model_unfitted.txt": lambda: repr(ec.EnergyModel()),
    "energy_model_fitted.txt": lambda: repr(_models()[0]),
    "energy_model_fitted.html": lambda: _models()[0]._repr_html_(),
    "latency_model_fitted.txt": lambda: repr(_models()[1]),
    "config_space.txt": lambda: repr(ec.ConfigSpace(SPACE, constraints=["tp * pp <= 8"])),
    "selection.txt": lambda: repr(_selection()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_repr_matches_golden_file(name: str) -> None:
    text = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("ENERGYCORE_REGEN_GOLDEN"):
        path.write_text(text + "\n")
    assert path.exists(), f"no golden file {path}: run with ENERGYCORE_REGEN_GOLDEN=1"
    assert text + "\n" == path.read_text()
