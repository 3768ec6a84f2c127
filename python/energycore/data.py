"""Measurements in and out: CSV, Parquet, campaign journals (JSONL) as named columns.

One reader and writer for every file of measurements energycore touches, usable without pandas:
a table is a ``dict`` of equal-length numpy columns (float where numeric, object otherwise), the
form every estimator of energycore takes as ``X``.

- :func:`read_csv` / :func:`write_csv`;
- :func:`read_parquet` / :func:`write_parquet` (need pyarrow: ``pip install energycore[parquet]``);
- :func:`read_journal`: the header and records of a campaign journal;
  :func:`journal_columns`: its successful results as a table;
- :func:`read_table` / :func:`write_table`: any of those, chosen by the file's suffix.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "JOURNAL_FORMAT",
    "JOURNAL_FORMAT_VERSION",
    "JournalWarning",
    "journal_columns",
    "read_csv",
    "read_journal",
    "read_parquet",
    "read_table",
    "records_to_columns",
    "write_csv",
    "write_parquet",
    "write_table",
]

#: The ``format`` of a campaign journal's header line.
JOURNAL_FORMAT = "energycore.journal"
#: The newest journal version this energycore writes; older ones keep loading.
JOURNAL_FORMAT_VERSION = 1
#: How a journal spells a non-finite number (strict JSON, RFC 8259, has none):
#: ``{"__float__": "nan"}``, ``{"__float__": "inf"}``, ``{"__float__": "-inf"}``.
FLOAT_TAG = "__float__"
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class JournalWarning(UserWarning):
    """A journal line was skipped: unreadable, or a record that breaks the schema."""


def _decode_object(d: dict[str, Any]) -> Any:
    """``json.loads`` object hook: ``{"__float__": "nan"}`` back to the float."""
    if len(d) == 1 and FLOAT_TAG in d and d[FLOAT_TAG] in _NON_FINITE:
        return _NON_FINITE[d[FLOAT_TAG]]
    return d


def _schema_problem(rec: dict[str, Any]) -> str | None:
    """What is wrong with a result record, or None."""
    if not isinstance(rec.get("key"), str):
        return "result record without a key"
    if not isinstance(rec.get("status"), str):
        return "result record without a 'status'"
    if not isinstance(rec.get("config"), dict):
        return "result record without a 'config' mapping"
    if rec.get("result") is not None and not isinstance(rec.get("result"), dict):
        return "result record whose 'result' is not a mapping"
    return None


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """A CSV as named columns: numeric columns as float arrays, others as object arrays.

    Lines starting with ``#`` are comments; an empty cell is NaN in a numeric column. No pandas
    needed. ``ValueError`` names the file for a missing, unreadable or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(line for line in fh if not line.startswith("#"))
            rows = list(reader)
            names = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: not a readable CSV file ({e})") from None
    if not names or not rows:
        raise ValueError(f"{path}: no rows (an empty or header-only CSV)")
    cols: dict[str, np.ndarray] = {}
    for name in names:
        raw = [r.get(name) for r in rows]
        try:
            cols[name] = np.array([math.nan if v in ("", None) else float(v) for v in raw])
        except ValueError:
            cols[name] = np.array(["" if v is None else v for v in raw], dtype=object)
    return cols


def write_csv(path: str | Path, cols: dict[str, Any]) -> None:
    """Named columns (equal length) to a CSV file; non-finite floats are written as empty cells."""
    path = Path(path)
    names = list(cols)
    n = len(next(iter(cols.values()))) if cols else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for i in range(n):
            w.writerow([_cell(cols[k][i]) for k in names])


def _cell(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def records_to_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Row records (mappings) as named columns, the union of their keys; NaN where a key is missing."""
    names: list[str] = []
    for r in records:
        names += [k for k in r if k not in names]
    return {k: [r.get(k, math.nan) for r in records] for k in names}


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Parquet needs pyarrow: pip install 'energycore[parquet]'") from None
    return pq


def read_parquet(path: str | Path) -> dict[str, np.ndarray]:
    """A Parquet file as named columns (numeric as float arrays, others as object arrays)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        table = _pyarrow().read_table(path)
    except ImportError:
        raise
    except Exception as e:  # pyarrow raises its own error types for a damaged file
        raise ValueError(f"{path}: not a readable Parquet file ({e})") from None
    cols: dict[str, np.ndarray] = {}
    for name in table.column_names:
        values = table.column(name).to_pylist()
        try:
            cols[name] = np.array([math.nan if v is None else float(v) for v in values])
        except (TypeError, ValueError):
            cols[name] = np.array(values, dtype=object)
    if not cols or not len(next(iter(cols.values()))):
        raise ValueError(f"{path}: no rows")
    return cols


def write_parquet(path: str | Path, cols: Mapping[str, Any]) -> None:
    """Named columns (equal length) to a Parquet file."""
    import pyarrow as pa

    pq = _pyarrow()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: list(v) for k, v in cols.items()}), path)


