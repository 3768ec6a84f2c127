"""Calibration of the simulator against the ML.ENERGY leaderboard v3 measurements.

The public dataset (``../shared/data/mlenergy-leaderboard-v3-llm/llm_configs.csv``) measured
27 LLMs served by vLLM on H100 and B200 nodes at many batch sizes on three text tasks. Every row
of a catalogued model (:data:`MODEL_MAP`; data-parallel rows excluded) is put beside the
simulator at the same GPU, GPU count, parallelism (an MoE row with expert parallelism ``N`` runs
as ``tp = ep = N``: attention tensor-parallel, experts spread whole), time-averaged batch and
mean output length. :func:`compare` returns the ratios simulated / measured of energy per output
token, of per-token latency and of per-GPU power; :func:`report` the figures of the issue's
targets, for the rows the factors were tuned on (:data:`TUNING_MODELS`) and, separately, for the
rows they were not.

The data carry no prompt lengths; we assume :data:`ASSUMED_INPUT_LEN` per task (see
``docs/simulator.md`` for why). Run ``python -m energycore.simulate.calibration [DATA_DIR]``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from energycore.simulate.catalog import GPU, get_gpu, get_model
from energycore.simulate.node import Efficiency, run_physics
from energycore.simulate.simulator import CALIBRATED

#: Prompt tokens assumed per task (the published data carry none), from where the running batch
#: saturates the KV cache on H100 (docs/simulator.md).
ASSUMED_INPUT_LEN: dict[str, float] = {
    "lm-arena-chat": 400.0,
    "gpqa": 250.0,
    "sourcegraph-fim": 900.0,
}
#: The dataset's model nicknames and the catalogue models with their shapes.
MODEL_MAP: dict[str, str] = {
    "Llama 3.1 8B Instruct": "llama-3.1-8b",
    "Llama 3.1 70B Instruct": "llama-3.1-70b",
    "Llama 3.3 70B Instruct": "llama-3.1-70b",
    "Llama 3.1 405B Instruct": "llama-3.1-405b",
    "Llama 3.1 405B Instruct FP8": "llama-3.1-405b-fp8",
    "Qwen 3 8B": "qwen3-8b",
    "Qwen 3 14B": "qwen3-14b",
    "Qwen 3 32B": "qwen3-32b",
    "Gemma 3 12B": "gemma-3-12b",
    "Gemma 3 27B": "gemma-3-27b",
    "Qwen 3 30B A3B Instruct": "qwen3-30b-a3b",
    "Qwen 3 30B A3B Thinking": "qwen3-30b-a3b",
    "Qwen 3 Coder 30B A3B": "qwen3-30b-a3b",
    "Qwen 3 235B A22B Instruct": "qwen3-235b-a22b",
    "Qwen 3 235B A22B Thinking": "qwen3-235b-a22b",
    "Qwen 3 235B A22B Instruct FP8": "qwen3-235b-a22b-fp8",
    "Qwen 3 235B A22B Thinking FP8": "qwen3-235b-a22b-fp8",
    "Qwen 3 Coder 480B A35B": "qwen3-coder-480b-a35b",
    "Qwen 3 Coder 480B A35B FP8": "qwen3-coder-480b-a35b-fp8",
    "Llama 4 Scout 17B 16E Instruct": "llama-4-scout-17b-16e",
    "GPT OSS 20B": "gpt-oss-20b",
    "GPT OSS 120B": "gpt-oss-120b",
    "NVIDIA Nemotron Nano 9B V2": "nemotron-nano-9b-v2",
    "NVIDIA Nemotron Nano 12B V2": "nemotron-nano-12b-v2",
}
#: The models whose rows the factors are tuned on (dense, MoE and hybrid, both GPUs); every
#: other catalogued model's rows are held out and reported separately.
TUNING_MODELS: tuple[str, ...] = (
    "Llama 3.1 8B Instruct",
    "Llama 3.1 70B Instruct",
    "Qwen 3 32B",
    "Qwen 3 30B A3B Instruct",
    "NVIDIA Nemotron Nano 9B V2",
    # The FP8 subset (block-scaled FP8, expert parallel over 2, 4 and 8 GPUs): the only rows
    # the FP8 dequantisation cost and the expert-parallel factors are seen on. Its gpqa twin
    # (Thinking FP8), the bf16 Qwen3-235B and the per-channel FP8 Llama-405B stay held out.
    "Qwen 3 235B A22B Instruct FP8",
)
#: The factors :func:`tune` adjusts; the rest keep their defaults.
TUNED: tuple[str, ...] = (
    "compute",
    "bandwidth",
    "step_overhead_s",
    "host_s_per_seq",
    "power_compute",
    "power_memory",
    "power_exponent",
    "wait_power",
    "comm_power",
    "ep_skew",
    "a2a_latency_s",
    "moe_layer_overhead_s",
    "fp8_block_ops_per_byte",
)
#: Where :func:`tune` starts a factor whose default is 0 (it works on log values).
_TUNE_FLOOR: dict[str, float] = {
    "a2a_latency_s": 2e-6,
    "moe_layer_overhead_s": 2e-6,
    "fp8_block_ops_per_byte": 1.0,
    "ep_skew": 0.5,
}
#: The GPUs whose static power (``GPU.idle_w``) :func:`tune_static_power` fits on v3 rows.
CALIBRATED_GPUS: tuple[str, ...] = ("H100", "B200")
DATASET = "mlenergy-leaderboard-v3-llm/llm_configs.csv"


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """The calibration rows: text tasks, catalogued models, no data parallelism."""
    p = Path(path)
    if p.is_dir():
        p = p / DATASET
    if not p.is_file():
        raise ValueError(f"path: calibration data not found at {p}")
    with p.open(newline="") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["task"] in ASSUMED_INPUT_LEN
            and r["nickname"] in MODEL_MAP
            and float(r["data_parallel"]) == 1.0
        ]
    if not rows:
        raise ValueError(f"path: no rows of the catalogued models in {p}")
    return rows


def _parallelism(r: dict[str, Any]) -> tuple[float, float]:
    """(tp, ep) of a row: an expert-parallel MoE row runs attention tensor-parallel over all
    its GPUs with the experts spread whole over the same GPUs."""
    ep = float(r["expert_parallel"])
    if ep > 1:
        return float(r["num_gpus"]), ep
    return float(r["tensor_parallel"]), 1.0


def compare(
    rows: Sequence[dict[str, Any]],
    efficiency: Efficiency | None = None,
    input_len: dict[str, float] | None = None,
    gpus: dict[str, GPU] | None = None,
) -> list[dict[str, Any]]:
    """One record per measured row: the configuration, measured and simulated figures, ratios.

    Ratios are simulated / measured of ``energy_per_token_j`` (energy per output token), of
    ``itl_s`` (per-token latency: the simulated time of a batch, prefill included, per output
    token, as chunked prefill spreads the prompts over the decode steps; measured: median
    inter-token latency) and of per-GPU power. ``valid`` says whether the simulator accepted
    the configuration with its memory rule; ``queued`` whether the measured batch exceeds what
    its KV cache holds. ``gpus`` replaces catalogue GPUs by name (used by :func:`tune` to try
    static powers).
    """
    eff = CALIBRATED if efficiency is None else efficiency
    gpus = {} if gpus is None else gpus
    lens = ASSUMED_INPUT_LEN if input_len is None else input_len
    out: list[dict[str, Any]] = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((MODEL_MAP[r["nickname"]], r["gpu_model"], r["task"]), []).append(r)
    for (model, gpu, task), grp in groups.items():
        par = np.array([_parallelism(r) for r in grp])
        tp, ep = par[:, 0], par[:, 1]
        batch = np.array([max(1, round(float(r["avg_batch_size"]))) for r in grp], dtype=float)
        out_len = np.array([round(float(r["avg_output_len"])) for r in grp], dtype=float)
        sim = run_physics(
            gpus.get(gpu) or get_gpu(gpu),
            get_model(model),
            tp,
            1.0,
            batch,
            float(lens[task]),
            out_len,
            n_gpus=int(tp.max()),
            eff=eff,
            ep=ep,
        )
        itl = sim["latency_s"] / (out_len * batch / sim["running_batch"])
        for i, r in enumerate(grp):
            n = float(r["num_gpus"])
            meas = {
                "energy_per_token_j": float(r["energy_per_token_joules"]),
                "itl_s": float(r["median_itl_ms"]) / 1e3,
                "power_per_gpu_w": float(r["avg_power_watts"]) / n,
            }
            simv = {
                "energy_per_token_j": float(sim["energy_per_token_j"][i]),
                "itl_s": float(itl[i]),
                "power_per_gpu_w": float(sim["avg_power_w"][i]) / n,
            }
            rec: dict[str, Any] = {
                "task": task,
                "model": r["nickname"],
                "catalogue_model": model,
                "gpu": gpu,
                "n_gpus": int(n),
                "ep": int(ep[i]),
                "batch": int(batch[i]),
                "output_len": int(out_len[i]),
                "valid": bool(sim["valid"][i]),
                "reason": str(sim["reason"][i]),
                "queued": bool(sim["running_batch"][i] < batch[i]),
                "tuning": r["nickname"] in TUNING_MODELS,
            }
            for k in meas:
                rec[f"{k}_measured"] = meas[k]
                rec[f"{k}_simulated"] = simv[k]
            rec["energy_ratio"] = simv["energy_per_token_j"] / meas["energy_per_token_j"]
            rec["itl_ratio"] = simv["itl_s"] / meas["itl_s"]
            rec["power_ratio"] = simv["power_per_gpu_w"] / meas["power_per_gpu_w"]
            out.append(rec)
    return out


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    r[order] = np.arange(len(v), dtype=float)
    for x in np.unique(v):  # average ranks of ties
        tie = v == x
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (NaN when either side is constant)."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _groups(records: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Rows of one (task, model, GPU, GPU count): a batch sweep."""
    g: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        g.setdefault((r["task"], r["model"], r["gpu"], r["n_gpus"]), []).append(r)
    return g


