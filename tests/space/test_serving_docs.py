"""The examples of docs/serving.md on confidence= and from_rows run as pasted."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
SECTIONS = (
    "### Selection under uncertainty: `confidence=`",
    "### An explicit list of configurations: `ConfigSpace.from_rows`",
)


def _blocks(heading: str) -> list[str]:
    text = DOC.read_text()
    start = text.index(heading)
    end = min(
        (i for i in (text.find(h, start + 4) for h in ("\n## ", "\n### ")) if i > 0), default=-1
    )
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], re.S)


@pytest.mark.parametrize("heading", SECTIONS)
def test_serving_examples_run(heading: str) -> None:
    blocks = _blocks(heading)
    assert blocks
    for code in blocks:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an example that warns is not as pasted
            exec(compile(code, f"{DOC.name}: {heading}", "exec"), {"__name__": "__doc__"})
