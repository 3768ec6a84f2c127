"""The ``energycore`` command: demo, simulate, fit, predict, select, report, profile.

Every command reads and writes plain CSV and JSON files, so they chain:
``energycore simulate -o m.csv && energycore fit m.csv -o model.json && energycore select
model.json --gpus 8 ...``. Errors in files or options end with a one-line message naming the
problem and a non-zero exit code, never a traceback.

For scripts: ``energycore --version``; ``--json`` on every command prints one JSON object on
stdout and nothing else (an error prints ``{"error": ..., "exit_code": ...}``); ``-o`` writes
each command's result to a file; ``-v``/``-q`` (before the command) set the log level (logs go
to stderr). Exit codes: 0 ok, 1 a problem with files, options or the measuring system,
2 usage (unknown option, bad value), 3 infeasible (no configuration meets the limits).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from energycore._util.columns import FEATURES
from energycore._version import __version__
from energycore.data import read_csv, records_to_columns, write_csv
from energycore.errors import NoGPUError

app = typer.Typer(
    name="energycore",
    help="Energy-optimal deployment of ML inference: simulate, fit, predict, select, report.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("energycore.cli")

#: Exit codes of every command.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INFEASIBLE = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])

LATENCY_KINDS = ("ttft", "tpot")


class CLIError(Exception):
    """A problem with the user's files or options, reported as one line (exit code 1)."""

    code = EXIT_ERROR


class Infeasible(CLIError):
    """No configuration meets the limits (exit code 3)."""

    code = EXIT_INFEASIBLE


class UsageError(CLIError):
    """A bad combination of option values (exit code 2)."""

    code = EXIT_USAGE


def _jsonable(v: Any) -> Any:
    """JSON-ready values: numpy scalars and arrays as Python ones, NaN and inf as null."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


def _emit(json_out: bool, result: dict[str, Any]) -> None:
    """With ``--json``, the command's result as one JSON object on stdout."""
    if json_out:
        sys.stdout.write(json.dumps(_jsonable(result), allow_nan=False) + "\n")
        sys.stdout.flush()


def _errors(fn: F) -> F:
    """Turn expected failures into one red line on stderr and their exit code (1, or 3 when
    nothing is feasible); with ``--json`` also ``{"error": ..., "exit_code": ...}`` on stdout.
    ``--json`` silences the tables and notes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        json_out = bool(kwargs.get("json_out"))
        quiet = console.quiet
        if json_out:
            console.quiet = True
        try:
            return fn(*args, **kwargs)
        except (CLIError, ValueError, OSError, ImportError, NoGPUError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            code = getattr(e, "code", EXIT_ERROR) if isinstance(e, CLIError) else EXIT_ERROR
            err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
            _emit(json_out, {"error": msg, "exit_code": code})
            raise typer.Exit(code=code) from None
        finally:
            console.quiet = quiet

    return wrapper  # type: ignore[return-value]


class _StderrHandler(logging.Handler):
    """Log lines to whatever ``sys.stderr`` is when they are written."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover
            self.handleError(record)


def _version(value: bool) -> None:
    if value:
        print(f"energycore {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log lines on stderr (-vv).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors: no tables, notes or logs.")
    ] = False,
) -> None:
    """Energy-optimal deployment of ML inference: simulate, fit, predict, select, report,
    profile. Exit codes: 0 ok, 1 error in files/options/system, 2 usage, 3 infeasible."""
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if quiet else levels[min(verbose, 2)]
    root = logging.getLogger("energycore")
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    console.quiet = quiet


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar (drawn only on a terminal, removed when done)."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda k: bar.advance(task, k)


# --------------------------------------------------------------------------- files
def _ok_rows(cols: dict[str, np.ndarray], path: Path, target: str) -> dict[str, np.ndarray]:
    """Rows that were measured successfully and carry the target."""
    missing = [c for c in (*FEATURES, target) if c not in cols]
    if missing:
        raise CLIError(
            f"{path}: missing column(s) {', '.join(missing)}; columns present: {', '.join(cols)}"
        )
    keep = np.ones(len(cols[target]), dtype=bool)
    if "status" in cols:
        keep &= cols["status"] == "ok"
    y = cols[target]
    if y.dtype == object:
        raise CLIError(f"{path}: column '{target}' is not numeric")
    keep &= np.isfinite(y)
    if not keep.any():
        raise CLIError(f"{path}: no successfully measured rows with a value of '{target}'")
    return {k: v[keep] for k, v in cols.items()}


def _sibling(model_path: Path, kind: str) -> Path:
    """Where the latency model of ``kind`` lives beside an energy model file."""
    return model_path.with_name(f"{model_path.stem}.{kind}{model_path.suffix or '.json'}")


def _is_discovered(path: Path) -> bool:
    from energycore._util.persist import read_json
    from energycore.fit.discover import FORMAT

    try:
        d = read_json(path, "model file")
    except ValueError:
        return False  # EnergyModel.load reports it
    return isinstance(d, dict) and d.get("format") == FORMAT


def _load_models(path: Path) -> tuple[Any, dict[str, Any]]:
    from energycore.fit.energy import EnergyModel, TpotModel, TtftModel

    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    em: Any
    if _is_discovered(path):  # a DiscoveredModel file (energycore.discover) is one too
        from energycore.fit.discover import DiscoveredModel

        em = DiscoveredModel.load(path)
    else:
        em = EnergyModel.load(path)
    if not hasattr(em, "coef_"):
        raise CLIError(f"{path}: the model is not fitted")
    lat: dict[str, Any] = {}
    for kind, cls in (("ttft", TtftModel), ("tpot", TpotModel)):
        p = _sibling(path, kind)
        if p.is_file():
            lat[kind] = cls.load(p)
    return em, lat