def summary(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The issue's target figures over ``records``.

    ``*_in_band``: fraction of rows with a ratio in [0.8, 1.25]; ``power_abs_log_median``:
    median |log(simulated / measured per-GPU power)|; ``power_trend_sign``: fraction of batch
    sweeps (groups of >= 3 rows of one task, model, GPU and GPU count) whose
    Spearman(power, batch) has the measured sign; ``energy_rank_rho_median`` and ``energy_rank_ok``: within-group Spearman
    of simulated vs measured energy per token (median, fraction >= 0.9); ``valid``: fraction of
    rows the simulator accepts; plus median, min and max of each ratio.
    """
    res: dict[str, float] = {"rows": float(len(records))}
    ok = [r for r in records if r["valid"]]
    res["valid"] = len(ok) / max(len(records), 1)
    for key in ("energy_ratio", "itl_ratio", "power_ratio"):
        v = np.array([r[key] for r in ok])
        res[f"{key}_median"] = float(np.median(v))
        res[f"{key}_min"] = float(v.min())
        res[f"{key}_max"] = float(v.max())
        res[f"{key}_in_band"] = float(np.mean((v >= 0.8) & (v <= 1.25)))
    res["power_abs_log_median"] = float(np.median(np.abs(np.log([r["power_ratio"] for r in ok]))))
    signs, rhos = [], []
    for grp in _groups(ok).values():
        if len(grp) < 3:
            continue
        b = [r["batch"] for r in grp]
        pm = spearman([r["power_per_gpu_w_measured"] for r in grp], b)
        ps = spearman([r["power_per_gpu_w_simulated"] for r in grp], b)
        signs.append(np.sign(pm) == np.sign(ps))
        rhos.append(
            spearman(
                [r["energy_per_token_j_simulated"] for r in grp],
                [r["energy_per_token_j_measured"] for r in grp],
            )
        )
    res["groups"] = float(len(signs))
    res["power_trend_sign"] = float(np.mean(signs)) if signs else float("nan")
    rho = np.array(rhos)
    res["energy_rank_rho_median"] = float(np.nanmedian(rho)) if len(rho) else float("nan")
    res["energy_rank_ok"] = float(np.mean(rho >= 0.9)) if len(rho) else float("nan")
    return res


def tune(
    rows: Sequence[dict[str, Any]],
    start: Efficiency | None = None,
    names: Sequence[str] = TUNED,
) -> Efficiency:
    """Least-squares tuning of the free factors on the tuning rows (needs scipy).

    Minimises a soft-L1 loss of ``log(ratio)`` of energy per token, per-token latency and
    per-GPU power over the rows of :data:`TUNING_MODELS` (the others are never seen), so the
    largest ratios are pulled in without one row dominating. Used once to set the calibrated
    defaults; kept so the calibration can be redone when the data or the physics change.
    The GPUs keep their catalogue static power; :func:`tune_static_power` also fits it.
    """
    return _tune(rows, start, names, ())[0]


def static_power_bounds(rows: Sequence[dict[str, Any]], gpu: str) -> tuple[float, float]:
    """Physical bounds of a GPU's static power (``GPU.idle_w``) for :func:`tune_static_power`:
    at least 10 % of its TDP (an idle board), at most 90 % of the lowest per-GPU power measured
    on it in the tuning rows (a serving GPU draws more than its floor, and even the
    lowest-power row does some work)."""
    meas = [
        float(r["avg_power_watts"]) / float(r["num_gpus"])
        for r in rows
        if r["gpu_model"] == gpu and r["nickname"] in TUNING_MODELS
    ]
    if not meas:
        raise ValueError(f"gpu: no tuning rows measured on '{gpu}'")
    g = get_gpu(gpu)
    return 0.1 * g.tdp_w, 0.9 * min(meas)


def tune_static_power(
    rows: Sequence[dict[str, Any]],
    start: Efficiency | None = None,
    names: Sequence[str] = TUNED,
    gpus: Sequence[str] = CALIBRATED_GPUS,
) -> tuple[Efficiency, dict[str, float]]:
    """:func:`tune`, also fitting the static power (``idle_w``: the draw of a serving GPU with
    its clocks up and no kernel running) of each GPU in ``gpus``, within
    :func:`static_power_bounds`. Returns the factors and ``{gpu: idle_w}``."""
    return _tune(rows, start, names, tuple(gpus))


def _tune(
    rows: Sequence[dict[str, Any]],
    start: Efficiency | None,
    names: Sequence[str],
    gpus: tuple[str, ...],
) -> tuple[Efficiency, dict[str, float]]:
    from dataclasses import replace as dc_replace

    from scipy.optimize import least_squares

    base = Efficiency() if start is None else start
    rows = [r for r in rows if r["nickname"] in TUNING_MODELS]
    defaults = {f.name: getattr(base, f.name) for f in fields(Efficiency)}
    x0 = list(np.log([max(defaults[n], _TUNE_FLOOR.get(n, 1e-9)) for n in names]))
    bounds = [static_power_bounds(rows, g) for g in gpus]
    x0 += [
        np.log(min(max(get_gpu(g).idle_w, lo), hi))
        for g, (lo, hi) in zip(gpus, bounds, strict=True)
    ]
    upper = {
        "compute": 1.0,
        "bandwidth": 1.0,
        "wait_power": 1.0,
        "comm_power": 1.0,
        "power_exponent": 1.0,
    }

    def make(x: np.ndarray) -> tuple[Efficiency, dict[str, float]]:
        vals = {n: float(np.exp(v)) for n, v in zip(names, x[: len(names)], strict=True)}
        for n, hi in upper.items():
            if n in vals:
                vals[n] = min(vals[n], hi)
        idle = {
            g: float(np.clip(np.exp(v), lo, hi))
            for g, v, (lo, hi) in zip(gpus, x[len(names) :], bounds, strict=True)
        }
        return base.replace(**vals), idle

    def resid(x: np.ndarray) -> np.ndarray:
        eff, idle = make(x)
        over = {g: dc_replace(get_gpu(g), idle_w=w) for g, w in idle.items()}
        recs = [r for r in compare(rows, eff, gpus=over) if r["valid"]]
        keys = ("energy_ratio", "itl_ratio", "power_ratio")
        return np.log([r[k] for r in recs for k in keys])

    fit = least_squares(resid, np.array(x0), loss="soft_l1", f_scale=0.1)
    return make(fit.x)


def markdown_table(records: Sequence[dict[str, Any]]) -> str:
    """The per-(task, model, GPU, GPU count) table of medians and in-band fractions."""
    lines = [
        "| set | task | model | GPU | GPUs | rows | valid | J/token ratio median | in [0.8, 1.25] "
        "| ITL ratio median | in [0.8, 1.25] | W/GPU ratio median | rho(W, batch) measured "
        "| simulated | rho(J/token) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (task, model, gpu, n), grp in sorted(_groups(records).items()):
        ok = [r for r in grp if r["valid"]]
        e = np.array([r["energy_ratio"] for r in ok])
        t = np.array([r["itl_ratio"] for r in ok])
        w = np.array([r["power_ratio"] for r in ok])
        b = [r["batch"] for r in ok]
        if len(ok) >= 3:
            pm = spearman([r["power_per_gpu_w_measured"] for r in ok], b)
            ps = spearman([r["power_per_gpu_w_simulated"] for r in ok], b)
            re = spearman(
                [r["energy_per_token_j_simulated"] for r in ok],
                [r["energy_per_token_j_measured"] for r in ok],
            )
            rho = f"{pm:+.2f} | {ps:+.2f} | {re:.2f}"
        else:
            rho = "- | - | -"
        band = lambda v: float(np.mean((v >= 0.8) & (v <= 1.25)))  # noqa: E731
        lines.append(
            f"| {'tune' if grp[0]['tuning'] else 'held out'} | {task} | {model} | {gpu} | {n} "
            f"| {len(grp)} | {len(ok)} | {np.median(e):.2f} | {band(e):.0%} "
            f"| {np.median(t):.2f} | {band(t):.0%} | {np.median(w):.2f} | {rho} |"
        )
    return "\n".join(lines)


def report(records: Sequence[dict[str, Any]]) -> str:
    """The held-out report: target figures for the tuning and the held-out rows, then the
    table per (task, model, GPU, GPU count)."""
    keys = (
        ("valid", "valid rows", "1.00"),
        ("energy_ratio_in_band", "J/token in [0.8, 1.25]", ">= 0.90"),
        ("itl_ratio_in_band", "ITL in [0.8, 1.25]", ">= 0.90"),
        ("power_abs_log_median", "median abs log W/GPU ratio", "<= 0.10"),
        ("power_trend_sign", "sweeps with the measured sign of rho(W, batch)", ">= 0.90"),
        ("energy_rank_ok", "sweeps with rho(J/token) >= 0.9", "all"),
        ("energy_rank_rho_median", "median rho(J/token)", ">= 0.9"),
        ("energy_ratio_median", "J/token ratio median", "1"),
        ("itl_ratio_median", "ITL ratio median", "1"),
        ("power_ratio_median", "W/GPU ratio median", "1"),
    )
    tune_s = summary([r for r in records if r["tuning"]])
    held_s = summary([r for r in records if not r["tuning"]])
    lines = [
        f"SIMULATED vs MEASURED (ML.ENERGY v3): {int(tune_s['rows'])} tuning rows "
        f"({int(tune_s['groups'])} sweeps), {int(held_s['rows'])} held-out rows "
        f"({int(held_s['groups'])} sweeps)",
        "",
        "| figure | target | tuning rows | held-out rows |",
        "|---|---|---:|---:|",
    ]
    for k, label, target in keys:
        lines.append(f"| {label} | {target} | {tune_s[k]:.2f} | {held_s[k]:.2f} |")
    return "\n".join(lines) + "\n\n" + markdown_table(records)


if __name__ == "__main__":  # python -m energycore.simulate.calibration [DATA_DIR]
    import sys

    print(report(compare(load_rows(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))))
