"""The committed type stubs of the compiled module cannot drift from the module itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STUB = Path(__file__).resolve().parents[1] / "python" / "energycore" / "_core.pyi"


def test_core_stub_matches_the_compiled_module(tmp_path: Path) -> None:
    pytest.importorskip("pybind11_stubgen")
    cmd = [sys.executable, "-m", "pybind11_stubgen", "energycore._core", "-o", str(tmp_path),
           "--numpy-array-use-type-var"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    generated = (tmp_path / "energycore" / "_core.pyi").read_text()
    assert generated == STUB.read_text(), (
        "python/energycore/_core.pyi is out of date: run scripts/gen-stubs after building"
    )
