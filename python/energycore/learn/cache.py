"""Kernel Tuner cache files as replayable measurements: :class:`CacheReplay`.

A Kernel Tuner cache (``.json``, or ``.json.gz`` as the FAIR benchmark hub ships them) is one
JSON object: ``device_name``, ``kernel_name``, ``problem_size``, ``tune_params_keys``,
``tune_params`` and ``cache``, a mapping ``"v1,v2,..."`` -> one record per configuration with the
parameter values and the measured fields (``time`` in ms, ``times``, ``compile_time``, energy or
power fields of observers, user metrics). A configuration that failed has an error name
(``RuntimeFailedConfig``, ``CompilationFailedConfig``, ``InvalidConfig``) in place of its
``time``. Kernel Tuner appends to an open cache and closes it at the end, so a cache left by an
interrupted run lacks its last ``}`` characters; it is read as if closed.

:class:`CacheReplay` holds the configurations and their results and, called with a
configuration, returns the cached result: the whole space measured once, replayed for any
tuner at no cost. It also writes a cache back (:meth:`CacheReplay.save`), so that a table of
measurements (the CSV files of the benchmark hub) can feed Kernel Tuner's simulation mode.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ERROR_NAMES", "CacheReplay"]

#: Kernel Tuner's failure statuses (the names of its ``ErrorConfig`` classes).
ERROR_NAMES = ("ErrorConfig", "InvalidConfig", "CompilationFailedConfig", "RuntimeFailedConfig")

# Fields of a cache record that are bookkeeping of Kernel Tuner, not results.
_BOOKKEEPING = ("timestamp", "strategy_time", "framework_time", "__error__")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _key(values: Iterable[Any]) -> str:
    """Kernel Tuner's cache key: the parameter values joined by commas."""
    return ",".join(str(_plain(v)) for v in values)


def _close_json(text: str) -> str:
    """The text of a cache that Kernel Tuner left open (``...,`` or without ``}\\n}``), closed."""
    s = text.strip()
    if s.endswith("}}}") or s.endswith("}\n}") or s.endswith("} }"):
        return s
    if s.endswith(","):
        s = s[:-1]
    # Kernel Tuner writes the header without its last "}\n}" and then appends records.
    return s + "}\n}" if s.rstrip().endswith("}") else s + "}}"


