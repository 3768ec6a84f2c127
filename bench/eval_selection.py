"""Top-1 configuration-selection accuracy on the simulator (EnergyLens-style evaluation).

For every scenario (model x GPU x workload x latency limit) on a simulated 8-GPU node, each
method is given n profiling measurements (random plan, seeded noise), predicts energy per request
and latency for every (tp, pp, batch) of the workload, and picks the energy-optimal configuration
under the latency limit. The simulator knows the true optimum, so we report Top-1 accuracy (the
pick is the true optimum), mean and 95th-percentile energy regret, and how often the pick breaks
the latency limit in truth.

Methods
-------
energycore      EnergyModel (energy_v2) + TtftModel/TpotModel for latency, fitted on n samples.
latency-proxy   energy taken as GPU-seconds per request (n_gpus * latency / batch) from the same
                latency models: a constant-power assumption.
token-count     linear token-count model without parallelism terms:
                E = c0 + c1*b*Lin + c2*Lout + c3*b*Lout (latency alike), non-negative least squares.
gbdt            scikit-learn gradient boosting on the same five features (log energy, log latency),
                at n and at 10n samples.
energycore c=C  (one per ``--confidence`` value) the energycore models, the latency limit judged
                by the upper bound at one-sided confidence C that ``ConfigSpace.argmin(...,
                confidence=C)`` uses: ttft_upper + output_len * tpot_upper
                (energycore.space.uncertainty.upper_bound), and the power cap by power_upper_w
                (energycore.space.uncertainty.power_upper_bound: the energy and latency
                models' log variances added).
power-model     (power-capped scenarios only) energy from the energycore EnergyModel, the cap
                judged by a separate model of per-GPU average power fitted on the measured
                power (energy_j / latency_s / GPUs): ordinary least squares on log power in
                1, log tp, log pp, log batch, log^2 batch, log tp * log batch, log input_len,
                log output_len; "power-model c=C" judges its OLS prediction bound
                (Student-t, n - 8 degrees of freedom).

Run:  PYTHONPATH=python python bench/eval_selection.py            (full, ~1-2 min on 2 cores)
      PYTHONPATH=python python bench/eval_selection.py --quick    (fewer scenarios)
      PYTHONPATH=python python bench/eval_selection.py --confidence 0.5 0.8 0.9 0.95
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls
from sklearn.ensemble import GradientBoostingRegressor

from energycore import EnergyModel, MoeTpotModel, TpotModel, TtftModel
from energycore._util.columns import FEATURES
from energycore._util.select import constrained_argmin
from energycore.app import grid as _grid
from energycore.app.demo import PLAN_BATCHES, PLAN_INPUT_LENS, PLAN_OUTPUT_LENS
from energycore.simulate import Node
from energycore.simulate.catalog import get_model
from energycore.space.uncertainty import power_upper_bound, student_t_quantile, upper_bound

MODELS = ("llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "llava-1.5-7b")
GPUS = ("A100", "H100", "H200", "B200", "L40S", "MI300X")
WORKLOADS = ((512, 256), (2048, 128), (128, 1024))
#: Latency limits as multiples of the truly fastest configuration (inf = no limit).
LIMITS = (np.inf, 2.0)
#: Power-capped scenarios: average power per GPU at most this quantile of the true per-GPU
#: power over the workload's valid configurations (no latency limit).
POWER_CAP_QUANTILE = 0.5
N_GPUS = 8
SELECT_BATCHES = _grid.powers_of_two(1, 512)


@dataclass
class Scenario:
    model: str
    gpu: str
    workload: tuple[int, int]
    limit_factor: float


def plan(seed: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All plan candidates in a random order (the demo's profiling plan)."""
    rows = [
        (tp, pp, b, li, lo)
        for tp in _grid.powers_of_two(1, N_GPUS)
        for pp in _grid.powers_of_two(1, N_GPUS)
        if tp * pp <= N_GPUS
        for b in PLAN_BATCHES
        for li in sorted({*PLAN_INPUT_LENS, *(w[0] for w in WORKLOADS)})
        for lo in sorted({*PLAN_OUTPUT_LENS, *(w[1] for w in WORKLOADS)})
    ]
    a = np.array(rows, dtype=float)[rng.permutation(len(rows))]
    return {k: a[:, j].copy() for j, k in enumerate(FEATURES)}


