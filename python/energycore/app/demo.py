"""The main demonstration: profile a simulated node, fit the energy model, select, compare.

On a simulated node (default 8 x H100 serving Llama-3.1-70B): plan profiling configurations,
"measure" them on the simulator, fit :class:`~energycore.EnergyModel` (and the latency models),
enumerate every valid configuration for one workload, pick the energy-optimal one under a latency
limit, and compare with the simulator's true optimum. The CLI command ``energycore demo`` renders
the result; this module holds no presentation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from energycore._util.select import constrained_argmin
from energycore.app import grid as _grid
from energycore.simulate.simulator import SOURCE, Node
from energycore.simulate.workload import Workload

#: Prompt and output lengths the profiling plan draws from (the workload's own are added).
PLAN_INPUT_LENS = (128, 512, 2048)
PLAN_OUTPUT_LENS = (64, 256, 1024)
#: Batch sizes of the plan and of the selection.
PLAN_BATCHES = tuple(_grid.powers_of_two(1, 512))
SELECT_BATCHES = tuple(_grid.powers_of_two(1, 512))
#: Default latency limit, as a multiple of the fastest predicted configuration.
DEFAULT_LIMIT_FACTOR = 2.0
#: The decision sweep: workloads (prompt, output tokens) x latency limits (x the fastest).
SWEEP_WORKLOADS = ((128, 64), (512, 256), (2048, 1024))
SWEEP_LIMIT_FACTORS = (1.5, 2.0, 4.0)


@dataclass
class DemoResult:
    """Everything the demo computed; see :func:`run_demo`."""

    gpu: str
    model: str
    n_gpus: int
    input_len: int
    output_len: int
    latency_limit_s: float
    limit_was_default: bool
    measurements: list[dict[str, Any]]
    n_failed: int
    energy_model: Any
    ttft_model: Any
    tpot_model: Any
    candidates: dict[str, Any]
    pick: int | None
    optimum: int | None
    latency_optimal: int | None
    throughput_optimal: int | None = None
    notes: list[str] = field(default_factory=list)
    #: One row per sweep scenario (see :func:`decision_sweep`).
    sweep: list[dict[str, Any]] = field(default_factory=list)

    def row(self, i: int | None) -> dict[str, Any] | None:
        """One enumerated configuration with its predicted and true figures."""
        return None if i is None else _grid.take(self.candidates, i)

    @property
    def regret(self) -> float:
        """True energy per request of the pick over the true optimum's, minus 1 (NaN if none).

        Negative only when the pick breaks the latency limit in truth (see
        :attr:`pick_breaks_limit`): it then saves energy by being slower than allowed.
        """
        if self.pick is None or self.optimum is None:
            return float("nan")
        e = self.candidates["true_energy_per_request_j"]
        return float(e[self.pick] / e[self.optimum] - 1.0)

    @property
    def pick_breaks_limit(self) -> bool:
        """Whether the pick's true latency exceeds the limit (the latency model was optimistic)."""
        if self.pick is None:
            return False
        return bool(self.candidates["true_latency_s"][self.pick] > self.latency_limit_s)

    @property
    def latency_optimal_extra_energy(self) -> float:
        """How much more true energy per request the fastest configuration uses than the pick."""
        if self.pick is None or self.latency_optimal is None:
            return float("nan")
        e = self.candidates["true_energy_per_request_j"]
        return float(e[self.latency_optimal] / e[self.pick] - 1.0)

    @property
    def throughput_optimal_extra_energy(self) -> float:
        """How much more true energy per request the throughput-optimal configuration (most
        requests per GPU-second within the latency limit, by the fitted latency model) uses
        than the true energy optimum: what tuning for throughput instead of energy costs."""
        if self.optimum is None or self.throughput_optimal is None:
            return float("nan")
        e = self.candidates["true_energy_per_request_j"]
        return float(e[self.throughput_optimal] / e[self.optimum] - 1.0)


def plan_candidates(n_gpus: int, input_len: int, output_len: int) -> list[dict[str, int]]:
    """All profiling candidates: parallelism within the node, batches, a spread of lengths."""
    ins = sorted({*PLAN_INPUT_LENS, int(input_len)})
    outs = sorted({*PLAN_OUTPUT_LENS, int(output_len)})
    return [
        {"tp": tp, "pp": pp, "batch": b, "input_len": li, "output_len": lo}
        for tp in _grid.powers_of_two(1, n_gpus)
        for pp in _grid.powers_of_two(1, n_gpus)
        if tp * pp <= n_gpus
        for b in PLAN_BATCHES
        for li in ins
        for lo in outs
    ]


