"""The append-only JSONL journal of a profiling campaign.

One JSON object per line: first a header (``"type": "header"``: format, campaign id, plan, the
planned configurations and their hash), then one ``"type": "result"`` record per finished
configuration, keyed by :func:`config_key`. Every record is written whole, flushed and fsynced
before the campaign moves on, so a crash (even SIGKILL) loses at most the configuration that
was running. A trailing partial line, left by a kill in the middle of a write, is ignored when
reading and cut off before the next append; any other unreadable line is an error naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from energycore.data import JOURNAL_FORMAT as FORMAT
from energycore.data import JOURNAL_FORMAT_VERSION as FORMAT_VERSION
from energycore.data import read_journal as read

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Writer",
    "config_key",
    "dumps",
    "normalize_config",
    "plan_hash",
    "read",
]


def _plain(v: Any) -> Any:
    """A JSON-ready scalar: numpy numbers to Python, integral floats of configs kept apart."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, str):
        return v
    raise ValueError(f"expected a number or a string, got {type(v).__name__} {v!r}")


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration with plain JSON values; integral floats become ints (``4.0`` -> ``4``)
    so that the same point always has the same key."""
    if not isinstance(config, Mapping):
        raise ValueError(f"configuration: expected a mapping, got {type(config).__name__}")
    out: dict[str, Any] = {}
    for k, v in config.items():
        if not isinstance(k, str):
            raise ValueError(f"configuration: column names must be strings, got {k!r}")
        try:
            p = _plain(v)
        except ValueError as e:
            raise ValueError(f"configuration: column {k!r}: {e}") from None
        if isinstance(p, float):
            if not math.isfinite(p):
                raise ValueError(f"configuration: column {k!r} must be finite, got {p}")
            if p.is_integer():
                p = int(p)
        out[k] = p
    return out


def config_key(config: Mapping[str, Any]) -> str:
    """The stable key of a configuration: its normalised columns as sorted compact JSON."""
    return json.dumps(normalize_config(config), sort_keys=True, separators=(",", ":"))


def plan_hash(configs: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 of the planned configurations, in order."""
    h = hashlib.sha256()
    for c in configs:
        h.update(config_key(c).encode())
        h.update(b"\n")
    return h.hexdigest()


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    return repr(v)


def dumps(record: Mapping[str, Any]) -> str:
    """One record as a single JSON line (no newline inside)."""
    return json.dumps(record, default=_json_default, separators=(",", ":"))


def _lock(f: Any, path: Path) -> None:
    """An exclusive advisory lock on the open journal (released by the OS when the process
    dies, even by SIGKILL): two campaigns never append to one journal at once."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise ValueError(
            f"journal {path} is in use by another running campaign (it holds the file lock)"
        ) from None


class Writer:
    """Appends records to a journal, each flushed and fsynced before :meth:`append` returns.
    Holds an exclusive lock on the file while open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._f = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        _lock(self._f, self.path)
        # Cut a partial last record (from a crash) so that the next record starts a line.
        size = self._f.seek(0, os.SEEK_END)
        if size:
            with open(self.path, "rb") as r:
                data = r.read()
            keep = data.rfind(b"\n") + 1
            if keep != size:
                self._f.truncate(keep)
                self._f.seek(keep)
                os.fsync(self._f.fileno())
        if created:
            _fsync_dir(self.path.parent)

    @property
    def empty(self) -> bool:
        return self._f.tell() == 0

    def append(self, record: Mapping[str, Any]) -> None:
        self._f.write(dumps(record).encode() + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
