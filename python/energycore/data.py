"""Measurements in and out: CSV, Parquet, campaign journals (JSONL) as named columns.

One reader and writer for every file of measurements energycore touches, usable without pandas:
a table is a ``dict`` of equal-length numpy columns (float where numeric, object otherwise), the
form every estimator of energycore takes as ``X``.

- :func:`read_csv` / :func:`write_csv`;
- :func:`read_parquet` / :func:`write_parquet` (need pyarrow: ``pip install energycore[parquet]``);
- :func:`read_journal`: the header and records of a campaign journal;
  :func:`journal_columns`: its successful results as a table;
- :func:`read_table` / :func:`write_table`: any of those, chosen by the file's suffix;
- :func:`read_mlenergy`: ML.ENERGY leaderboard (v3) records mapped to energycore's columns.
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
    "read_mlenergy",
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


#: ML.ENERGY v3 fields :func:`read_mlenergy` needs, each with the energycore column it feeds.
MLENERGY_FIELDS: dict[str, str] = {
    "tensor_parallel": "tp",
    "num_gpus": "n_gpus",
    "avg_batch_size": "batch",
    "avg_output_len": "output_len",
    "energy_per_request_joules": "energy_per_request_j",
    "median_itl_ms": "tpot_s",
}


def _mlenergy_records(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        cols = read_csv(path)
        n = len(next(iter(cols.values())))
        return [{k: v[i] for k, v in cols.items()} for i in range(n)]
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    recs = doc.get("configurations") if isinstance(doc, dict) else doc
    if not isinstance(recs, list) or not all(isinstance(r, dict) for r in recs):
        raise ValueError(f"{path}: expected a list of records or a 'configurations' list")
    task = doc.get("task", path.stem) if isinstance(doc, dict) else path.stem
    out = []
    for r in recs:
        flat = {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
        flat.setdefault("task", task)
        out.append(flat)
    return out


def read_mlenergy(path: str | Path, input_len: float = 0.0) -> dict[str, np.ndarray]:
    """ML.ENERGY leaderboard (v3) configurations as energycore's columns, with units.

    Reads the leaderboard's per-task JSON (a ``configurations`` list, or a list of records;
    the task is the file name unless a record says) or a CSV of the same records, one row per
    configuration (``shared/data/mlenergy-leaderboard-v3-llm/llm_configs.csv``). Every source
    field is kept; these columns are added:

    ==========================  ==========================================================
    ``tp``                      ``tensor_parallel``
    ``pp``                      1 (the benchmark has no pipeline parallelism)
    ``n_gpus``                  ``num_gpus`` (expert- and data-parallel runs use more GPUs
                                than ``tp``; the models' per-GPU terms use it)
    ``batch``                   ``avg_batch_size``: the time-averaged running batch (float)
    ``input_len``               ``input_len`` argument (prompt lengths are not published;
                                within one task they are the task's prompt set, a constant)
    ``output_len``              ``avg_output_len``, tokens
    ``energy_j``                J per batch over all GPUs: ``energy_per_request_joules *
                                avg_batch_size`` (the EnergyModel target)
    ``energy_per_request_j``    ``energy_per_request_joules``
    ``energy_per_token_j``      ``energy_per_token_joules``
    ``power_w``                 ``avg_power_watts``, summed over the GPUs
    ``throughput_tok_s``        ``output_throughput_tokens_per_sec``
    ``tpot_s``                  ``median_itl_ms / 1000``: time per output token, s (the
                                TpotModel target)
    ``gpu``                     ``gpu_model``
    ``group``                   ``"task|model_id|gpu_model"``, one deployment
    ==========================  ==========================================================

    Parameters
    ----------
    path : str or Path
        A ``.json`` or ``.csv`` file.
    input_len : float
        The prompt length to record in ``input_len`` (default 0: prefill is not separated
        from decode, whose terms then carry its energy).

    Returns
    -------
    dict of str to ndarray
        Named columns, numeric as float, others as object.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if not (isinstance(input_len, (int, float)) and math.isfinite(input_len) and input_len >= 0):
        raise ValueError(f"input_len: must be a finite non-negative number, got {input_len!r}")
    recs = _mlenergy_records(path)
    if not recs:
        raise ValueError(f"{path}: no configurations")
    for i, r in enumerate(recs):
        for field in (*MLENERGY_FIELDS, "avg_power_watts", "output_throughput_tokens_per_sec"):
            v = r.get(field)
            try:
                x = float(v)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                x = math.nan
            if not (math.isfinite(x) and x > 0):
                raise ValueError(
                    f"{path}: field '{field}' must be a positive number, got {v!r} at row {i}"
                )
    cols = records_to_columns(recs)
    out: dict[str, np.ndarray] = {}
    for k, v in cols.items():
        try:
            out[k] = np.array([math.nan if x in ("", None) else float(x) for x in v])
        except (TypeError, ValueError):
            out[k] = np.array([("" if x is None else str(x)) for x in v], dtype=object)
    f = {k: out[k].astype(np.float64) for k in (*MLENERGY_FIELDS, "avg_power_watts")}
    n = len(f["num_gpus"])
    out["tp"] = f["tensor_parallel"]
    out["pp"] = np.ones(n)
    out["n_gpus"] = f["num_gpus"]
    out["batch"] = f["avg_batch_size"]
    out["input_len"] = np.full(n, float(input_len))
    out["output_len"] = f["avg_output_len"]
    out["energy_per_request_j"] = f["energy_per_request_joules"]
    out["energy_j"] = f["energy_per_request_joules"] * f["avg_batch_size"]
    if "energy_per_token_joules" in out:
        out["energy_per_token_j"] = out["energy_per_token_joules"]
    out["power_w"] = f["avg_power_watts"]
    out["throughput_tok_s"] = out["output_throughput_tokens_per_sec"].astype(np.float64)
    out["tpot_s"] = f["median_itl_ms"] / 1000.0
    gpu = out.get("gpu_model", np.array([""] * n, dtype=object))
    out["gpu"] = np.array([str(g) for g in gpu], dtype=object)
    task = out.get("task", np.array([path.stem] * n, dtype=object))
    model = out.get("model_id", np.array([""] * n, dtype=object))
    out["group"] = np.array([f"{t}|{m}|{g}" for t, m, g in zip(task, model, gpu)], dtype=object)
    return out