def read_journal(path: str | Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header (None for a missing or empty journal) and the result records of a journal.

    A trailing line without its newline (a write cut by a crash) is ignored silently. Any
    other line that cannot be read (not JSON, not UTF-8, not a record) or that breaks the
    schema (a result without ``key``, ``status`` or ``config``; an unknown record type) is
    skipped with a :class:`JournalWarning` naming the file and the line, so that one damaged
    line never hides the rest. Non-finite numbers written as ``{"__float__": "nan"}`` are read
    back as floats. ``ValueError`` for a file that is not a journal (its first readable
    record is not a journal header) or is of a newer format version.
    """
    p = Path(path)
    if not p.exists():
        return None, []
    if p.is_dir():
        raise ValueError(f"journal: {p} is a directory")
    data = p.read_bytes()
    end = data.rfind(b"\n") + 1  # everything after the last newline is a partial record
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    skipped: list[int] = []

    def skip(lineno: int, why: str) -> None:
        skipped.append(lineno)
        warnings.warn(f"journal {p}: line {lineno} skipped: {why}", JournalWarning, stacklevel=3)

    for lineno, raw in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"), object_hook=_decode_object)
        except UnicodeDecodeError as e:
            skip(lineno, f"not UTF-8 text (byte {e.start})")
            continue
        except json.JSONDecodeError as e:
            skip(lineno, f"not valid JSON ({e.msg})")
            continue
        except RecursionError:
            skip(lineno, "nested too deeply to be a record")
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
            skip(lineno, "not a journal record (a JSON object with a 'type')")
            continue
        if header is None:
            if rec["type"] != "header" or rec.get("format") != JOURNAL_FORMAT:
                lost = f" (line {skipped[0]}, unreadable, may have been it)" if skipped else ""
                raise ValueError(f"journal {p}: not an energycore journal (no header line{lost})")
            version = rec.get("format_version")
            if not isinstance(version, int) or version > JOURNAL_FORMAT_VERSION:
                raise ValueError(
                    f"journal {p}: format_version {version!r} is not readable by this energycore "
                    f"(reads up to {JOURNAL_FORMAT_VERSION})"
                )
            header = rec
        elif rec["type"] == "result":
            problem = _schema_problem(rec)
            if problem is not None:
                skip(lineno, problem)
                continue
            records.append(rec)
        else:
            skip(lineno, f"unknown record type {rec['type']!r}")
    return header, records


def journal_columns(path: str | Path, include_failed: bool = False) -> dict[str, np.ndarray]:
    """A journal's results as named columns: the configuration's, then the results'.

    With ``include_failed``, failed configurations are rows too, with ``status`` and ``error``.
    """
    _, records = read_journal(path)
    rows: list[dict[str, Any]] = []
    for rec in sorted(records, key=lambda r: r.get("index", 0)):
        if rec.get("status") != "ok" and not include_failed:
            continue
        row = dict(rec.get("config", {}))
        for k, v in (rec.get("result") or {}).items():
            row.setdefault(k, v)
        if include_failed:
            row["status"] = rec.get("status")
            row["error"] = rec.get("error")
        rows.append(row)
    if not rows:
        raise ValueError(
            f"{path}: no {'' if include_failed else 'successful '}results in the journal"
        )
    out: dict[str, np.ndarray] = {}
    for k, v in records_to_columns(rows).items():
        try:
            out[k] = np.array([math.nan if x is None else float(x) for x in v])
        except (TypeError, ValueError):
            out[k] = np.array(v, dtype=object)
    return out


_READERS = {".csv": read_csv, ".parquet": read_parquet, ".jsonl": journal_columns}


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Named columns from a ``.csv``, ``.parquet`` or ``.jsonl`` (campaign journal) file."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"{path}: unknown file type {path.suffix!r} (expected one of {sorted(_READERS)})"
        )
    return reader(path)


def write_table(path: str | Path, cols: Mapping[str, Any]) -> None:
    """Named columns to a ``.csv`` or ``.parquet`` file, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        write_csv(path, dict(cols))
    elif suffix == ".parquet":
        write_parquet(path, cols)
    else:
        raise ValueError(
            f"{path}: unknown file type {path.suffix!r} (expected '.csv' or '.parquet')"
        )
