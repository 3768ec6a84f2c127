"""Helpers shared by the test modules (the one place for them: no test module imports another).

- synthetic data from the energy template itself, for fit tests;
- ``TRUE``, ``template_data``, ``fitted``: energy and latency models fitted to noise-free data
  generated from known coefficients, and ``SPACE``, a small space, for the space and selector tests.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from energycore import ConfigSpace, EnergyModel, LatencyModel, _core
from energycore._util.columns import FEATURES


def draw_design(rng: np.random.Generator, n: int = 50) -> dict[str, np.ndarray]:
    """A design that varies every feature (tp, pp, batch and both lengths)."""
    return {
        "tp": rng.choice([1, 2, 4, 8], n),
        "pp": rng.choice([1, 2, 4], n),
        "batch": rng.choice([1, 2, 4, 8, 16, 32, 64, 128], n),
        "input_len": rng.integers(16, 8192, n),
        "output_len": rng.integers(16, 2048, n),
    }


def draw_theta(rng: np.random.Generator) -> np.ndarray:
    """Coefficients of realistic magnitude, spanning about eight orders of magnitude."""
    u = rng.uniform
    return np.array(
        [
            10 ** u(-4, -2), 10 ** u(-9, -7), u(-0.5, 1.5), u(0, 0.5), 10 ** u(-5, -3),
            10 ** u(-1, 1), 10 ** u(-3, -1), 10 ** u(-8, -6), u(-0.5, 1.5), u(0, 0.5),
            10 ** u(-4, -2), 10 ** u(-1, 1.5),
        ]
    )  # fmt: skip


def table(X: dict[str, np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(np.column_stack([X[k] for k in FEATURES]), dtype=np.float64)


#: The template EnergyModel fits unless told otherwise.
DEFAULT = "energy_v2"


def energy(X: dict[str, np.ndarray], theta: np.ndarray, template: str = DEFAULT) -> np.ndarray:
    return _core.template_value(template, table(X), theta)


def noisy_problem(seed: int, n: int = 50, noise: float = 0.01, template: str = DEFAULT):
    rng = np.random.default_rng(seed)
    X = draw_design(rng, n)
    theta = draw_theta(rng)
    y = energy(X, theta, template) * np.exp(rng.normal(0.0, noise, n))
    return X, y, theta


TRUE = {
    "energy_v1": np.array([1e-3, 1e-8, 0.1, 0.1, 1e-4, 1.0, 1e-2, 1e-6, 0.1, 0.1, 1e-3, 1.0]),
    "ttft_v1": np.array([1e-5, 1e-10, -0.8, 0.1, 1e-6, 1e-2]),
    "tpot_v1": np.array([1e-2, 1e-5, 1e-9, -0.7, 0.1, 1e-6]),
}


def template_data(scale: float, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = 160
    X = {
        "tp": rng.choice([1, 2, 4, 8], n).astype(float),
        "pp": rng.choice([1, 2, 4], n).astype(float),
        "batch": rng.choice([1, 4, 16, 64], n).astype(float),
        "input_len": rng.choice([128, 512, 2048], n).astype(float),
        "output_len": rng.choice([64, 256], n).astype(float),
    }
    T = np.column_stack([X[k] for k in FEATURES])
    y = {k: scale * _core.template_value(k, T, th, 1) for k, th in TRUE.items()}
    return X, y


@functools.cache
def fitted(scale: float = 1.0, seed: int = 0) -> tuple[EnergyModel, LatencyModel]:
    """An EnergyModel and a LatencyModel fitted to data from TRUE scaled by ``scale``."""
    X, y = template_data(scale, seed)
    em = EnergyModel(n_threads=1).fit(X, y["energy_v1"])
    lm = LatencyModel(n_threads=1).fit(X, y["ttft_v1"], y["tpot_v1"])
    return em, lm


SPACE = {
    "tp": [1, 2, 4, 8],
    "pp": [1, 2],
    "batch": ConfigSpace.powers_of_two(1, 64),
    "gpu": ["H100", "A100"],
}


# ---------------------------------------------------------------- a fake OpenAI-compatible server
#: The fake server script (stdlib only; loopback; bounded in requests and time).
FAKE_SERVER = Path(__file__).with_name("fake_openai_server.py")


class FakeServer:
    """``tests/fake_openai_server.py`` run as a subprocess on 127.0.0.1 (``with FakeServer(...)``).

    ``args`` are the script's options (``"--fail-every", "4"``); ``port`` 0 lets it pick one.
    """

    def __init__(self, *args: str, port: int = 0) -> None:
        self.args = [str(a) for a in args]
        self.port = port
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE_SERVER), "--port", str(self.port), "--max-seconds", "60",
             *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"fake server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


def planted_data(
    terms: list[str], n: int = 200, noise: float = 0.02, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Data from a known sparse form (for discovery tests): X, y and the true coefficients.

    Each term contributes on average a share between 0.2 and 1 of the mean of the others'
    scale (coefficient = share / mean of the term's column); multiplicative log-normal noise.
    """
    from energycore.fit.discover import Term

    rng = np.random.default_rng(seed)
    X = {
        "tp": rng.choice([1.0, 2.0, 4.0, 8.0], n),
        "pp": rng.choice([1.0, 2.0], n),
        "batch": rng.choice([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0], n),
        "input_len": rng.choice([128.0, 256.0, 512.0, 1024.0, 2048.0], n),
        "output_len": rng.choice([64.0, 128.0, 256.0, 512.0, 1024.0], n),
    }
    X["n_gpus"] = X["tp"] * X["pp"]
    X["tp-1"], X["pp-1"] = X["tp"] - 1, X["pp"] - 1
    cols = []
    for t in map(Term.parse, terms):
        c = np.ones(n)
        for v, e in t.factors:
            c = c * X[v] ** e
        cols.append(c)
    T = np.column_stack(cols)
    coef = rng.uniform(0.2, 1.0, len(terms)) / T.mean(axis=0)
    y = T @ coef * np.exp(rng.normal(0.0, noise, n))
    for k in ("n_gpus", "tp-1", "pp-1"):
        del X[k]
    return X, y, coef