def _fit_quietly(model: Any, data: dict[str, np.ndarray], y: np.ndarray) -> list[str]:
    """Fit, returning the warnings (identifiability notes) as text instead of raising them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data, y)
    return sorted({str(w.message).split(";")[0] for w in caught})


# --------------------------------------------------------------------------- tables
def _coef_table(model: Any, title: str) -> Table:
    info = {p["name"]: p for p in model.template_info()["params"]}
    t = Table(title=title, title_justify="left")
    for c in ("coef", "value", "± stderr", "unit", "meaning"):
        t.add_column(c, justify="right" if c in ("value", "± stderr") else "left")
    for j, (name, v) in enumerate(model.params_.items()):
        s = model.stderr_[name]
        # a fitted coefficient with a NaN standard error is not determined by the data: "n/a"
        err = "fixed" if model.fixed_mask_[j] else (f"{s:.2g}" if math.isfinite(s) else "n/a")
        t.add_row(
            name, f"{v:.4g}", err, info[name].get("unit", ""), info[name].get("description", "")
        )  # fmt: skip
    return t


def _config_label(row: dict[str, Any]) -> str:
    return f"tp={int(row['tp'])} pp={int(row['pp'])} batch={int(row['batch'])}"


def _notes(notes: list[str]) -> None:
    for n in notes:
        console.print(f"[yellow]note:[/] {n}", highlight=False)


# --------------------------------------------------------------------------- commands
Gpu = Annotated[str, typer.Option(help="Simulated GPU (catalogue name: H100, B200, ...).")]
Model = Annotated[str, typer.Option(help="Simulated model (catalogue name).")]
Gpus = Annotated[int, typer.Option("--gpus", min=1, max=1024, help="GPUs in the node.")]
Seed = Annotated[
    int,
    typer.Option(min=0, max=2**64 - 1, help="Seed of the plan and of the measurement noise."),
]
FitSeed = Annotated[
    int,
    typer.Option(
        min=0,
        max=2**64 - 1,
        help="Seed of the fit's random multi-start points (same seed, same fit).",
    ),
]
JsonOut = Annotated[
    bool,
    typer.Option("--json", help="Print the result as one JSON object on stdout, nothing else."),
]
Noise = Annotated[float, typer.Option(min=0.0, max=0.5, help="Measurement noise (log sd).")]
# Upper bounds: the physical bounds of the models (energycore._util.columns.FEATURE_MAX).
InputLen = Annotated[int, typer.Option(min=0, max=2**31, help="Prompt tokens per request.")]
OutputLen = Annotated[int, typer.Option(min=1, max=2**31, help="Output tokens per request.")]


@app.command()
@_errors
def demo(
    gpu: Gpu = "H100",
    model: Model = "llama-3.1-70b",
    gpus: Gpus = 8,
    input_len: InputLen = 512,
    output_len: OutputLen = 256,
    latency_limit: Annotated[
        float | None,
        typer.Option(min=0.0, help="Limit on batch latency, s (default: 2x the fastest)."),
    ] = None,
    samples: Annotated[int, typer.Option(min=12, help="Configurations to profile.")] = 50,
    seed: Seed = 0,
    noise: Noise = 0.03,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "energycore-demo"
    ),
    json_out: JsonOut = False,
) -> None:
    """Profile a simulated node, fit the energy model, pick the energy-optimal configuration."""
    from energycore.app.demo import run_demo

    with _progress(samples, f"profiling {gpus} x {gpu} (simulated)") as advance:
        res = run_demo(
            gpu=gpu, model=model, n_gpus=gpus, input_len=input_len, output_len=output_len,
            latency_limit=latency_limit, samples=samples, seed=seed, noise=noise,
            progress=advance,
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "measurements.csv"
    write_csv(csv_path, records_to_columns(res.measurements))
    res.energy_model.save(out / "model.json")
    res.ttft_model.save(_sibling(out / "model.json", "ttft"))
    res.tpot_model.save(_sibling(out / "model.json", "tpot"))

    limit = f"{res.latency_limit_s:.3g} s" + (" (2x the fastest)" if res.limit_was_default else "")
    t = Table(
        title=(
            f"SIMULATED {res.n_gpus} x {res.gpu} serving {res.model}: workload {res.input_len} "
            f"prompt -> {res.output_len} output tokens, batch latency limit {limit}"
        ),
        title_justify="left",
        caption=f"all numbers from energycore.simulate (source = simulated); "
        f"{len(res.measurements)} configurations run: {len(res.measurements) - res.n_failed} "
        f"measured, {res.n_failed} failed (cannot run on the node, reason recorded)",
    )
    for c in ("", "configuration", "J/req pred", "J/req true", "lat. pred", "lat. true"):
        left = c in ("", "configuration")
        t.add_column(c, justify="left" if left else "right", no_wrap=left)
    for name, i in (
        ("pick (model)", res.pick),
        ("true optimum", res.optimum),
        ("latency-optimal", res.latency_optimal),
        ("max throughput", res.throughput_optimal),
    ):
        r = res.row(i)
        if r is None:
            t.add_row(name, "none within the limit", "", "", "", "")
            continue
        t.add_row(
            name, _config_label(r), f"{r['pred_energy_per_request_j']:.1f}",
            f"{r['true_energy_per_request_j']:.1f}", f"{r['pred_latency_s']:.2f} s",
            f"{r['true_latency_s']:.2f} s",
        )  # fmt: skip
    console.print(t)
    if res.pick is None:
        fastest = res.row(res.latency_optimal)
        hint = f" (fastest predicted: {fastest['pred_latency_s']:.3g} s)" if fastest else ""
        raise Infeasible(
            f"no configuration is predicted to meet the latency limit {res.latency_limit_s:.3g} s"
            f"{hint}; raise --latency-limit"
        )
    if res.pick_breaks_limit:
        regret = "the pick [bold]breaks the latency limit[/] in truth (see the note below)"
    else:
        regret = f"[bold]{100 * res.regret:.2f} %[/] energy per request above the true optimum"
    console.print(
        f"regret of the pick: {regret}; the latency-optimal configuration costs "
        f"[bold]{100 * res.latency_optimal_extra_energy:+.0f} %[/] energy per request vs the pick",
        highlight=False,
    )
    if res.throughput_optimal is not None and res.optimum is not None:
        extra = res.throughput_optimal_extra_energy
        same = res.throughput_optimal == res.optimum
        console.print(
            "tuning for throughput instead (most requests per GPU-second within the limit) "
            + (
                "finds the energy optimum here too"
                if same
                else f"costs [bold]{100 * extra:+.1f} %[/] energy per request vs the true optimum"
            ),
            highlight=False,
        )
    if res.sweep:
        console.print(_sweep_line(res.sweep), highlight=False, soft_wrap=True)
    console.print(
        _coef_table(
            res.energy_model,
            f"EnergyModel ({res.energy_model.template_name}) fitted to the simulation",
        )
    )
    _notes(res.notes)
    cands = res.candidates
    measured = [
        r for r in res.measurements
        if r["status"] == "ok" and r["input_len"] == res.input_len
        and r["output_len"] == res.output_len
    ]  # fmt: skip
    n_ok = len(res.measurements) - res.n_failed
    plot = _plot_or_skip(
        "pareto",
        lambda: _pareto(out / "pareto.png", res, cands, measured, n_ok),
    )
    console.print(f"wrote {csv_path}, {out / 'model.json'}", highlight=False)

    def cfg(i: int | None) -> dict[str, Any] | None:
        r = res.row(i)
        if r is None:
            return None
        keys = ("tp", "pp", "batch", "pred_energy_per_request_j", "true_energy_per_request_j",
                "pred_latency_s", "true_latency_s")  # fmt: skip
        return {k: r[k] for k in keys}

    _emit(
        json_out,
        {
            "source": "simulated", "gpu": res.gpu, "n_gpus": res.n_gpus, "model": res.model,
            "input_len": res.input_len, "output_len": res.output_len,
            "latency_limit_s": res.latency_limit_s,
            "n_profiled": len(res.measurements) - res.n_failed, "n_failed": res.n_failed,
            "pick": cfg(res.pick), "optimum": cfg(res.optimum),
            "latency_optimal": cfg(res.latency_optimal),
            "throughput_optimal": cfg(res.throughput_optimal),
            "regret": res.regret, "pick_breaks_limit": res.pick_breaks_limit,
            "latency_optimal_extra_energy": res.latency_optimal_extra_energy,
            "sweep": res.sweep,
            "files": [csv_path, out / "model.json", *([plot] if plot else [])],
        },
    )  # fmt: skip


def _sweep_line(sweep: list[dict[str, Any]]) -> str:
    """One sentence: how often and by how much the usual choices cost extra energy."""
    from energycore.app.demo import SWEEP_LIMIT_FACTORS, SWEEP_WORKLOADS

    parts = []
    for key, name in (
        ("throughput_extra", "throughput-tuned"),
        ("latency_optimal_extra", "latency-optimal"),
    ):
        v = np.array([r[key] for r in sweep], dtype=float)
        v = v[np.isfinite(v)]
        worse, better = v[v > 1e-3], int((v < -1e-3).sum())
        parts.append(
            f"the {name} choice costs more energy than the pick in {len(worse)} of {len(v)}"
            + (f", less in {better} (the fitted model's error)" if better else "")
            + (
                f" (median {100 * np.median(worse):+.0f} %, up to {100 * worse.max():+.0f} %)"
                if len(worse)
                else ""
            )
        )
    shapes = ", ".join(f"{a}->{b}" for a, b in SWEEP_WORKLOADS)
    limits = "/".join(f"{f:g}" for f in SWEEP_LIMIT_FACTORS)
    return (
        f"[bold]decision sweep[/] (SIMULATED truth, {len(sweep)} scenarios: workloads {shapes} "
        f"tokens x limits {limits}x the fastest): " + "; ".join(parts)
    )


def _pareto(
    path: Path, res: Any, c: dict[str, Any], measured: list[dict[str, Any]], n_ok: int
) -> Path:
    from energycore.app.plots import pareto_plot

    return pareto_plot(
        path, c["true_latency_s"], c["true_energy_per_request_j"],
        predicted_latency_s=np.where(c["valid"], c["pred_latency_s"], np.nan),
        predicted_energy_j=np.where(c["valid"], c["pred_energy_per_request_j"], np.nan),
        measured_latency_s=np.array([r["latency_s"] for r in measured]),
        measured_energy_j=np.array([r["energy_per_request_j"] for r in measured]),
        measured_label=(
            f"measured at {res.input_len} -> {res.output_len} tokens ({len(measured)} of {n_ok}; "
            "the rest at other lengths)"
        ),
        pick=res.pick, optimum=res.optimum, latency_limit_s=res.latency_limit_s,
        baselines={"latency-optimal": res.latency_optimal,
                   "max throughput": res.throughput_optimal},
        title=f"SIMULATED {res.n_gpus} x {res.gpu}, {res.model}: energy vs latency",
        reference_label="simulated truth",
    )  # fmt: skip


def _plot_or_skip(name: str, draw: Callable[[], Path]) -> Path | None:
    from energycore.app.plots import PlotUnavailable

    try:
        path = draw()
    except PlotUnavailable as e:
        console.print(
            f"[yellow]{name} plot skipped:[/] {escape(str(e))}", highlight=False, soft_wrap=True
        )
        return None
    console.print(f"wrote {path}", highlight=False)
    return path


@app.command()
@_errors
def simulate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Measurement CSV to write.")],
    plan: Annotated[
        Path | None,
        typer.Option(help="CSV of configurations (tp, pp, batch, input_len, output_len)."),
    ] = None,
    gpu: Gpu = "H100",
    model: Model = "llama-3.1-70b",
    gpus: Gpus = 8,
    samples: Annotated[int, typer.Option(min=1, help="Random configurations without --plan.")] = 50,
    seed: Seed = 0,
    noise: Noise = 0.03,
    json_out: JsonOut = False,
) -> None:
    """Write a (simulated) measurement CSV for a plan, or for random configurations."""
    from energycore.app.demo import measure_plan, plan_candidates
    from energycore.simulate import Workload

    wl = Workload(gpu, model, n_gpus=gpus, noise=noise, seed=seed)
    if plan is None:
        with _progress(samples, "simulating") as advance:
            records, failed = measure_plan(
                wl, plan_candidates(gpus, 512, 256), samples, seed, advance
            )
    else:
        records, failed = _simulate_plan(wl, plan)
    write_csv(output, records_to_columns(records))
    console.print(
        f"wrote {output}: {len(records) - failed} simulated measurements, {failed} failed "
        f"(invalid configurations, reason recorded)",
        highlight=False,
    )
    _emit(
        json_out,
        {
            "output": output,
            "n_ok": len(records) - failed,
            "n_failed": failed,
            "source": "simulated",
        },
    )


def _simulate_plan(wl: Any, plan: Path) -> tuple[list[dict[str, Any]], int]:
    """Run every row of a plan CSV; bad values are errors, invalid configurations failures."""
    from energycore.simulate.simulator import _features

    cols = read_csv(plan)
    missing = [c for c in FEATURES[:3] if c not in cols]
    if missing:
        raise CLIError(f"{plan}: missing column(s) {', '.join(missing)}")
    n = len(cols["tp"])
    given = {k: cols[k] for k in FEATURES if k in cols}
    defaults = {"input_len": wl.input_len, "output_len": wl.output_len}
    try:  # every value checked up front: the message names the column and the first bad row
        table = _features({**{k: np.full(n, v) for k, v in defaults.items()}, **given})
    except ValueError as e:
        raise CLIError(f"{plan}: {str(e).removeprefix('configs: ')}") from None
    records: list[dict[str, Any]] = []
    failed = 0
    with _progress(n, "simulating") as advance:
        for i in range(n):
            cfg = {k: int(table[k][i]) if table[k][i].is_integer() else float(table[k][i])
                   for k in FEATURES}  # fmt: skip
            try:
                records.append({**cfg, **wl(cfg, None), "status": "ok", "reason": ""})
            except ValueError as e:  # an invalid configuration: recorded, like a campaign does
                failed += 1
                records.append({**cfg, "status": "failed", "reason": str(e),
                                "source": "simulated"})  # fmt: skip
            advance(1)
    return records, failed


@app.command()
@_errors
def fit(
    data: Annotated[Path, typer.Argument(help="Measurement CSV.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model JSON to write.")],
    target: Annotated[str, typer.Option(help="Column with joules per batch.")] = "energy_j",
    seed: FitSeed = 0,
    gpu: Annotated[
        str | None,
        typer.Option(help="GPU the data were measured on (default: the CSV's gpu column)."),
    ] = None,
    served_model: Annotated[
        str | None,
        typer.Option(
            "--served-model", help="Model that was served (default: the CSV's model column)."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="Serving engine, e.g. vllm (default: 'simulated' for simulated data)."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Fit the EnergyModel (and latency models when ttft_s and tpot_s are present).

    The model files record the GPU, served model and engine (flags, else the CSV's constant
    ``gpu``/``model`` columns), which `energycore select` uses to refuse what cannot fit.
    """
    from energycore.fit.energy import EnergyModel, TpotModel, TtftModel

    cols = _ok_rows(read_csv(data), data, target)
    prov, notes = _provenance(cols, gpu, served_model, engine)
    em = EnergyModel(seed=seed)
    notes += _fit_quietly(em, cols, cols[target])
    em.set_provenance(**prov)
    output.parent.mkdir(parents=True, exist_ok=True)
    em.save(output)
    console.print(_coef_table(em, f"EnergyModel fitted to {len(cols[target])} rows of {data}"))
    score = em.metrics(cols, cols[target])
    console.print(f"in-sample mean absolute error: {100 * score['mape']:.1f} %", highlight=False)
    written = [output]
    lat: dict[str, Any] = {}
    for kind, cls in (("ttft", TtftModel), ("tpot", TpotModel)):
        col = f"{kind}_s"
        if col in cols and cols[col].dtype != object and np.isfinite(cols[col]).all():
            m = cls(seed=seed)
            notes += _fit_quietly(m, cols, cols[col])
            m.set_provenance(**prov)
            m.save(_sibling(output, kind))
            lat[kind] = m
            written.append(_sibling(output, kind))
            console.print(f"wrote {_sibling(output, kind)}", highlight=False)
    if len(lat) == 2:  # both halves also as one LatencyModel file (LatencyModel.load reads it)
        from energycore.fit.latency import LatencyModel

        lm = LatencyModel(seed=seed)
        lm._set(lat["ttft"], lat["tpot"])
        lm.save(_sibling(output, "latency"))
        written.append(_sibling(output, "latency"))
        console.print(f"wrote {_sibling(output, 'latency')}", highlight=False)
    notes = sorted(set(notes))
    _notes(notes)
    console.print(f"wrote {output}", highlight=False)
    log.info("fitted %s to %d rows of %s", em.template_name, len(cols[target]), data)
    _emit(
        json_out,
        {
            "n_rows": len(cols[target]), "template": em.template_name, "params": em.params_,
            "stderr": em.stderr_, "fixed": [n for n, f in zip(em.params_, em.fixed_mask_) if f],
            **score, "provenance": prov, "notes": notes, "files": written,
        },
    )  # fmt: skip