def measure_plan(
    workload: Workload,
    candidates: list[dict[str, int]],
    samples: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Measure random candidates until ``samples`` succeed; failed ones are recorded too.

    Returns the measurement records (``status`` "ok" or "failed" with its ``reason``) and the
    number of failures.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(candidates))
    records: list[dict[str, Any]] = []
    ok = failed = 0
    for k in order:
        if ok >= samples:
            break
        cfg = candidates[int(k)]
        try:
            res = workload(cfg, None)
        except ValueError as e:
            failed += 1
            records.append({**cfg, "status": "failed", "reason": str(e), "source": SOURCE})
            continue
        ok += 1
        records.append({**cfg, **res, "status": "ok", "reason": ""})
        if progress is not None:
            progress(1)
    return records, failed


def decision_sweep(
    space: Any,
    fitted: list[Any],
    node: Node,
    workloads: tuple[tuple[int, int], ...] = SWEEP_WORKLOADS,
    factors: tuple[float, ...] = SWEEP_LIMIT_FACTORS,
) -> list[dict[str, Any]]:
    """What energy-aware selection buys over the usual choices, scenario by scenario.

    For each workload and latency limit (a multiple of the fastest predicted configuration):
    the pick (least predicted energy within the limit), the throughput-tuned choice (fewest
    predicted GPU-seconds per request within the limit) and the latency-optimal one, each
    judged by the simulator's *true* energy per request. ``throughput_extra`` and
    ``latency_optimal_extra`` are their true energy over the pick's, minus 1 (NaN when a
    choice does not exist).
    """
    rows = []
    for il, ol in workloads:
        kw = {"models": fitted, "input_len": float(il), "output_len": float(ol)}
        cand = space.to_frame(limit=None, as_frame=False, **kw)
        if not len(cand["index"]):
            continue
        truth = node.run(cand, noise=False)
        e_true = np.where(truth["valid"], truth["energy_per_request_j"], np.nan)
        fastest = int(np.argmin(cand["latency_s"]))
        gpu_s = _grid.gpu_seconds_per_request(cand["latency_s"], cand)
        every = np.ones(len(cand["index"]), dtype=bool)
        for f in factors:
            limit = float(f * cand["latency_s"][fastest])
            pick = constrained_argmin(cand["energy_per_request_j"], every, cand["latency_s"], limit)
            thr = constrained_argmin(gpu_s, every, cand["latency_s"], limit)
            if pick is None:
                continue

            def extra(i: int | None, pick: int = pick, e: Any = e_true) -> float:
                return float(e[i] / e[pick] - 1.0) if i is not None else float("nan")

            rows.append({
                "input_len": il, "output_len": ol, "limit_factor": f, "latency_limit_s": limit,
                "pick": _grid.take({k: cand[k] for k in ("tp", "pp", "batch")}, pick),
                "throughput_extra": extra(thr), "latency_optimal_extra": extra(fastest),
            })  # fmt: skip
    return rows