def simulated_energy_rows(
    seed: int, model: str, n: int = 80
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The first ``n`` valid of 600 random configurations of a simulated 8xH100 node serving
    ``model`` (4 % noise, seeded): features and energy per batch. The outlier benchmark's
    design (bench/eval_outliers.py) and the outlier tests' data."""
    from energycore.simulate import Node

    rng = np.random.default_rng(seed)
    node = Node("H100", model, n_gpus=8, noise=0.04, seed=seed)
    m = 600
    cfg = {
        "tp": rng.choice([1, 2, 4, 8], m),
        "pp": rng.choice([1, 2, 4], m),
        "batch": rng.choice([1, 2, 4, 8, 16, 32, 64, 128, 256], m),
        "input_len": rng.integers(64, 4096, m).astype(float),
        "output_len": rng.integers(32, 2048, m).astype(float),
    }
    r = node.run(cfg)
    ok = np.flatnonzero(r["valid"])[:n]
    return {k: np.asarray(r[k])[ok].astype(float) for k in FEATURES}, np.asarray(r["energy_j"])[ok]


def simulated_serving_rows(
    n: int, seed: int, noise: float = 0.03, gpu: str = "H100"
) -> dict[str, np.ndarray]:
    """``n`` valid simulated configurations of llama-3.1-8b on an 8-GPU node (random tp, pp,
    batch and lengths) with their energy, TTFT and TPOT: the data of the confidence and
    power-bound tests."""
    from energycore.simulate import Node

    node = Node(gpu, "llama-3.1-8b", n_gpus=8, noise=noise, seed=seed)
    rng = np.random.default_rng(seed)
    X = {
        "tp": rng.choice([1.0, 2, 4, 8], 4 * n),
        "pp": rng.choice([1.0, 2], 4 * n),
        "batch": rng.choice([1.0, 4, 16, 64, 256], 4 * n),
        "input_len": rng.choice([128.0, 512, 2048], 4 * n),
        "output_len": rng.choice([64.0, 256, 512], 4 * n),
    }
    r = node.run(X)
    ok = np.flatnonzero(r["valid"])[:n]
    d = {k: v[ok] for k, v in X.items()}
    d.update({k: r[k][ok] for k in ("energy_j", "ttft_s", "tpot_s")})
    return d


def fit_serving_models(d: dict[str, np.ndarray]) -> tuple[EnergyModel, LatencyModel]:
    """The default energy and latency models fitted on :func:`simulated_serving_rows` data
    (identifiability warnings silenced: few-row fits are the point of those tests)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EnergyModel().fit(d, "energy_j"), LatencyModel().fit(d, "ttft_s", "tpot_s")


def serving_space(**kw: Any) -> ConfigSpace:
    """tp x pp x batch (powers of two to 256) on at most 8 GPUs: the space of the confidence
    and power-bound tests."""
    return ConfigSpace(
        {"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": ConfigSpace.powers_of_two(1, 256)},
        constraints=["tp*pp <= 8"],
        **kw,
    )


def cli_invoke(*args: str | Path) -> tuple[int, str]:
    """Run ``energycore ARGS`` in-process (typer's CliRunner): (exit code, output). Fails the
    test on a traceback: the CLI turns every error into a message."""
    from typer.testing import CliRunner

    from energycore.app.cli import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.output
    return res.exit_code, res.output


def cli_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    """:func:`cli_invoke` with ``--json``: (exit code, the parsed last line)."""
    import json

    code, out = cli_invoke(*args, "--json")
    return code, json.loads(out.strip().splitlines()[-1])  # the runner mixes in stderr