def _provenance(
    cols: dict[str, np.ndarray], gpu: str | None, served_model: str | None, engine: str | None
) -> tuple[dict[str, str | None], list[str]]:
    """GPU, served model and engine for the model files: the flags, else constant CSV columns
    (``gpu``, ``model``; ``source == "simulated"`` gives engine ``simulated``)."""
    from energycore.fit.provenance import check_provenance
    from energycore.simulate import get_gpu, get_model

    def constant(name: str) -> str | None:
        v = cols.get(name)
        if v is None or not len(v):
            return None
        vals = {str(x) for x in v.tolist()}
        return vals.pop() if len(vals) == 1 and "" not in vals else None

    given = {"gpu": gpu, "served_model": served_model, "engine": engine}
    for flag, v in (("--gpu", gpu), ("--served-model", served_model), ("--engine", engine)):
        if v is not None and not v.strip():
            raise UsageError(f"{flag}: must not be empty")
    inferred = {
        "gpu": constant("gpu"),
        "served_model": constant("model"),
        "engine": "simulated" if constant("source") == "simulated" else None,
    }
    prov = check_provenance({k: given[k] or inferred[k] for k in given}, "provenance")
    notes = []
    for key, lookup in (("gpu", get_gpu), ("served_model", get_model)):
        name = prov[key]
        if name is not None:
            try:
                lookup(name)
            except ValueError:
                notes.append(
                    f"{key} {prov[key]!r} is not in the simulator's catalogue: `select` will "
                    "need --gpu/--served-model to check memory"
                )
    return prov, notes


