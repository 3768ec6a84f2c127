"""Reading the versioned JSON files of models and spaces, with one kind of error for all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def parse_json(text: str, what: str, source: str = "") -> Any:
    """``json.loads`` with a ``ValueError`` naming the file kind, the source and the position."""
    where = f"{source} is " if source else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what}: {where}not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise ValueError(f"{what}: {where}nested too deeply to be a valid file") from None


def read_json(path: str | Path, what: str) -> Any:
    """Read and parse a JSON file; unreadable or malformed files raise ``ValueError``."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as e:
        raise ValueError(f"{what}: cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{what}: {path} is not a text file (not UTF-8 at byte {e.start})"
        ) from None
    return parse_json(text, what, str(path))


def check_format(d: Any, fmt: str, newest: int, what: str, kind: str) -> int:
    """Check the ``format`` and ``format_version`` of a loaded file; return the version.

    Parameters
    ----------
    d : the parsed JSON document.
    fmt : the expected ``format`` string (e.g. ``"energycore.model"``).
    newest : the newest version this energycore reads.
    what : the prefix of error messages (``"model file"``).
    kind : the words for "not a ..." (``"an energycore model"``).

    Raises
    ------
    ValueError
        For a document that is not a mapping, has another format, a version that is not a
        positive integer, or one newer than ``newest``.
    """
    if not isinstance(d, dict) or d.get("format") != fmt:
        raise ValueError(f"{what}: not {kind} (missing 'format')")
    version = d.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{what}: bad format_version {version!r}")
    if version > newest:
        raise ValueError(
            f"{what}: format_version {version} was written by a newer energycore "
            f"(this one reads up to {newest}); upgrade energycore"
        )
    return version
