"""The append-only JSONL journal of a profiling campaign.

One JSON object per line: first a header (``"type": "header"``: format, campaign id, plan, the
planned configurations and their hash), then one ``"type": "result"`` record per finished
configuration, keyed by :func:`config_key`. Every record is written whole, flushed and fsynced
before the campaign moves on, so a crash (even SIGKILL) loses at most the configuration that
was running. A trailing partial line, left by a kill in the middle of a write, is ignored when
reading and cut off before the next append; any other unreadable line is skipped with a
:class:`~energycore.data.JournalWarning` naming it.

Lines are strict JSON (RFC 8259): non-finite numbers are written ``{"__float__": "nan"}``
(``"inf"``, ``"-inf"``) and read back as floats. A record that cannot be encoded (a result
holding a mapping with a tuple key, say) is written as a ``failed`` record saying why, with
every result column that can be encoded kept, so that a measurement is never lost to a
formatting error.
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

from energycore.data import FLOAT_TAG
from energycore.data import JOURNAL_FORMAT as FORMAT
from energycore.data import JOURNAL_FORMAT_VERSION as FORMAT_VERSION
from energycore.data import read_journal as read

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Writer",
    "config_key",
    "dumps",
    "journalable",
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


def _strict(v: Any, where: str) -> Any:
    """A JSON-ready copy of ``v``: non-finite floats tagged, numpy values made plain.

    ``TypeError`` naming ``where`` for a mapping key JSON cannot hold (a tuple, say)."""
    if isinstance(v, Mapping):
        out: dict[str, Any] = {}
        for k, x in v.items():
            if isinstance(k, (bool, np.bool_)) or k is None:
                key = json.dumps(k)  # as json.dumps would write it
            elif isinstance(k, str):
                key = k
            elif isinstance(k, (int, np.integer)):
                key = str(int(k))
            else:
                raise TypeError(f"{where}: key {k!r} ({type(k).__name__}) is not a string")
            out[key] = _strict(x, f"{where}[{key!r}]")
        return out
    if isinstance(v, np.ndarray):
        return _strict(v.tolist(), where)
    if isinstance(v, (list, tuple)):
        return [_strict(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isfinite(f):
            return f
        return {FLOAT_TAG: "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")}
    if isinstance(v, Path):
        return str(v)
    return repr(v)


def dumps(record: Mapping[str, Any]) -> str:
    """One record as a single line of strict JSON (no newline inside).

    ``ValueError`` for a record JSON cannot hold (see :func:`journalable`)."""
    try:
        return json.dumps(_strict(record, "record"), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"journal record cannot be encoded: {e}") from None
    except RecursionError:
        raise ValueError("journal record cannot be encoded: nested too deeply") from None


def journalable(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` itself when it encodes; else a ``failed`` record saying why, keeping every
    result column that encodes on its own (the measurement is kept as far as it can be)."""
    try:
        dumps(record)
        return dict(record)
    except ValueError as e:
        reason = str(e)
    rec = dict(record)
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    result = rec.get("result")
    for k, v in result.items() if isinstance(result, Mapping) else ():
        try:
            dumps({"v": v})
        except ValueError:
            dropped.append(repr(k))
            continue
        kept[str(k)] = v
    rec["result"] = kept
    rec["status"] = "failed"
    detail = f" (dropped column(s) {', '.join(dropped)})" if dropped else ""
    previous = f"; {rec['error']}" if rec.get("error") else ""
    rec["error"] = f"result not JSON-encodable: {reason}{detail}{previous}"
    try:
        dumps(rec)
    except ValueError:  # something outside the result: keep what surely encodes
        rec = {
            "type": rec.get("type", "result"),
            "key": str(rec.get("key")),
            "index": rec.get("index", 0) if isinstance(rec.get("index"), int) else 0,
            "config": normalize_config(rec["config"])
            if isinstance(rec.get("config"), Mapping)
            else {},
            "status": "failed",
            "result": {},
            "error": rec["error"],
        }
    return rec


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

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write one record (as :func:`journalable` makes it) and return what was written."""
        rec = journalable(record)
        self._f.write(dumps(rec).encode() + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        return rec

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
