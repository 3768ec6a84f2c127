"""Reading the versioned JSON files of models and spaces, with one kind of error for all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def parse_json(text: str, what: str, source: str = "") -> Any:
    """``json.loads`` with a ``ValueError`` naming the file kind, the source and the position."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        where = f"{source} is " if source else ""
        raise ValueError(f"{what}: {where}not valid JSON ({e.msg} at line {e.lineno})") from None


def read_json(path: str | Path, what: str) -> Any:
    """Read and parse a JSON file; unreadable or malformed files raise ``ValueError``."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ValueError(f"{what}: cannot read {path}: {e.strerror}") from None
    return parse_json(text, what, str(path))
