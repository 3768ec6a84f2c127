"""Calibration of the simulator against the ML.ENERGY leaderboard v3 measurements.

The public dataset (``../shared/data/mlenergy-leaderboard-v3-llm/llm_configs.csv``) measured
Llama-3.1-8B and -70B (and Llama-3.3-70B, the same shape) served by vLLM on H100 and B200 nodes
at many batch sizes on the ``lm-arena-chat`` task, and Llama-3.1-405B on 8 x B200 (compared, but
held out of the tuning). :func:`compare` puts the simulator beside every
such row at the same GPU, GPU count, tensor parallelism and (time-averaged) batch, and returns the
ratios simulated / measured of energy per output token and of inter-token latency.

The data carry no prompt lengths; we assume :data:`ASSUMED_INPUT_LEN` prompt tokens (see
``docs/simulator.md`` for why). vLLM batches continuously, holding on average about half of each
sequence's output in its KV cache, so the comparison runs without the simulator's static-batch
memory check.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from energycore.simulate.catalog import get_gpu, get_model
from energycore.simulate.node import Efficiency, run_physics
from energycore.simulate.simulator import CALIBRATED

#: Prompt tokens assumed for the lm-arena-chat task (not in the published data).
ASSUMED_INPUT_LEN = 400
#: The dataset's model nicknames and the catalogue models with their shapes.
MODEL_MAP: dict[str, str] = {
    "Llama 3.1 8B Instruct": "llama-3.1-8b",
    "Llama 3.1 70B Instruct": "llama-3.1-70b",
    "Llama 3.3 70B Instruct": "llama-3.1-70b",
    "Llama 3.1 405B Instruct": "llama-3.1-405b",
}
#: Rows compared but not used to tune the factors (a check of transfer to a larger model).
HELD_OUT: tuple[str, ...] = ("Llama 3.1 405B Instruct",)
#: The factors :func:`tune` adjusts; the rest keep their defaults.
TUNED: tuple[str, ...] = (
    "compute",
    "bandwidth",
    "step_overhead_s",
    "host_s_per_seq",
    "power_compute",
    "power_memory",
    "wait_power",
)
DATASET = "mlenergy-leaderboard-v3-llm/llm_configs.csv"


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """The calibration rows: lm-arena-chat, bf16, catalogue models, from the dataset CSV."""
    p = Path(path)
    if p.is_dir():
        p = p / DATASET
    if not p.is_file():
        raise ValueError(f"path: calibration data not found at {p}")
    with p.open(newline="") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["task"] == "lm-arena-chat"
            and r["weight_precision"] == "bfloat16"
            and r["nickname"] in MODEL_MAP
            and r["data_parallel"] in ("1", "1.0")
        ]
    if not rows:
        raise ValueError(f"path: no lm-arena-chat rows of {sorted(MODEL_MAP)} in {p}")
    return rows


def compare(
    rows: Sequence[dict[str, Any]],
    efficiency: Efficiency | None = None,
    input_len: float = ASSUMED_INPUT_LEN,
) -> list[dict[str, Any]]:
    """One record per measured row: the configuration, measured and simulated figures, ratios.

    Ratios are simulated / measured for ``energy_per_token_j`` (energy per output token) and
    ``itl_s`` (simulated time per output token vs measured median inter-token latency).
    """
    eff = CALIBRATED if efficiency is None else efficiency
    out: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((MODEL_MAP[r["nickname"]], r["gpu_model"]), []).append(r)
    for (model, gpu), grp in groups.items():
        tp = np.array([float(r["tensor_parallel"]) for r in grp])
        batch = np.array([round(float(r["avg_batch_size"])) for r in grp], dtype=float)
        out_len = np.array([round(float(r["avg_output_len"])) for r in grp], dtype=float)
        sim = run_physics(
            get_gpu(gpu),
            get_model(model),
            tp,
            1.0,
            batch,
            float(input_len),
            out_len,
            n_gpus=int(tp.max()),
            eff=eff,
            check_memory=False,
        )
        for i, r in enumerate(grp):
            e_meas = float(r["energy_per_token_joules"])
            itl_meas = float(r["median_itl_ms"]) / 1e3
            e_sim = float(sim["energy_per_token_j"][i])
            itl_sim = float(sim["tpot_s"][i])
            out.append(
                {
                    "model": r["nickname"],
                    "gpu": gpu,
                    "n_gpus": int(tp[i]),
                    "batch": int(batch[i]),
                    "energy_per_token_j_measured": e_meas,
                    "energy_per_token_j_simulated": e_sim,
                    "energy_ratio": e_sim / e_meas,
                    "itl_s_measured": itl_meas,
                    "itl_s_simulated": itl_sim,
                    "itl_ratio": itl_sim / itl_meas,
                    "power_ratio": float(sim["avg_power_w"][i]) / float(r["avg_power_watts"]),
                }
            )
    return out


def summary(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Median, minimum and maximum of the energy and latency ratios."""
    res: dict[str, float] = {}
    for key in ("energy_ratio", "itl_ratio"):
        v = np.array([r[key] for r in records])
        res[f"{key}_median"] = float(np.median(v))
        res[f"{key}_min"] = float(v.min())
        res[f"{key}_max"] = float(v.max())
    return res


def tune(
    rows: Sequence[dict[str, Any]],
    start: Efficiency | None = None,
    names: Sequence[str] = TUNED,
) -> Efficiency:
    """Least-squares tuning of the free factors on the log ratios (needs scipy).

    Minimises a soft-L1 loss of ``log(ratio)`` for energy and latency over all rows, so the
    largest ratios are pulled in without one row dominating. Used once to set the calibrated
    defaults; kept so the calibration can be redone when the data or the physics change.
    """
    from scipy.optimize import least_squares

    base = Efficiency() if start is None else start
    rows = [r for r in rows if r["nickname"] not in HELD_OUT]
    defaults = {f.name: getattr(base, f.name) for f in fields(Efficiency)}
    x0 = np.log([defaults[n] for n in names])
    upper = {"compute": 1.0, "bandwidth": 1.0}

    def make(x: np.ndarray) -> Efficiency:
        vals = {n: float(np.exp(v)) for n, v in zip(names, x, strict=True)}
        for n, hi in upper.items():
            if n in vals:
                vals[n] = min(vals[n], hi)
        return base.replace(**vals)

    def resid(x: np.ndarray) -> np.ndarray:
        recs = compare(rows, make(x))
        return np.log([r[k] for r in recs for k in ("energy_ratio", "itl_ratio")])

    fit = least_squares(resid, x0, loss="soft_l1", f_scale=0.2)
    return make(fit.x)


def markdown_table(records: Sequence[dict[str, Any]]) -> str:
    """The ratio table as Markdown (the one in ``docs/simulator.md``)."""
    lines = [
        "| model | GPU | GPUs (TP) | batch | J/token measured | J/token simulated | ratio "
        "| ITL ms measured | TPOT ms simulated | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['model']} | {r['gpu']} | {r['n_gpus']} | {r['batch']} "
            f"| {r['energy_per_token_j_measured']:.3f} | {r['energy_per_token_j_simulated']:.3f} "
            f"| {r['energy_ratio']:.2f} | {1e3 * r['itl_s_measured']:.1f} "
            f"| {1e3 * r['itl_s_simulated']:.1f} | {r['itl_ratio']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # python -m energycore.simulate.calibration [DATA_DIR]
    import sys

    recs = compare(load_rows(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
    print(markdown_table(recs))
    print()
    print(", ".join(f"{k} {v:.2f}" for k, v in summary(recs).items()))