def measure(node: Node, cand: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The first n candidates that run (a campaign records the others as failed)."""
    r = node.run(cand)
    idx = np.flatnonzero(r["valid"])[:n]
    out = {k: cand[k][idx] for k in FEATURES}
    out.update({k: r[k][idx] for k in ("energy_j", "latency_s", "ttft_s", "tpot_s")})
    return out


# --------------------------------------------------------------------------- methods
class Predictor:
    """Predicts (energy per request, batch latency) for candidate configurations."""

    def predict(self, X: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class EnergycorePredictor(Predictor):
    def __init__(
        self, d: dict[str, np.ndarray], seed: int, proxy: bool = False, moe: bool = False
    ) -> None:
        # moe: the model is a mixture of experts (the user knows), so TPOT uses tpot_moe_v1
        tpot = MoeTpotModel if moe else TpotModel
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # identifiability notes at small n
            self.e = None if proxy else EnergyModel(seed=seed).fit(d, d["energy_j"])
            self.t = TtftModel(seed=seed).fit(d, d["ttft_s"])
            self.p = tpot(seed=seed).fit(d, d["tpot_s"])

    def latency(self, X: dict[str, np.ndarray]) -> np.ndarray:
        return self.t.predict(X) + self.p.predict(X) * X["output_len"]

    def predict(self, X: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        lat = self.latency(X)
        if self.e is None:  # latency as the energy proxy: GPU-seconds per request
            return _grid.gpu_seconds_per_request(lat, X), lat
        return self.e.predict(X) / X["batch"], lat


class BoundedPredictor(Predictor):
    """An EnergycorePredictor whose latency is the upper bound at a confidence."""

    def __init__(self, base: EnergycorePredictor, confidence: float) -> None:
        self.base = base
        self.confidence = confidence

    def predict(self, X: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        b, c = self.base, self.confidence
        lat = upper_bound(b.t, X, c) + upper_bound(b.p, X, c) * X["output_len"]
        return b.predict(X)[0], lat

    def power_per_gpu(self, X: dict[str, np.ndarray]) -> np.ndarray:
        """power_upper_w / GPUs: the bound a power cap judges under ``confidence=``."""
        b = self.base
        assert b.e is not None
        return power_upper_bound(b.e, b.t, b.p, X, self.confidence) / (X["tp"] * X["pp"])


def _power_basis(X: dict[str, np.ndarray]) -> np.ndarray:
    lt, lp, lb = np.log(X["tp"]), np.log(X["pp"]), np.log(X["batch"])
    li, lo = np.log(X["input_len"]), np.log(X["output_len"])
    return np.column_stack([np.ones_like(lt), lt, lp, lb, lb * lb, lt * lb, li, lo])


class PowerModelPredictor(Predictor):
    """Energy from the energycore EnergyModel; per-GPU power from its own log-linear fit on the
    measured average power, as a point or at a one-sided OLS prediction bound."""

    def __init__(
        self, base: EnergycorePredictor, d: dict[str, np.ndarray], confidence: float | None
    ) -> None:
        self.base = base
        A = _power_basis(d)
        y = np.log(d["energy_j"] / d["latency_s"] / (d["tp"] * d["pp"]))
        self.coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        dof = len(y) - A.shape[1]
        if dof < 1:
            raise ValueError("power model: too few rows")
        self.s2 = float(np.sum((y - A @ self.coef) ** 2) / dof)
        self.inv = np.linalg.pinv(A.T @ A)
        self.t = 0.0 if confidence is None else student_t_quantile(confidence, dof)

    def predict(self, X: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return self.base.predict(X)

    def power_per_gpu(self, X: dict[str, np.ndarray]) -> np.ndarray:
        A = _power_basis(X)
        var = self.s2 * (1.0 + np.einsum("ij,jk,ik->i", A, self.inv, A))
        return np.asarray(np.exp(A @ self.coef + self.t * np.sqrt(var)))


def _token_basis(X: dict[str, np.ndarray]) -> np.ndarray:
    b, li, lo = X["batch"], X["input_len"], X["output_len"]
    return np.column_stack([np.ones_like(b), b * li, lo, b * lo])


class TokenCountPredictor(Predictor):
    def __init__(self, d: dict[str, np.ndarray]) -> None:
        A = _token_basis(d)
        self.ce = nnls(A / d["energy_j"][:, None], np.ones(len(A)))[0]  # relative error
        self.cl = nnls(A / d["latency_s"][:, None], np.ones(len(A)))[0]

    def predict(self, X: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        A = _token_basis(X)
        return A @ self.ce / X["batch"], A @ self.cl


class GbdtPredictor(Predictor):
    def __init__(self, d: dict[str, np.ndarray], seed: int) -> None:
        F = np.column_stack([d[k] for k in FEATURES])
        kw: dict[str, Any] = {"n_estimators": 300, "max_depth": 3, "learning_rate": 0.05,
                              "subsample": 0.8, "random_state": seed}  # fmt: skip
        self.e = GradientBoostingRegressor(**kw).fit(F, np.log(d["energy_j"]))
        self.t = GradientBoostingRegressor(**kw).fit(F, np.log(d["latency_s"]))

    def predict(self, X: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        F = np.column_stack([X[k] for k in FEATURES])
        return np.exp(self.e.predict(F)) / X["batch"], np.exp(self.t.predict(F))


# --------------------------------------------------------------------------- evaluation
def evaluate(
    quick: bool, seed: int, dense_latency: bool = False, confidences: tuple[float, ...] = ()
) -> tuple[list[dict[str, Any]], float, int, np.ndarray]:
    models = MODELS[:2] if quick else MODELS
    gpus = GPUS[:3] if quick else GPUS
    ns = (20, 50, 100)
    results: list[dict[str, Any]] = []
    n_scen = differ = 0
    thr_extra: list[float] = []  # true extra energy of the throughput optimum, per scenario
    for mi, model in enumerate(models):
        for gi, gpu in enumerate(gpus):
            s = seed + 1000 * mi + 17 * gi
            node = Node(gpu, model, n_gpus=N_GPUS, noise=0.03, seed=s)
            truth_node = Node(gpu, model, n_gpus=N_GPUS, noise=0.0)
            cand = plan(s, np.random.default_rng(s))
            data = measure(node, cand, 10 * max(ns))
            if len(data["tp"]) < 10 * max(ns):
                continue
            moe = bool(get_model(model).experts) and not dense_latency
            preds: dict[tuple[str, int], Predictor | None] = {}
            for n in ns:
                sub = {k: v[:n] for k, v in data.items()}
                for name, make in (
                    ("energycore", lambda d=sub, s=s, m=moe: EnergycorePredictor(d, s, moe=m)),
                    (
                        "latency-proxy",
                        lambda d=sub, s=s, m=moe: EnergycorePredictor(d, s, proxy=True, moe=m),
                    ),
                    ("token-count", lambda d=sub: TokenCountPredictor(d)),
                    ("gbdt", lambda d=sub, s=s: GbdtPredictor(d, s)),
                ):
                    try:
                        preds[(name, n)] = make()
                    except ValueError:
                        preds[(name, n)] = None
                big = {k: v[: 10 * n] for k, v in data.items()}
                preds[("gbdt@10n", n)] = GbdtPredictor(big, s)
                base = preds[("energycore", n)]
                for c in confidences:
                    preds[(f"energycore c={c:g}", n)] = (
                        None if base is None else BoundedPredictor(base, c)  # type: ignore[arg-type]
                    )
                for c in (None, *confidences):
                    name = "power-model" if c is None else f"power-model c={c:g}"
                    try:
                        preds[(name, n)] = (
                            None if base is None else PowerModelPredictor(base, sub, c)  # type: ignore[arg-type]
                        )
                    except (ValueError, np.linalg.LinAlgError):
                        preds[(name, n)] = None
            for li, lo in WORKLOADS:
                X = _grid.enumerate_configs(N_GPUS, SELECT_BATCHES, li, lo)
                t = truth_node.run(X, noise=False)
                ok = t["valid"]
                if not ok.any():
                    continue
                p_true = t["avg_power_w"] / t["n_gpus"]
                cap = float(np.quantile(p_true[ok], POWER_CAP_QUANTILE))
                for factor in (*LIMITS, "power cap"):
                    capped = factor == "power cap"
                    limit = np.inf if capped else factor * np.min(t["latency_s"][ok])
                    lim_v, lim = (p_true, cap) if capped else (t["latency_s"], limit)
                    opt = constrained_argmin(t["energy_per_request_j"], ok, lim_v, lim)
                    fastest = constrained_argmin(t["latency_s"], ok)
                    if opt is None:
                        continue
                    n_scen += 1
                    differ += int(opt != fastest and not capped)
                    e_opt = t["energy_per_request_j"][opt]
                    gpu_s = _grid.gpu_seconds_per_request(t["latency_s"], X)
                    if not capped:
                        thr = constrained_argmin(gpu_s, ok, t["latency_s"], limit)
                        thr_extra.append(float(t["energy_per_request_j"][thr] / e_opt - 1.0))
                    for (name, n), p in preds.items():
                        if name.startswith("power-model") and not capped:
                            continue  # a power model judges caps only
                        rec: dict[str, Any] = {"method": name, "n": n, "top1": False,
                                               "regret": np.nan, "violates": False,
                                               "model": model, "gpu": gpu,
                                               "limit": factor}  # fmt: skip
                        if p is not None:
                            # under a power cap the latency bound plays no part: the cap judges
                            # the power bound (BoundedPredictor) or the power model's
                            q = p.base if capped and isinstance(p, BoundedPredictor) else p
                            e, lat = q.predict(X)
                            if capped and isinstance(p, (BoundedPredictor, PowerModelPredictor)):
                                pred_v = p.power_per_gpu(X)
                            elif capped:
                                # power per GPU = energy of the batch / its latency / GPUs
                                pred_v = e * X["batch"] / lat / (X["tp"] * X["pp"])
                            else:
                                pred_v = lat
                            pick = constrained_argmin(e, ok, pred_v, lim)
                            if pick is not None:
                                # a pick that breaks the limit can use less energy than
                                # the constrained optimum: it counts as a violation, not a gain
                                rec["violates"] = bool(lim_v[pick] > lim * (1 + 1e-9))
                                rec["top1"] = pick == opt and not rec["violates"]
                                rec["regret"] = max(t["energy_per_request_j"][pick] / e_opt - 1, 0)
                        results.append(rec)
    return results, differ / max(n_scen, 1), n_scen, np.array(thr_extra)


def table(results: list[dict[str, Any]], capped: bool = False) -> str:
    results = [r for r in results if (r["limit"] == "power cap") == capped]
    lines = [
        "| method | n | Top-1 | mean regret | p95 regret | no pick | breaks limit |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = ("energycore", "latency-proxy", "token-count", "gbdt", "gbdt@10n", "power-model")

    def rank(k: tuple[str, int]) -> tuple[int, str, int]:
        m = k[0]
        return (order.index(m) if m in order else len(order), m, k[1])

    keys = sorted({(r["method"], r["n"]) for r in results}, key=rank)
    for method, n in keys:
        rs = [r for r in results if r["method"] == method and r["n"] == n]
        reg = np.array([r["regret"] for r in rs])
        fin = reg[np.isfinite(reg)]
        label_n = 10 * n if method == "gbdt@10n" else n
        lines.append(
            f"| {method.replace('@10n', '')} | {label_n} | {100 * np.mean([r['top1'] for r in rs]):.1f} % "
            f"| {100 * fin.mean():.2f} % | {100 * np.percentile(fin, 95):.2f} % "
            f"| {int((~np.isfinite(reg)).sum())} | {100 * np.mean([r['violates'] for r in rs]):.1f} % |"
        )
    return "\n".join(lines)


def speed(seed: int) -> str:
    """Simulator throughput on 100k configurations, as a ratio to the C++ closed form."""
    rng = np.random.default_rng(seed)
    n = 100_000
    X = {
        "tp": rng.choice([1.0, 2, 4, 8], n), "pp": rng.choice([1.0, 2, 4], n),
        "batch": rng.choice(2.0 ** np.arange(10), n), "input_len": rng.integers(1, 4096, n) * 1.0,
        "output_len": rng.integers(1, 1024, n) * 1.0,
    }  # fmt: skip
    node = Node("H100", "llama-3.1-70b")
    d = measure(node, plan(seed, rng), 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = EnergyModel(seed=seed, n_threads=1).fit(d, d["energy_j"])

    def best(f: Any) -> float:
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    t_sim = best(lambda: node.run(X))
    t_cpp = best(lambda: em.predict(X))
    return (
        f"simulator: 100k configurations in {t_sim:.3f} s; {t_sim / t_cpp:.0f}x the time of "
        f"EnergyModel.predict (C++, 1 thread) on the same rows ({t_cpp * 1e3:.1f} ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 models x 3 GPUs only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--by", action="store_true", help="also break Top-1 down by model/GPU/limit")
    ap.add_argument(
        "--dense-latency", action="store_true",
        help="fit TPOT with tpot_v1 for MoE models too (the behaviour before tpot_moe_v1)",
    )  # fmt: skip
    ap.add_argument(
        "--confidence", type=float, nargs="*", default=[],
        help="also rows 'energycore c=C': the latency limit judged by the upper bound at C",
    )  # fmt: skip
    args = ap.parse_args()
    print(speed(args.seed))
    t0 = time.perf_counter()
    results, differ, n_scen, extra = evaluate(
        args.quick, args.seed, args.dense_latency, tuple(args.confidence)
    )
    print(f"Top-1 selection accuracy on the simulator (SIMULATED), {n_scen} scenarios "
          f"(model x GPU x workload x latency limit), 8-GPU node")  # fmt: skip
    print(table(results))
    n_cap = len({(r["model"], r["gpu"]) for r in results if r["limit"] == "power cap"})
    print(
        f"\nPower-capped scenarios (SIMULATED): per-GPU average power <= the median true per-GPU "
        f"power of the workload's valid configurations, no latency limit ({n_cap} model x GPU "
        "pairs x 3 workloads); 'breaks limit' = the pick draws more than the cap in truth"
    )
    print(table(results, capped=True))
    print(f"latency-optimal != energy-optimal in {100 * differ:.1f} % of scenarios")
    miss = extra > 1e-9
    print(
        f"throughput-optimal (most requests per GPU-second within the limit, true values) != "
        f"energy-optimal "
        f"in {100 * miss.mean():.1f} % of scenarios; there it costs "
        f"{100 * extra[miss].mean() if miss.any() else 0:.1f} % more energy on average "
        f"(max {100 * extra.max():.1f} %)"
    )
    if args.by:
        for key in ("model", "gpu", "limit"):
            for val in sorted({r[key] for r in results}, key=str):
                rs = [r for r in results if r[key] == val and r["n"] == 50]
                line = ", ".join(
                    f"{m} {100 * np.mean([r['top1'] for r in rs if r['method'] == m]):.0f} %"
                    for m in ("energycore", "latency-proxy", "gbdt@10n")
                )
                print(f"  Top-1 at n=50 for {key}={val}: {line}")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
