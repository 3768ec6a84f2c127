"""Profiling campaigns: plan configurations, measure each, journal every result, resume.

A :class:`Campaign` takes a :class:`~energycore.ConfigSpace` (or a list of configurations), a
*workload* and a plan. The workload is a callable ``workload(config, meter)`` that runs one
configuration: it may return

- ``None``: the campaign's own energy window around the call is the measurement;
- a :class:`~energycore.measure.Measurement`;
- a mapping of columns (``energy_j``, ``latency_s`` ...); values that are Measurements are
  expanded into prefixed columns (``{"prefill": m}`` gives ``prefill_energy_j`` ...).

A workload with ``requires_meter = False`` (the simulator,
:class:`energycore.simulate.Workload`) is called with ``meter=None`` and must return its columns;
any other workload gets an :class:`~energycore.measure.EnergyMeter`, and the campaign's window
around the call gives ``energy_j``, ``latency_s``, ``avg_power_w`` and ``method`` unless the
workload returns its own.

A configuration that raises is recorded with its error and the campaign goes on; an error of
the measuring system (no GPU, a lost GPU, an NVML permission error) stops a local campaign
without recording that configuration, so that :meth:`Campaign.resume` measures it later.

Every result is appended to a JSONL journal (flushed and fsynced) before the next
configuration starts; :meth:`Campaign.resume` skips what the journal holds, so a campaign killed
at any moment loses at most the configuration that was running and never measures one twice.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from energycore._version import __version__
from energycore.campaign import journal as _journal
from energycore.campaign import plans as _plans
from energycore.campaign.run import run_one
from energycore.data import records_to_columns, write_csv

__all__ = ["EXECUTORS", "PLANS", "Campaign", "read_journal", "run_one"]

PLANS = _plans.PLANS
EXECUTORS = ("local", "ray")


def read_journal(path: str | Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and result records of a campaign journal (a partial last line is ignored)."""
    return _journal.read(path)