def _ok_columns(records: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    good = [r for r in records if r["status"] == "ok"]
    return {k: np.array([float(r[k]) for r in good]) for k in keys}


def run_demo(
    gpu: str = "H100",
    model: str = "llama-3.1-70b",
    n_gpus: int = 8,
    input_len: int = 512,
    output_len: int = 256,
    latency_limit: float | None = None,
    samples: int = 50,
    seed: int = 0,
    noise: float = 0.03,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Run the demonstration end to end on the simulator (see the module docstring).

    Parameters
    ----------
    gpu, model : str
        Catalogue names of the simulated GPU and model.
    n_gpus : int
        GPUs in the node.
    input_len, output_len : int
        The workload selected for: prompt and output tokens per request.
    latency_limit : float, optional
        Limit on the end-to-end latency of a batch, seconds. Default: twice the fastest
        predicted configuration (stated in the result).
    samples : int
        Configurations to measure successfully for the fit (at least 12).
    seed : int
        Seed of the plan and of the measurement noise.
    noise : float
        Multiplicative measurement noise of the simulator.
    progress : callable, optional
        Called with 1 after each successful measurement.

    Returns
    -------
    DemoResult
    """
    from energycore.fit.energy import EnergyModel, TpotModel, TtftModel

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 12:
        raise ValueError(f"samples: must be an integer of at least 12, got {samples!r}")
    if latency_limit is not None and not (np.isfinite(latency_limit) and latency_limit > 0):
        raise ValueError(
            f"latency_limit: must be a positive number of seconds, got {latency_limit}"
        )
    workload = Workload(
        gpu, model, n_gpus=n_gpus, input_len=input_len, output_len=output_len, noise=noise,
        seed=seed,
    )  # fmt: skip
    records, failed = measure_plan(
        workload, plan_candidates(n_gpus, input_len, output_len), samples, seed, progress
    )
    feats = ("tp", "pp", "batch", "input_len", "output_len")
    data = _ok_columns(records, (*feats, "energy_j", "ttft_s", "tpot_s"))
    if len(data["tp"]) < 12:
        raise ValueError(
            f"only {len(data['tp'])} of the planned configurations run on {n_gpus} x {gpu} with "
            f"{model}; the fit needs at least 12 (try more GPUs or a smaller model)"
        )
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        em = EnergyModel(seed=seed).fit(data, data["energy_j"])
        tm = TtftModel(seed=seed).fit(data, data["ttft_s"])
        pm = TpotModel(seed=seed).fit(data, data["tpot_s"])
    notes += sorted({str(w.message).split(";")[0] for w in caught})
    for m in (em, tm, pm):  # the model files record what they were fitted on
        m.set_provenance(workload.node.gpu.name, workload.node.model.name, "simulated")

    # Enumerate and select with the configuration-space engine: every (tp, pp, batch) of the
    # node that fits (constraints from the spec sheets), scored by the fitted models.
    space = _grid.node_space(
        n_gpus, max(SELECT_BATCHES), workload.node.gpu, workload.node.model,
        workload.node.efficiency.memory_fraction,
    )  # fmt: skip
    fitted = [em, tm, pm]
    il, ol = float(input_len), float(output_len)
    cand = space.to_frame(limit=None, as_frame=False, models=fitted, input_len=il, output_len=ol)
    if not len(cand["index"]):
        raise ValueError(
            f"no configuration of {model} fits on {n_gpus} x {gpu} for {input_len} -> "
            f"{output_len} tokens"
        )
    fastest = space.argmin("latency_s", models=fitted, input_len=il, output_len=ol)
    limit_default = latency_limit is None
    if latency_limit is None:
        latency_limit = float(DEFAULT_LIMIT_FACTOR * fastest.value)
    sel = space.argmin(
        "energy_per_request_j", subject_to={"latency_s": ("<=", latency_limit)},
        models=fitted, input_len=il, output_len=ol,
    )  # fmt: skip
    # The simulator's truth for the same configurations (the oracle the pick is judged by).
    node = Node(workload.node.gpu, workload.node.model, n_gpus=n_gpus, noise=0.0)
    truth = node.run(cand, noise=False)
    feasible = truth["valid"]
    cand = {
        **{k: cand[k] for k in ("index", "tp", "pp", "batch")},
        "input_len": np.full(len(cand["index"]), float(input_len)),
        "output_len": np.full(len(cand["index"]), float(output_len)),
        "valid": feasible,
        "reason": truth["reason"],
        "pred_energy_per_request_j": cand["energy_per_request_j"],
        "pred_latency_s": cand["latency_s"],
        "true_energy_per_request_j": truth["energy_per_request_j"],
        "true_latency_s": truth["latency_s"],
    }
    position = {int(p): i for i, p in enumerate(cand["index"])}
    pick = position[sel.index] if sel.feasible else None
    lat_opt = position[fastest.index] if fastest.feasible else None
    optimum = constrained_argmin(
        truth["energy_per_request_j"], feasible, truth["latency_s"], latency_limit
    )
    # What a throughput tuner deploys: the most requests per GPU-second (replicas fill the
    # node) within the limit, judged by the same fitted latency model.
    every = np.ones(len(cand["index"]), dtype=bool)
    gpu_s = _grid.gpu_seconds_per_request(cand["pred_latency_s"], cand)
    thr_opt = constrained_argmin(gpu_s, every, cand["pred_latency_s"], latency_limit)
    sweep = decision_sweep(space, fitted, node)
    if pick is not None and truth["latency_s"][pick] > latency_limit:
        notes.append(
            f"the pick's true latency {truth['latency_s'][pick]:.2f} s exceeds the limit "
            f"{latency_limit:.2f} s (the latency model was optimistic there)"
        )
    return DemoResult(
        gpu=workload.node.gpu.name,
        model=workload.node.model.name,
        n_gpus=n_gpus,
        input_len=input_len,
        output_len=output_len,
        latency_limit_s=float(latency_limit),
        limit_was_default=limit_default,
        measurements=records,
        n_failed=failed,
        energy_model=em,
        ttft_model=tm,
        tpot_model=pm,
        candidates=cand,
        pick=pick,
        optimum=optimum,
        latency_optimal=lat_opt,
        throughput_optimal=thr_opt,
        notes=notes,
        sweep=sweep,
    )
