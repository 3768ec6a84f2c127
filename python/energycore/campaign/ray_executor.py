"""The Ray executor of :class:`~energycore.campaign.campaign.Campaign`.

Each configuration is a Ray task asking for ``num_gpus = tp * pp`` (a workload that needs a
meter) or one CPU (the simulator), or the options the user gives. Results stream back to the
driver, which alone writes the journal, in completion order. A task whose worker dies (killed,
out of memory, node lost) is retried by Ray ``retries`` times, then recorded as failed; an
exception of the workload is a failed record at once (it is not a crash, retrying would not
help).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from energycore.campaign import journal as _journal
from energycore.campaign.run import run_one

if TYPE_CHECKING:
    from energycore.campaign.campaign import Campaign


def _task(
    workload: Any, config: dict[str, Any], warmup: int, index: int, needs_meter: bool
) -> dict[str, Any]:
    """Runs in the Ray worker: one configuration, with a meter on the GPUs Ray assigned."""
    import time

    if not needs_meter:
        return run_one(
            workload, config, None, warmup=warmup, index=index, raise_system_errors=False
        )
    from energycore.measure import EnergyMeter

    try:
        meter = EnergyMeter()  # CUDA_VISIBLE_DEVICES is set by Ray to the task's GPUs
    except Exception as e:
        return {
            "type": "result",
            "key": _journal.config_key(config),
            "index": index,
            "config": config,
            "started": time.time(),
            "status": "failed",
            "result": {},
            "error": f"{type(e).__name__}: {e}",
            "duration_s": 0.0,
        }
    with meter:
        # A lost GPU fails this configuration only: the next task may land on another GPU.
        return run_one(
            workload, config, meter, warmup=warmup, index=index, raise_system_errors=False
        )


def _options(campaign: Campaign, config: dict[str, Any]) -> dict[str, Any]:
    res = campaign.resources
    if callable(res):
        opts = res(dict(config))
    elif res is not None:
        opts = res
    elif campaign.requires_meter:
        opts = {"num_gpus": int(config.get("tp", 1)) * int(config.get("pp", 1))}
    else:
        opts = {"num_cpus": 1}
    if not isinstance(opts, Mapping):
        raise ValueError(f"resources: expected a mapping of Ray task options, got {opts!r}")
    return {**opts, "max_retries": campaign.retries, "retry_exceptions": False}


def execute(
    campaign: Campaign,
    todo: list[tuple[int, dict[str, Any]]],
    record: Callable[[dict[str, Any]], Any],
) -> None:
    """Run ``todo`` as Ray tasks; ``record`` gets every journal record on the driver."""
    try:
        import ray
    except ImportError:
        raise ImportError("executor='ray' needs Ray: pip install 'energycore[ray]'") from None
    if not ray.is_initialized():
        ray.init()
    remote = ray.remote(_task)
    workload_ref = ray.put(campaign.workload)
    needs_meter = campaign.requires_meter
    pending: dict[Any, tuple[int, dict[str, Any]]] = {}
    for i, cfg in todo:
        ref = remote.options(**_options(campaign, cfg)).remote(
            workload_ref, cfg, campaign.warmup, i, needs_meter
        )
        pending[ref] = (i, cfg)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i, cfg = pending.pop(ref)
                try:
                    rec = ray.get(ref)
                except Exception as e:  # the worker died more often than retries allow
                    rec = {
                        "type": "result",
                        "key": _journal.config_key(cfg),
                        "index": i,
                        "config": cfg,
                        "status": "failed",
                        "result": {},
                        "error": f"{type(e).__name__}: {_first_line(e)} "
                        f"(after {campaign.retries} retr{'y' if campaign.retries == 1 else 'ies'})",
                        "duration_s": None,
                    }
                record(rec)
    finally:
        for ref in pending:  # interrupted: do not leave work running behind the driver
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""