class Campaign:
    """Measure a plan of configurations, journaling every result.

    Parameters
    ----------
    space_or_configs : ConfigSpace, list of dict or DataFrame
        Where the configurations come from: the valid points of a space, or the given list.
    workload : callable
        ``workload(config, meter)`` runs one configuration (see the module docstring).
    plan : {"random", "latin_hypercube", "d_optimal", "all"}
        How the ``n`` configurations are chosen. ``d_optimal`` maximises the determinant of
        the information matrix of the energy model at ``prior`` (every configuration then needs
        ``tp, pp, batch, input_len, output_len``).
    n : int or None
        Configurations to measure (None: every candidate).
    seed : int
        Seed of the plan.
    journal : str or Path, optional
        JSONL journal; needed for :meth:`resume`. Without one, results are kept in memory.
    executor : {"local", "ray"}
        ``ray`` runs configurations as Ray tasks (needs ``energycore[ray]``); the driver
        alone writes the journal.
    warmup : int
        Unmeasured calls of the workload before the measured one, per configuration.
    cooldown_s : float
        Seconds to wait after each configuration (local executor), so the GPU cools down.
    meter : EnergyMeter, optional
        The meter for a local run (default: a new ``EnergyMeter(gpus)`` when the workload needs
        one; creating it raises :class:`~energycore.NoGPUError` without a GPU).
    gpus : int or list of int, optional
        GPUs for the default meter.
    retries : int
        Ray: how many times a configuration whose worker died is retried before it is recorded
        as failed.
    resources : dict or callable, optional
        Ray: task options per configuration (``{"num_gpus": 1}`` or ``lambda cfg: {...}``);
        default ``num_gpus = tp * pp`` for a workload that needs a meter, one CPU otherwise.
    progress : bool, optional
        Show a rich progress bar with ETA (default: when stderr is a terminal).
    prior : EnergyModel, dict or array, optional
        Coefficients at which ``d_optimal`` evaluates the model (default: the template's typical
        values).

    Examples
    --------
    >>> from energycore import ConfigSpace
    >>> from energycore.simulate import Workload
    >>> space = ConfigSpace({"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": [1, 8, 64]},
    ...                     constraints=["tp*pp <= 8"], fixed={"input_len": 512, "output_len": 256})
    >>> c = Campaign(space, Workload(model="llama-3.1-8b"), n=10, progress=False).run()
    >>> len(c.to_frame())
    10
    """

    def __init__(
        self,
        space_or_configs: Any,
        workload: Callable[..., Any],
        plan: str = "random",
        n: int | None = 50,
        seed: int = 0,
        journal: str | Path | None = None,
        *,
        executor: str = "local",
        warmup: int = 0,
        cooldown_s: float = 0.0,
        meter: Any = None,
        gpus: Any = None,
        retries: int = 1,
        resources: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
        progress: bool | None = None,
        prior: Any = None,
    ) -> None:
        if not callable(workload):
            raise ValueError(f"workload: expected a callable, got {type(workload).__name__}")
        if plan not in PLANS:
            raise ValueError(f"plan: unknown plan {plan!r}; expected one of {', '.join(PLANS)}")
        if executor not in EXECUTORS:
            raise ValueError(f"executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        for name, v in (("warmup", warmup), ("retries", retries)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {v!r}")
        if isinstance(cooldown_s, bool) or not isinstance(cooldown_s, (int, float)):
            raise ValueError(f"cooldown_s: expected seconds, got {cooldown_s!r}")
        if not 0 <= cooldown_s < float("inf"):
            raise ValueError(f"cooldown_s: must be finite and non-negative, got {cooldown_s}")
        if executor == "ray" and meter is not None:
            raise ValueError("meter: not used with executor='ray' (each task opens its own meter)")
        if resources is not None and not (callable(resources) or isinstance(resources, Mapping)):
            raise ValueError("resources: expected a dict of Ray task options or a callable")
        cands, varying = _plans.candidates(space_or_configs)
        self.n = _plans.check_n(n, len(cands), plan)
        self.plan = plan
        self.seed = seed
        self.workload = workload
        self.configs: list[dict[str, Any]] = _plans.make_plan(
            plan, cands, varying, self.n, seed, prior
        )
        self.journal = Path(journal) if journal is not None else None
        self.executor = executor
        self.warmup = warmup
        self.cooldown_s = float(cooldown_s)
        self.meter = meter
        self.gpus = gpus
        self.retries = retries
        self.resources = resources
        self.progress = progress
        self._records: list[dict[str, Any]] = []
        self._hash = _journal.plan_hash(self.configs)

    def __repr__(self) -> str:
        done = len(self.records)
        return (
            f"Campaign(plan={self.plan!r}, n={self.n}, executor={self.executor!r}, "
            f"done={done}/{self.n}, journal={str(self.journal) if self.journal else None!r})"
        )

    @property
    def requires_meter(self) -> bool:
        """Whether the workload needs an energy meter (False for the simulator)."""
        return bool(getattr(self.workload, "requires_meter", True))

    # ------------------------------------------------------------------ running
    def run(self) -> Campaign:
        """Measure every planned configuration. Refuses a journal that already holds results
        (use :meth:`resume` to continue it). Returns ``self``."""
        return self._start(resume=False)

    def resume(self) -> Campaign:
        """Measure the planned configurations the journal does not hold yet.

        The journal must come from the same plan (same configurations); a missing or empty
        journal starts the campaign. Returns ``self``.
        """
        if self.journal is None:
            raise ValueError("resume: the campaign has no journal to resume from")
        return self._start(resume=True)

    def _check_header(self, header: dict[str, Any] | None) -> None:
        if header is not None and header.get("plan_hash") != self._hash:
            raise ValueError(
                f"journal {self.journal} was written for a different plan (plan "
                f"{header.get('plan')!r}, n={header.get('n')}, seed {header.get('seed')}); "
                "use the same space, plan, n and seed, or a new journal"
            )

    def _header(self) -> dict[str, Any]:
        return {
            "type": "header",
            "format": _journal.FORMAT,
            "format_version": _journal.FORMAT_VERSION,
            "campaign_id": uuid.uuid4().hex,
            "created": time.time(),
            "energycore": __version__,
            "plan": self.plan,
            "n": self.n,
            "seed": self.seed,
            "executor": self.executor,
            "workload": repr(self.workload),
            "plan_hash": self._hash,
            "configs": self.configs,
        }

    def _start(self, resume: bool) -> Campaign:
        with contextlib.ExitStack() as stack:
            writer = None
            self._records = []
            done: set[str] = set()
            if self.journal is not None:
                # Lock first, then read: no other process can append between the two.
                writer = stack.enter_context(_journal.Writer(self.journal))
                header, records = _journal.read(self.journal)
                if records and not resume:
                    raise ValueError(
                        f"journal {self.journal} already holds {len(records)} result(s); call "
                        "resume() to continue that campaign, or give a new journal path"
                    )
                self._check_header(header)
                planned = {_journal.config_key(c) for c in self.configs}
                self._records = [r for r in records if r["key"] in planned]
                done = {r["key"] for r in self._records}
                if header is None:
                    writer.append(self._header())
            todo = [
                (i, c) for i, c in enumerate(self.configs) if _journal.config_key(c) not in done
            ]

            def record(rec: dict[str, Any]) -> None:
                # Journalled first (as a failed record if it cannot be encoded), then kept.
                rec = writer.append(rec) if writer is not None else _journal.journalable(rec)
                self._records.append(rec)

            if not todo:
                return self
            advance = stack.enter_context(self._progress(len(done), len(self.configs)))
            if self.executor == "ray":
                from energycore.campaign.ray_executor import execute

                def record_and_advance(rec: dict[str, Any]) -> None:
                    record(rec)
                    advance()

                execute(self, todo, record_and_advance)
            else:
                self._execute_local(todo, record, advance)
        return self

    def _execute_local(
        self,
        todo: list[tuple[int, dict[str, Any]]],
        record: Callable[[dict[str, Any]], None],
        advance: Callable[[], None],
    ) -> None:
        meter, own = self.meter, False
        if meter is None and self.requires_meter:
            from energycore.measure import EnergyMeter

            meter, own = EnergyMeter(self.gpus), True
        try:
            for k, (i, cfg) in enumerate(todo):
                record(run_one(self.workload, cfg, meter, warmup=self.warmup, index=i))
                advance()
                if self.cooldown_s and k + 1 < len(todo):
                    time.sleep(self.cooldown_s)
        finally:
            if own:
                meter.close()

    @contextlib.contextmanager
    def _progress(self, done: int, total: int) -> Iterator[Callable[[], None]]:
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show:
            yield lambda: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("[bold]profiling"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        ) as bar:
            task = bar.add_task("profiling", total=total, completed=done)
            yield lambda: bar.advance(task)

    # ------------------------------------------------------------------ results
    @property
    def records(self) -> list[dict[str, Any]]:
        """The journal records of this campaign (run or resumed in this process, or read
        from the journal when nothing ran yet)."""
        if not self._records and self.journal is not None:
            _, recs = _journal.read(self.journal)
            planned = {_journal.config_key(c) for c in self.configs}
            return [r for r in recs if r["key"] in planned]
        return list(self._records)

    @property
    def done(self) -> bool:
        """Whether every planned configuration has a record."""
        return len({r["key"] for r in self.records}) == len(self.configs)

    def _rows(self, include_failed: bool) -> list[dict[str, Any]]:
        """One row per journalled configuration: its configuration, then its results."""
        rows = []
        for rec in sorted(self.records, key=lambda r: r.get("index", 0)):
            if rec.get("status") != "ok" and not include_failed:
                continue
            row = dict(rec.get("config") or {})
            for k, v in (rec.get("result") or {}).items():
                row.setdefault(k, v)
            if include_failed:
                row["status"] = rec.get("status")
                row["error"] = rec.get("error")
            rows.append(row)
        return rows

    def to_frame(self, include_failed: bool = False) -> Any:
        """The results as a pandas DataFrame, one row per measured configuration, in plan order.

        Columns: the configuration's (``tp``, ``pp``, ``batch``, ...), then the results
        (``energy_j``, ``latency_s``, ``avg_power_w``, ``method`` ...), so that
        ``EnergyModel().fit(frame, "energy_j")`` takes it directly. With ``include_failed``,
        failed configurations are rows too, with ``status`` and ``error`` columns.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Campaign.to_frame needs pandas (pip install pandas); records are available "
                "as Campaign.records"
            ) from None
        return pd.DataFrame(self._rows(include_failed))

    def to_csv(self, path: str | Path, include_failed: bool = False) -> None:
        """Write :meth:`to_frame`'s table as CSV (no pandas needed)."""
        write_csv(path, records_to_columns(self._rows(include_failed)))

    def to_parquet(self, path: str | Path, include_failed: bool = False) -> None:
        """Write :meth:`to_frame` as Parquet (needs pyarrow: ``pip install energycore[parquet]``)."""
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(
                "Campaign.to_parquet needs pyarrow: pip install 'energycore[parquet]'"
            ) from None
        self.to_frame(include_failed).to_parquet(path, index=False)
