"""One configuration run by a campaign worker: the workload call, its window, its journal record.

Shared by the local loop (:mod:`energycore.campaign.campaign`) and the Ray executor
(:mod:`energycore.campaign.ray_executor`), so that neither imports the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from energycore.campaign import journal as _journal
from energycore.errors import CUDAError, NoGPUError, NVMLError, ServerUnreachableError
from energycore.measure.nvml import Measurement

__all__ = ["SYSTEM_ERRORS", "run_one"]

_WINDOW = "__campaign__"


def _columns(out: Any, window: Measurement | None) -> dict[str, Any]:
    """The result columns of one configuration from the workload's return value."""
    row: dict[str, Any] = {}
    if window is not None:
        row.update(window.to_dict())
        row["latency_s"] = row.pop("time_s")
    if out is None:
        if window is None:
            raise ValueError("workload returned None and there is no meter window to use")
        return row
    if isinstance(out, Measurement):
        d = out.to_dict()
        d["latency_s"] = d.pop("time_s")
        row.update(d)
        return row
    if not isinstance(out, Mapping):
        raise ValueError(
            f"workload returned {type(out).__name__}; expected None, a Measurement or a mapping "
            "of result columns"
        )
    for k, v in out.items():
        if not isinstance(k, str):
            raise ValueError(f"workload result: column names must be strings, got {k!r}")
        if isinstance(v, Measurement):
            row.update(v.to_dict(prefix=f"{k}_"))
        else:
            row[k] = v
    return row


#: Errors of the measuring system (GPU, NVML, CUDA, an unreachable server) rather than of a
#: configuration.
SYSTEM_ERRORS = (NoGPUError, NVMLError, CUDAError, ServerUnreachableError)


def run_one(
    workload: Callable[..., Any],
    config: Mapping[str, Any],
    meter: Any,
    *,
    warmup: int = 0,
    index: int = 0,
    raise_system_errors: bool = True,
) -> dict[str, Any]:
    """Run one configuration (after ``warmup`` unmeasured calls) and return its journal record.

    Exceptions of the workload become a ``failed`` record. Errors of the measuring system
    (:class:`~energycore.NoGPUError`, the NVML and CUDA errors: a lost GPU, a permission
    problem) say nothing about the configuration: with ``raise_system_errors`` they propagate,
    so that the configuration is not recorded and a later :meth:`Campaign.resume` measures it.
    """
    key = _journal.config_key(config)
    rec: dict[str, Any] = {
        "type": "result",
        "key": key,
        "index": index,
        "config": dict(config),
        "started": time.time(),
    }
    t0 = time.perf_counter()
    try:
        for _ in range(warmup):
            workload(dict(config), meter)
        if meter is not None:
            with meter.window(_WINDOW) as w:
                out = workload(dict(config), meter)
            result = _columns(out, w.measurement)
        else:
            result = _columns(workload(dict(config), None), None)
        # Model features the configuration leaves to the workload (the simulator's defaults).
        for f in ("input_len", "output_len"):
            if f not in config and f not in result and hasattr(workload, f):
                result[f] = getattr(workload, f)
        rec.update(status="ok", result=result, error=None)
    except SYSTEM_ERRORS as e:
        if raise_system_errors:
            raise
        rec.update(status="failed", result={}, error=f"{type(e).__name__}: {e}")
    except Exception as e:  # a failing configuration is recorded, and the campaign goes on
        rec.update(status="failed", result={}, error=f"{type(e).__name__}: {e}")
    rec["duration_s"] = time.perf_counter() - t0
    return rec