@app.command()
@_errors
def predict(
    model: Annotated[Path, typer.Argument(help="Model JSON written by `energycore fit`.")],
    data: Annotated[Path, typer.Argument(help="CSV of configurations.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV with predictions to write.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Predict energy (and latency, when latency models exist) for each configuration."""
    em, lat = _load_models(model)
    cols = read_csv(data)
    missing = [c for c in FEATURES if c not in cols]
    if missing:
        raise CLIError(f"{data}: missing column(s) {', '.join(missing)}")
    # n_gpus = tp * pp, as in `select` (a recorded n_gpus column is blank for failed runs)
    pred = em.predict({k: v for k, v in cols.items() if k not in ("n_gpus", "tp-1", "pp-1")})
    out = dict(cols)
    out["pred_energy_j"] = pred
    out["pred_energy_per_request_j"] = pred / cols["batch"]
    if len(lat) == 2:
        out["pred_latency_s"] = (
            lat["ttft"].predict(cols) + lat["tpot"].predict(cols) * cols["output_len"]
        )
    if output is not None:
        write_csv(output, out)
        console.print(f"wrote {output}: {len(pred)} predictions", highlight=False)
    t = Table(title=f"predictions for {data} (first 10 of {len(pred)})", title_justify="left")
    for c in ("tp", "pp", "batch", "input_len", "output_len", "pred J/batch", "measured J"):
        t.add_column(c, justify="right")
    for i in range(min(10, len(pred))):
        meas = cols.get("energy_j")
        m = (
            ""
            if meas is None or meas.dtype == object or not np.isfinite(meas[i])
            else f"{meas[i]:.1f}"
        )
        t.add_row(*(f"{cols[k][i]:g}" for k in FEATURES), f"{pred[i]:.1f}", m)
    console.print(t)
    meas = cols.get("energy_j")
    mape = math.nan
    if meas is not None and meas.dtype != object and np.isfinite(meas).any():
        ok = np.isfinite(meas) & (meas > 0)
        mape = float(np.mean(np.abs(pred[ok] - meas[ok]) / meas[ok]))
        console.print(f"mean absolute error vs energy_j: {100 * mape:.1f} %", highlight=False)
    keys = [*FEATURES, *(k for k in out if k.startswith("pred_"))]
    _emit(
        json_out,
        {
            "n": len(pred), "mape": mape, "output": output,
            "predictions": [{k: out[k][i] for k in keys} for i in range(len(pred))],
        },
    )  # fmt: skip


#: Latency columns (and their bounds under --confidence) of select's ranked output.
_SCORE_COLS = ("latency_s", "ttft_s", "tpot_s", "latency_upper_s", "ttft_upper_s", "tpot_upper_s")
#: Power columns (and the bound under --confidence) of the ranked output with --power-cap.
_POWER_COLS = ("power_w", "power_upper_w")

#: SLO fields and the select flags that set them (for messages).
_SLO_FLAGS = {
    "ttft_s": "--ttft-limit",
    "tpot_s": "--tpot-limit",
    "itl_s": "--itl-limit",
    "percentile": "--percentile",
    "request_rate": "--request-rate",
    "gpus": "--gpus",
}


def _slo_from_flags(**fields: Any) -> Any:
    """The SLO of the select flags; a bad value is a usage error naming the flag."""
    from energycore.space.slo import SLO

    if fields["request_rate"] is None:
        fields["gpus"] = None
    try:
        return SLO(**fields)
    except ValueError as e:
        msg = re.sub(r"\bslo\.(\w+)", lambda m: _SLO_FLAGS[m.group(1)], str(e))
        msg = re.sub(r"\b(ttft_s|tpot_s|itl_s)\b", lambda m: _SLO_FLAGS[m.group(1)], msg)
        raise UsageError(msg) from None


def _hardware(
    em: Any, model: Path, gpu: str | None, served_model: str | None
) -> tuple[Any, str, list[str]]:
    """The HardwareCheck of the recorded GPU and model, the flags overriding them.

    Returns ``(check or None, "flags" | "recorded" | "recorded+flags" | "", notes)``.
    """
    from energycore.space.hardware import HardwareCheck

    rec = em.provenance
    g = gpu if gpu is not None else rec["gpu"]
    m = served_model if served_model is not None else rec["served_model"]
    if (gpu is None) != (served_model is None) and (g is None or m is None):
        raise CLIError(
            f"--gpu and --served-model go together ({model} records no "
            f"{'served model' if m is None else 'GPU'})"
        )
    if g is None or m is None:
        missing = " and ".join(
            w for w, v in (("GPU", rec["gpu"]), ("served model", rec["served_model"])) if not v
        )
        return None, "", [
            f"memory check skipped: {model} records no {missing}; pass --gpu and "
            "--served-model (catalogue names) to refuse configurations that cannot fit"
        ]  # fmt: skip
    flags = gpu is not None or served_model is not None
    recorded = (gpu is None and rec["gpu"]) or (served_model is None and rec["served_model"])
    source = "recorded+flags" if flags and recorded else ("flags" if flags else "recorded")
    try:
        check = HardwareCheck.resolve(g, m)
    except ValueError as e:
        is_gpu = str(e).startswith("gpu:")
        flag, name = ("--gpu", gpu) if is_gpu else ("--served-model", served_model)
        where = flag if name is not None else f"{model}: recorded {'gpu' if is_gpu else 'model'}"
        raise CLIError(f"{where}: {str(e).split(': ', 1)[-1]}") from None
    return check, source, []


@app.command()
@_errors
def select(
    model: Annotated[Path, typer.Argument(help="Model JSON written by `energycore fit`.")],
    gpus: Gpus = 8,
    latency_limit: Annotated[
        float | None, typer.Option(min=0.0, help="Limit on batch latency, s.")
    ] = None,
    power_cap: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Cap on the average power of the deployment (all its GPUs: energy of a batch "
            "over its latency), W; on the upper bound with --confidence.",
        ),
    ] = None,
    ttft_limit: Annotated[
        float | None,
        typer.Option(min=0.0, help="Limit on time to first token, s (mean, or --percentile)."),
    ] = None,
    tpot_limit: Annotated[
        float | None,
        typer.Option(min=0.0, help="Limit on time per output token, s (mean, or --percentile)."),
    ] = None,
    itl_limit: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Limit on inter-token latency, s (the TPOT model; mean or --percentile)."
        ),
    ] = None,
    percentile: Annotated[
        float | None,
        typer.Option(
            help="Apply the TTFT/TPOT/ITL limits to this percentile (0 < P < 100, e.g. 90, "
            "99.9) instead of the mean, from the fit's residual spread."
        ),
    ] = None,
    request_rate: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Requests/s the node must sustain: batch x floor(gpus / (tp*pp)) / latency.",
        ),
    ] = None,
    confidence: Annotated[
        float | None,
        typer.Option(
            help="Judge the latency limits and the power cap on the upper bound of the "
            "prediction at this one-sided confidence (0 < C < 1, e.g. 0.9) instead of the "
            "prediction: residual spread and coefficient uncertainty of the fits "
            "(docs/serving.md).",
        ),
    ] = None,
    input_len: InputLen = 512,
    output_len: OutputLen = 256,
    max_batch: Annotated[
        int, typer.Option(min=1, max=2**24, help="Largest batch considered (at most 2**24).")
    ] = 512,
    gpu: Annotated[
        str | None,
        typer.Option(help="GPU (catalogue name) for the memory check; default: the recorded one."),
    ] = None,
    served_model: Annotated[
        str | None,
        typer.Option(
            "--served-model",
            help="Model (catalogue name) for the memory check; default: the recorded one.",
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Configurations to list.")] = 5,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the ranked configurations (.csv or .json)."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Pick the energy-optimal (tp, pp, batch) for a workload, under latency and serving limits.

    Configurations the GPU and model recorded in the model file (or given by --gpu and
    --served-model) cannot run are refused, with a count per reason.
    """
    from energycore.app import grid as _grid
    from energycore.space.configspace import ConfigSpace
    from energycore.space.slo import percentile_factor, sustained_rate
    from energycore.space.uncertainty import check_confidence

    try:
        check_confidence(confidence, "--confidence")
    except ValueError as e:
        raise UsageError(str(e)) from None
    em, lat = _load_models(model)
    slo = _slo_from_flags(
        ttft_s=ttft_limit, tpot_s=tpot_limit, itl_s=itl_limit, percentile=percentile,
        request_rate=request_rate, gpus=gpus,
    )  # fmt: skip
    beside = f"beside {model} ({_sibling(model, 'ttft').name}, {_sibling(model, 'tpot').name})"
    for flag, v, need in (
        ("--latency-limit", latency_limit, ("ttft", "tpot")),
        ("--power-cap", power_cap, ("ttft", "tpot")),
        ("--request-rate", request_rate, ("ttft", "tpot")),
        ("--ttft-limit", ttft_limit, ("ttft",)),
        ("--tpot-limit", tpot_limit, ("tpot",)),
        ("--itl-limit", itl_limit, ("tpot",)),
    ):
        if v is not None and any(k not in lat for k in need):
            raise CLIError(
                f"{flag} needs latency models {beside}; fit with ttft_s and tpot_s columns"
            )
    check, hw_source, notes = _hardware(em, model, gpu, served_model)
    base = _grid.node_space(gpus, max_batch)
    il, ol = float(input_len), float(output_len)
    refused: list[tuple[str, int]] = []
    if check is not None:
        refused = check.refusals(base, input_len=il, output_len=ol)
        axes = {a.name: list(a.values) for a in base.axes}
        space = ConfigSpace(
            axes, constraints=[c.source for c in base.constraints] + check.constraints(),
            n_threads=1,
        )  # fmt: skip
    else:
        space = base
    for reason, n in refused:
        notes.append(f"{n} configurations refused: {reason}")
    fitted = [em, *lat.values()]
    lat_name = "latency_s" if confidence is None else "latency_upper_s"
    pow_name = "power_w" if confidence is None else "power_upper_w"
    terms = [
        f"{name} <= {float(v)!r}"
        for name, v in ((lat_name, latency_limit), (pow_name, power_cap))
        if v is not None
    ]
    where = " and ".join(terms) or None
    try:
        best = space.top_k(
            "energy_per_request_j", top, where=where, models=fitted, as_frame=False,
            slo=slo, confidence=confidence, input_len=il, output_len=ol,
        )  # fmt: skip
    except ValueError as e:
        msg = str(e)
        if msg.startswith("confidence"):  # a model that records no uncertainty
            raise CLIError(f"--confidence: {msg.split(': ', 1)[-1]}") from None
        if "residual spread" in msg:  # a percentile on a model from an older file
            raise CLIError(f"--percentile: {msg.split(': ', 1)[-1]}") from None
        raise
    factors = {
        kind: percentile_factor(lat[kind], percentile, f"--percentile ({kind} model)")
        for kind in ("ttft", "tpot")
        if kind in lat and percentile is not None
    }
    tag = f"p{percentile:g}" if percentile is not None else ""

    def extra(cols: dict[str, Any], k: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, f in factors.items():
            out[f"{kind}_{tag}_s"] = float(cols[f"{kind}_s"][k]) * f
        if "latency_s" in cols:
            out["request_rate_rps"] = sustained_rate(
                cols["batch"][k], cols["latency_s"][k], cols["tp"][k], cols["pp"][k], gpus
            )
        return out

    if not len(best["index"]):
        n_fit = space.count_valid(input_len=il, output_len=ol)
        if n_fit == 0 and check is not None:
            raise Infeasible(
                f"no configuration within {gpus} x {check.gpu.name} can run "
                f"{check.model.name} at {input_len} -> {output_len} tokens: "
                + "; ".join(f"{n} refused: {r}" for r, n in refused)
            )
        allc = space.to_frame(
            None, models=fitted, as_frame=False, confidence=confidence, input_len=il,
            output_len=ol,
        )  # fmt: skip
        up = "" if confidence is None else "_upper"
        bound = "" if confidence is None else f" (bound at confidence {confidence:g})"
        hints = []
        if ttft_limit is not None:
            v = float(np.min(allc[f"ttft{up}_s"])) * factors.get("ttft", 1.0)
            hints.append(f"lowest {tag or 'mean'} TTFT {v:.3g} s{bound}")
        if tpot_limit is not None or itl_limit is not None:
            v = float(np.min(allc[f"tpot{up}_s"])) * factors.get("tpot", 1.0)
            hints.append(f"lowest {tag or 'mean'} TPOT {v:.3g} s{bound}")
        if request_rate is not None:
            r = sustained_rate(allc["batch"], allc[lat_name], allc["tp"], allc["pp"], gpus)
            hints.append(f"highest rate {float(np.max(r)):.3g} req/s")
        if latency_limit is not None:
            hints.append(f"fastest batch latency {float(np.min(allc[lat_name])):.3g} s{bound}")
        if power_cap is not None:
            hints.append(f"lowest power {float(np.min(allc[pow_name])):.4g} W{bound}")
        limits = [s for s in (
            f"--latency-limit {latency_limit} s" if latency_limit is not None else "",
            f"--power-cap {power_cap} W" if power_cap is not None else "",
            "" if slo.empty else slo.describe(),
            "" if confidence is None else f"at confidence {confidence:g}",
        ) if s]  # fmt: skip
        raise Infeasible(
            f"no configuration within {gpus} GPUs meets {' and '.join(limits)} "
            f"(of {n_fit} that fit; predicted: {', '.join(hints)})"
        )
    title = [f"latency <= {latency_limit} s"] if latency_limit is not None else []
    title += [f"power <= {power_cap} W"] if power_cap is not None else []
    title += [] if slo.empty else [slo.describe()]
    title += [] if confidence is None else [f"upper bounds at confidence {confidence:g}"]
    t = Table(
        title=f"energy-optimal configurations on {gpus} GPUs for {input_len} -> {output_len} "
        f"tokens" + (f", {', '.join(title)}" if title else ""),
        title_justify="left",
    )
    cols_shown = ["rank", "tp", "pp", "batch", "J/request (pred)", "latency s (pred)"]
    cols_shown += [] if "latency_upper_s" not in best else [f"latency s (c={confidence:g})"]
    pcols = [c for c in _POWER_COLS if c in best] if power_cap is not None else []
    cols_shown += [
        "power W (pred)" if c == "power_w" else f"power W (c={confidence:g})" for c in pcols
    ]
    cols_shown += [f"{k.upper()} {tag} s" for k in factors] + (
        ["req/s (pred)"] if "latency_s" in best else []
    )
    for col in cols_shown:
        t.add_column(col, justify="right")
    lat_col = best.get("latency_s")
    ranked = []
    for k in range(len(best["index"])):
        ex = extra(best, k)
        t.add_row(
            str(k + 1), f"{best['tp'][k]:g}", f"{best['pp'][k]:g}", f"{best['batch'][k]:g}",
            f"{best['energy_per_request_j'][k]:.1f}",
            "" if lat_col is None else f"{lat_col[k]:.2f}",
            *([f"{best['latency_upper_s'][k]:.2f}"] if "latency_upper_s" in best else []),
            *(f"{best[c][k]:.0f}" for c in pcols),
            *(f"{ex[f'{kind}_{tag}_s']:.3g}" for kind in factors),
            *([f"{ex['request_rate_rps']:.3g}"] if "request_rate_rps" in ex else []),
        )  # fmt: skip
        ranked.append(
            {
                "rank": k + 1, "tp": best["tp"][k], "pp": best["pp"][k], "batch": best["batch"][k],
                "energy_per_request_j": best["energy_per_request_j"][k],
                **{c: best[c][k] for c in _SCORE_COLS if c in best},
                **{c: best[c][k] for c in _POWER_COLS if c in best and power_cap is not None},
                **ex,
            }
        )  # fmt: skip
    console.print(t)
    _notes(notes)
    result: dict[str, Any] = {
        "gpus": gpus, "input_len": input_len, "output_len": output_len,
        "latency_limit_s": latency_limit, "power_cap_w": power_cap, "slo": slo.to_dict(),
        "confidence": confidence,
        "hardware": None if check is None else {**check.to_dict(), "source": hw_source},
        "refused": [{"reason": r, "count": n} for r, n in refused],
        "notes": notes, "configurations": ranked,
    }  # fmt: skip
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix == ".json":
            output.write_text(json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n")
        else:
            write_csv(output, records_to_columns(ranked))
        console.print(f"wrote {output}", highlight=False)
        result["output"] = output
    _emit(json_out, result)


@app.command()
@_errors
def report(
    model: Annotated[Path, typer.Argument(help="Model JSON written by `energycore fit`.")],
    data: Annotated[Path, typer.Argument(help="Measurement CSV with energy_j.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the plots.")] = Path(
        "energycore-report"
    ),
    json_out: JsonOut = False,
) -> None:
    """Residual and Pareto plots of a model against measurements."""
    em, lat = _load_models(model)
    cols = _ok_rows(read_csv(data), data, "energy_j")
    pred = em.predict(cols)
    meas = cols["energy_j"]
    score = em.metrics(cols, meas)
    simulated = "source" in cols and bool((cols["source"] == "simulated").any())
    label = "SIMULATED measurements" if simulated else "measurements"
    console.print(
        f"{len(meas)} {label}: mean absolute error {100 * score['mape']:.1f} %, "
        f"R^2 {score['r2']:.3f}, rms log ratio {score['rmse_log']:.3f}",
        highlight=False,
    )
    out.mkdir(parents=True, exist_ok=True)

    def residuals() -> Path:
        from energycore.app.plots import residual_plot

        return residual_plot(
            out / "residuals.png", meas, pred,
            title=f"EnergyModel vs {label} ({data.name})", quantity="energy per batch (J)",
        )  # fmt: skip

    def pareto() -> Path:
        from energycore.app.plots import pareto_plot

        if "latency_s" not in cols or cols["latency_s"].dtype == object:
            raise CLIError(f"{data}: the Pareto plot needs a numeric 'latency_s' column")
        pl = pe = None
        if len(lat) == 2:
            pl = lat["ttft"].predict(cols) + lat["tpot"].predict(cols) * cols["output_len"]
            pe = pred / cols["batch"]
        # one front per workload shape: configurations serving different lengths do not compete
        shapes = sorted(
            {(float(a), float(b)) for a, b in zip(cols["input_len"], cols["output_len"])}
        )
        first: Path | None = None
        for il, ol in shapes:
            m = (cols["input_len"] == il) & (cols["output_len"] == ol)
            name = "pareto.png" if len(shapes) == 1 else f"pareto_{il:g}x{ol:g}.png"
            p = pareto_plot(
                out / name, cols["latency_s"][m], (meas / cols["batch"])[m],
                predicted_latency_s=None if pl is None else pl[m],
                predicted_energy_j=None if pe is None else pe[m],
                title=f"Energy vs latency at {il:g} -> {ol:g} tokens, {label} ({data.name})",
                reference_label="measured",
            )  # fmt: skip
            first = first or p
            if len(shapes) > 1:
                console.print(f"wrote {p}", highlight=False)
        assert first is not None
        return first

    plots = [_plot_or_skip("residual", residuals), _plot_or_skip("pareto", pareto)]
    _emit(
        json_out,
        {"n": len(meas), "simulated": simulated, **score, "plots": [p for p in plots if p]},
    )


@app.command()
@_errors
def profile(
    space_file: Annotated[
        Path,
        typer.Argument(help="Space file (TOML, or YAML): [space], [campaign], [server], [launch]."),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="CSV of every configuration (ok and failed)."),
    ] = None,
    journal: Annotated[
        Path | None, typer.Option(help="Journal (JSONL) instead of the file's [campaign] journal.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the journal's campaign (skip what it holds).")
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Profile a real OpenAI-compatible server (vLLM, SGLang, TGI) over a space of configurations."""
    from energycore.campaign.spacefile import load_space_file

    spec = load_space_file(space_file)
    camp = spec.make_campaign(journal=journal, progress=None if err_console.is_terminal else False)
    if resume and camp.journal is None:
        raise CLIError("--resume needs a journal ([campaign] journal or --journal)")
    try:
        camp.resume() if resume else camp.run()
    except Exception as e:
        from energycore.campaign.run import SYSTEM_ERRORS

        if not isinstance(e, SYSTEM_ERRORS):
            raise
        held = len(camp.records)
        hint = f"; the journal holds {held} result(s): rerun with --resume" if camp.journal else ""
        raise CLIError(f"{type(e).__name__}: {e}{hint}") from None
    recs = camp.records
    failed = [r for r in recs if r["status"] != "ok"]
    console.print(
        f"profiled {len(recs)} of {len(camp.configs)} configurations: {len(recs) - len(failed)} "
        f"ok, {len(failed)} failed" + (f" (journal {camp.journal})" if camp.journal else ""),
        highlight=False,
        soft_wrap=True,
    )
    for r in failed:
        cfg = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in r["config"].items())  # fmt: skip
        console.print(f"[yellow]failed:[/] {cfg}: {r['error']}", highlight=False, soft_wrap=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        camp.to_csv(output, include_failed=True)
        console.print(f"wrote {output}", highlight=False)
    _emit(
        json_out,
        {
            "n_planned": len(camp.configs), "n_ok": len(recs) - len(failed),
            "n_failed": len(failed), "journal": camp.journal, "output": output,
            "failed": [{"config": r["config"], "error": r["error"]} for r in failed],
        },
    )  # fmt: skip


def main() -> None:
    """Entry point of the ``energycore`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