class CacheReplay:
    """Measurements of a whole configuration space, replayed on demand.

    Parameters
    ----------
    params : sequence of str
        The tuning-parameter names, in order (Kernel Tuner's ``tune_params_keys``).
    configs : sequence of mapping
        One configuration per entry, with at least the ``params``.
    results : sequence of mapping
        The measured fields of each configuration; a failed one has ``status`` set to its
        error name (anything but ``"ok"``).
    device_name, kernel_name : str
        Written back by :meth:`save`.
    problem_size : sequence of int, optional
        Written back by :meth:`save`.

    Notes
    -----
    Use :meth:`load` for a Kernel Tuner cache file and :meth:`from_frame` for a table.
    ``replay(config)`` (or calling the object) returns the cached result of a configuration:
    the ``measure`` of :meth:`energycore.Tuner.run`.
    """

    def __init__(
        self,
        params: Sequence[str],
        configs: Sequence[Mapping[str, Any]],
        results: Sequence[Mapping[str, Any]],
        *,
        device_name: str = "unknown",
        kernel_name: str = "kernel",
        problem_size: Sequence[int] | None = None,
    ) -> None:
        self.params = [str(p) for p in params]
        if not self.params:
            raise ValueError("params: a cache needs at least one tuning parameter")
        if len(set(self.params)) != len(self.params):
            raise ValueError(f"params: duplicate names in {self.params}")
        if len(configs) != len(results):
            raise ValueError(
                f"results: expected one per configuration ({len(configs)}), got {len(results)}"
            )
        if not configs:
            raise ValueError("configs: the cache holds no configurations")
        self.configs: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self._index: dict[str, int] = {}
        for i, (c, r) in enumerate(zip(configs, results)):
            missing = [p for p in self.params if p not in c]
            if missing:
                raise ValueError(f"configs[{i}]: missing parameter(s) {missing}")
            config = {p: _plain(c[p]) for p in self.params}
            key = _key(config.values())
            if key in self._index:
                raise ValueError(f"configs[{i}]: duplicate configuration {key}")
            self._index[key] = i
            self.configs.append(config)
            res = {k: _plain(v) for k, v in r.items() if k not in self.params}
            res.setdefault("status", "ok")
            self.results.append(res)
        self.device_name = str(device_name)
        self.kernel_name = str(kernel_name)
        self.problem_size = None if problem_size is None else [int(v) for v in problem_size]

    # ---- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> CacheReplay:
        """Read a Kernel Tuner cache file (``.json`` or gzip-compressed ``.json.gz``).

        Raises ``ValueError`` naming the file for anything that is not a readable cache.
        """
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"cache: {p} does not exist or is not a file")
        try:
            raw = p.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            text = raw.decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as e:
            raise ValueError(f"cache {p}: cannot read ({type(e).__name__}: {e})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            try:
                data = json.loads(_close_json(text))
            except json.JSONDecodeError as e:
                raise ValueError(f"cache {p}: not valid JSON ({e})") from None
        try:
            return cls.from_dict(data)
        except ValueError as e:
            raise ValueError(f"cache {p}: {e}") from None

    @classmethod
    def from_dict(cls, data: Any) -> CacheReplay:
        """From the parsed JSON of a Kernel Tuner cache."""
        if not isinstance(data, Mapping):
            raise ValueError("not a Kernel Tuner cache (expected a JSON object)")
        entries = data.get("cache")
        if not isinstance(entries, Mapping):
            raise ValueError("not a Kernel Tuner cache (no 'cache' object)")
        params = data.get("tune_params_keys")
        if params is None and isinstance(data.get("tune_params"), Mapping):
            params = list(data["tune_params"])
        if not isinstance(params, list) or not all(isinstance(k, str) for k in params):
            raise ValueError("'tune_params_keys' must be a list of parameter names")
        configs, results = [], []
        for key, rec in entries.items():
            if not isinstance(rec, Mapping):
                raise ValueError(f"cache entry {key!r} is not an object")
            missing = [k for k in params if k not in rec]
            if missing:
                raise ValueError(f"cache entry {key!r} lacks parameter(s) {missing}")
            configs.append({k: rec[k] for k in params})
            results.append(cls._result(rec, params))
        return cls(
            params,
            configs,
            results,
            device_name=str(data.get("device_name", "unknown")),
            kernel_name=str(data.get("kernel_name", "kernel")),
            problem_size=cls._problem_size(data.get("problem_size")),
        )

    @staticmethod
    def _problem_size(v: Any) -> list[int] | None:
        if isinstance(v, list) and all(isinstance(x, int) for x in v):
            return v
        if isinstance(v, int):
            return [v]
        return None

    @staticmethod
    def _result(rec: Mapping[str, Any], params: Sequence[str]) -> dict[str, Any]:
        """The result fields of one cache record; an error name anywhere marks a failure."""
        out: dict[str, Any] = {}
        status = "ok"
        for k, v in rec.items():
            if k in params or k in _BOOKKEEPING:
                continue
            if isinstance(v, str) and v in ERROR_NAMES:
                status = v
                continue
            out[k] = v
        out["status"] = status
        return out

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        params: Sequence[str],
        *,
        status: str | None = "status",
        device_name: str = "unknown",
        kernel_name: str = "kernel",
        problem_size: Sequence[int] | None = None,
    ) -> CacheReplay:
        """From a table (a pandas DataFrame or a mapping of columns): one row per configuration.

        ``params`` name the tuning-parameter columns; the other columns are results. A
        ``status`` column (any value but ``"ok"`` is a failure) marks failures; NaN result
        values are dropped from a row.
        """
        cols = {str(k): list(np.asarray(frame[k]).tolist()) for k in list(frame.keys())}
        missing = [p for p in params if p not in cols]
        if missing:
            raise ValueError(f"params: column(s) {missing} not in the table")
        n = len(next(iter(cols.values()))) if cols else 0
        configs = [{p: cols[p][i] for p in params} for i in range(n)]
        results = []
        for i in range(n):
            r: dict[str, Any] = {}
            for k, v in cols.items():
                if k in params or k == status:
                    continue
                if isinstance(v[i], float) and math.isnan(v[i]):
                    continue
                r[k] = v[i]
            r["status"] = "ok" if status is None or status not in cols else str(cols[status][i])
            results.append(r)
        return cls(
            params,
            configs,
            results,
            device_name=device_name,
            kernel_name=kernel_name,
            problem_size=problem_size,
        )

    # ---- what a tuner uses -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.configs)

    def __repr__(self) -> str:
        failed = sum(r["status"] != "ok" for r in self.results)
        return (
            f"CacheReplay({self.kernel_name!r} on {self.device_name!r}: {len(self)} "
            f"configurations, {failed} failed, params={self.params})"
        )

    @property
    def tune_params(self) -> dict[str, list[Any]]:
        """Each parameter's values in first-seen order (Kernel Tuner's ``tune_params``)."""
        out: dict[str, list[Any]] = {p: [] for p in self.params}
        seen: dict[str, set[Any]] = {p: set() for p in self.params}
        for c in self.configs:
            for p in self.params:
                if c[p] not in seen[p]:
                    seen[p].add(c[p])
                    out[p].append(c[p])
        return {p: sorted(v) if all(isinstance(x, int | float) for x in v) else v
                for p, v in out.items()}  # fmt: skip

    def to_columns(self) -> dict[str, np.ndarray]:
        """The configurations as columns (what :class:`~energycore.Tuner` takes as a space)."""
        return {p: np.asarray([c[p] for c in self.configs]) for p in self.params}

    def index_of(self, config: Mapping[str, Any]) -> int:
        """Position of a configuration; ``ValueError`` for unknown parameters or points."""
        if not isinstance(config, Mapping):
            raise ValueError(f"config: expected a mapping, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.params))
        if unknown:
            raise ValueError(f"config: unknown parameter(s) {unknown} (cache has {self.params})")
        missing = [p for p in self.params if p not in config]
        if missing:
            raise ValueError(f"config: missing parameter(s) {missing}")
        key = _key(config[p] for p in self.params)
        i = self._index.get(key)
        if i is None:  # 4.0 vs 4: try the values as the cache spells them
            norm = []
            for p in self.params:
                v = _plain(config[p])
                norm.append(int(v) if isinstance(v, float) and v.is_integer() else v)
            i = self._index.get(_key(norm))
        if i is None:
            raise ValueError(f"config: {key} is not in the cache")
        return i

    def replay(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The cached result of ``config`` (a copy); failures have ``status`` != ``"ok"``."""
        return dict(self.results[self.index_of(config)])

    __call__ = replay

    def values(self, column: str = "time") -> np.ndarray:
        """One column of every configuration; NaN where failed or absent."""
        out = np.full(len(self), np.nan)
        for i, r in enumerate(self.results):
            v = r.get(column)
            if r["status"] == "ok" and isinstance(v, int | float) and not isinstance(v, bool):
                out[i] = float(v)
        return out

    def valid(self) -> np.ndarray:
        """Boolean mask of the configurations that did not fail."""
        return np.asarray([r["status"] == "ok" for r in self.results])

    def threshold(self, fraction: float, column: str = "time", *, minimize: bool = True) -> float:
        """The value a configuration must reach to be in the best ``fraction`` of the valid ones
        (at least one configuration qualifies)."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction: must be in (0, 1], got {fraction!r}")
        v = self.values(column)
        v = np.sort(v[np.isfinite(v)])
        if v.size == 0:
            raise ValueError(f"column: no valid configuration has {column!r}")
        if not minimize:
            v = v[::-1]
        return float(v[max(math.ceil(fraction * v.size) - 1, 0)])

    # ---- writing ---------------------------------------------------------------------------

    def to_dict(self, objective: str = "time") -> dict[str, Any]:
        """The Kernel Tuner cache object (failures get their error name as ``objective``)."""
        entries: dict[str, Any] = {}
        for c, r in zip(self.configs, self.results):
            rec: dict[str, Any] = dict(c)
            for k, v in r.items():
                if k != "status":
                    rec[k] = v
            if r["status"] != "ok":
                rec[objective] = (
                    r["status"] if r["status"] in ERROR_NAMES else "RuntimeFailedConfig"
                )
            for k in ("compile_time", "verification_time", "benchmark_time"):
                rec.setdefault(k, 0)
            rec.setdefault("times", [])
            entries[_key(c.values())] = rec
        return {
            "device_name": self.device_name,
            "kernel_name": self.kernel_name,
            "problem_size": self.problem_size if self.problem_size is not None else [1],
            "tune_params_keys": list(self.params),
            "tune_params": self.tune_params,
            "objective": objective,
            "cache": entries,
        }

    def save(self, path: str | Path, objective: str = "time") -> Path:
        """Write a Kernel Tuner cache file (gzip when the name ends in ``.gz``)."""
        p = Path(path)
        text = json.dumps(self.to_dict(objective), default=_plain)
        if p.suffix == ".gz":
            p.write_bytes(gzip.compress(text.encode()))
        else:
            p.write_text(text)
        return p
