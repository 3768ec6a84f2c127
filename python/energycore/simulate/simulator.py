"""The public simulator object: one node (GPU type, GPU count, model), validated input, noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from energycore._util.columns import FEATURES, as_float, column_names, get_column
from energycore.simulate.catalog import GPU, ModelSpec, get_gpu, get_model
from energycore.simulate.node import OUTPUT_COLUMNS, Efficiency, apply_noise, run_physics

#: The label every simulated number carries.
SOURCE = "simulated"

#: The calibrated efficiency factors (see ``docs/simulator.md``).
CALIBRATED = Efficiency()


class Node:
    """A simulated inference node: ``n_gpus`` GPUs of one type serving one model.

    Parameters
    ----------
    gpu : str or GPU
        Catalogue name (``"H100"``, ``"B200"``, ...) or a :class:`GPU`.
    model : str or ModelSpec
        Catalogue name (``"llama-3.1-70b"``, ...) or a :class:`ModelSpec`.
    n_gpus : int, default 8
        GPUs in the node; ``tp * pp`` may not exceed it.
    noise : float, default 0.03
        Standard deviation of the multiplicative log-normal measurement noise (0 for none).
    seed : int, default 0
        Seed of the noise.
    efficiency : Efficiency, optional
        The free factors; defaults to the calibrated ones.

    Examples
    --------
    >>> node = Node("H100", "llama-3.1-70b", n_gpus=8, noise=0.0)
    >>> r = node.run({"tp": [4, 8], "pp": [1, 1], "batch": [64, 64],
    ...               "input_len": [512, 512], "output_len": [256, 256]})
    >>> bool(r["valid"].all())
    True
    """

    def __init__(
        self,
        gpu: str | GPU = "H100",
        model: str | ModelSpec = "llama-3.1-70b",
        *,
        n_gpus: int = 8,
        noise: float = 0.03,
        seed: int = 0,
        efficiency: Efficiency | None = None,
    ) -> None:
        self.gpu = get_gpu(gpu)
        self.model = get_model(model)
        if isinstance(n_gpus, bool) or not isinstance(n_gpus, (int, np.integer)) or n_gpus < 1:
            raise ValueError(f"n_gpus: must be a positive integer, got {n_gpus!r}")
        if not (isinstance(noise, (int, float)) and np.isfinite(noise) and 0 <= noise < 1):
            raise ValueError(f"noise: must be a number in [0, 1), got {noise!r}")
        self.n_gpus = int(n_gpus)
        self.noise = float(noise)
        self.seed = int(seed)
        self.efficiency = CALIBRATED if efficiency is None else efficiency
        self._rng = np.random.default_rng(self.seed)

    def __repr__(self) -> str:
        return (
            f"Node(gpu={self.gpu.name!r}, model={self.model.name!r}, n_gpus={self.n_gpus}, "
            f"noise={self.noise}, seed={self.seed})  [simulated]"
        )

    def run(
        self,
        configs: Any,
        *,
        noise: bool = True,
        check_memory: bool = True,
        rng: np.random.Generator | None = None,
    ) -> dict[str, Any]:
        """Simulate every configuration of ``configs``.

        Parameters
        ----------
        configs : DataFrame, dict of arrays or structured array
            Columns ``tp``, ``pp``, ``batch``, ``input_len``, ``output_len``; optionally ``ep``
            (expert parallelism of an MoE: 1, or ``tp`` to spread whole experts over the
            attention's tensor-parallel group as vLLM's ``--enable-expert-parallel`` does);
            other columns are ignored. ``batch`` is the number of requests in flight; beyond
            what the paged KV cache holds they queue (``running_batch``).
        noise : bool, default True
            Add the node's measurement noise (``False`` gives the true, noise-free values).
        check_memory : bool, default True
            Apply the memory rule: refuse configurations whose weights and one full-length
            sequence do not fit, queue batches beyond the KV cache's capacity.
        rng : numpy Generator, optional
            Source of the noise for this call (default: the node's own seeded stream).

        Returns
        -------
        dict of numpy arrays
            The input columns, ``valid``, ``reason`` (``""`` when valid), the measured columns
            (``energy_j`` per batch over all GPUs, ``latency_s``, ``ttft_s``, ``tpot_s``,
            ``avg_power_w``, ...; NaN where invalid), ``gpu``, ``model`` and
            ``source = "simulated"``.
        """
        cols = _features(configs)
        ep = _expert_parallel(configs, len(cols["tp"]))
        res = run_physics(
            self.gpu,
            self.model,
            *(cols[k] for k in FEATURES),
            n_gpus=self.n_gpus,
            eff=self.efficiency,
            check_memory=check_memory,
            ep=ep,
        )
        if noise and self.noise > 0:
            gen = self._rng if rng is None else rng
            apply_noise(res, cols["batch"], cols["output_len"], self.noise, gen)
        n = len(cols["tp"])
        out: dict[str, Any] = {k: cols[k] for k in FEATURES}
        if ep is not None:
            out["ep"] = ep
        out.update({k: res[k] for k in ("valid", "reason", *OUTPUT_COLUMNS)})
        out["gpu"] = np.full(n, self.gpu.name, dtype=object)
        out["model"] = np.full(n, self.model.name, dtype=object)
        out["source"] = np.full(n, SOURCE, dtype=object)
        return out

    def frame(self, configs: Any, **kwargs: Any) -> Any:
        """:meth:`run` as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("Node.frame needs pandas: pip install 'energycore[plot]'") from exc
        return pd.DataFrame(self.run(configs, **kwargs))


def _expert_parallel(configs: Any, n: int) -> np.ndarray | None:
    """The optional ``ep`` column as floats (None when absent), validated like ``tp``."""
    if "ep" not in column_names(configs):
        return None
    if isinstance(configs, dict) and np.ndim(configs["ep"]) == 0:
        raw = np.atleast_1d(np.asarray(configs["ep"]))
    else:
        raw = get_column(configs, "ep", what="configs")
    a = as_float(raw, "ep", what="configs")
    if len(a) == 1 and n > 1:
        a = np.full(n, a[0])
    if len(a) != n:
        raise ValueError(f"configs: column 'ep' has {len(a)} rows, the others {n}")
    bad = (a != np.round(a)) | (a < 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"configs: 'ep' must be a positive integer, got {a[i]} at row {i}")
    return a


def _features(configs: Any) -> dict[str, np.ndarray]:
    """The five feature columns as float arrays, validated (ValueError naming field and row).

    Extra columns are ignored; in a dict, a scalar value is broadcast to the other columns.
    """
    column_names(configs)  # ValueError for an input without named columns
    raw: dict[str, np.ndarray] = {}
    for name in FEATURES:
        if isinstance(configs, dict) and name in configs and np.ndim(configs[name]) == 0:
            raw[name] = np.atleast_1d(np.asarray(configs[name]))
        else:
            raw[name] = get_column(configs, name, what="configs")
    lengths = {len(v) for v in raw.values() if len(v) != 1}
    if len(lengths) > 1:
        detail = ", ".join(f"{k}={len(v)}" for k, v in raw.items())
        raise ValueError(f"configs: columns have different lengths ({detail})")
    n = lengths.pop() if lengths else 1
    if n == 0:
        raise ValueError("configs: no rows")
    cols: dict[str, np.ndarray] = {}
    for name, col in raw.items():
        a = as_float(col, name, what="configs")
        if len(a) == 1 and n > 1:
            a = np.full(n, a[0])
        if name in ("tp", "pp", "batch"):
            bad = (a != np.round(a)) | (a < 1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"configs: '{name}' must be a positive integer, got {a[i]} at row {i}"
                )
        else:
            low = 1.0 if name == "output_len" else 0.0
            if (a < low).any():
                i = int(np.flatnonzero(a < low)[0])
                raise ValueError(
                    f"configs: '{name}' must be at least {low:g}, got {a[i]} at row {i}"
                )
        cols[name] = a
    return cols
