"""``Workload``: the simulator behind the profiling-campaign protocol.

A campaign calls ``workload(config, meter)`` once per configuration and records the returned
columns; :class:`Workload` answers from the simulator instead of a GPU (``requires_meter = False``,
it is called with ``meter=None``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from energycore.simulate.catalog import GPU, ModelSpec
from energycore.simulate.node import OUTPUT_COLUMNS
from energycore.simulate.simulator import SOURCE, Node


class Workload:
    """A simulated inference workload: one call "measures" one configuration.

    Parameters
    ----------
    gpu : str or GPU, default "H100"
        GPU of the simulated node.
    model : str or ModelSpec, default "llama-3.1-70b"
        Model served.
    seconds : float, default 0.0
        Real time to sleep per call (for demos and tests of interruption).
    n_gpus : int, default 8
        GPUs in the node.
    input_len, output_len : int
        Prompt and output tokens when the configuration does not give them.
    noise : float, default 0.03
        Multiplicative log-normal measurement noise.
    seed : int, default 0
        Seed; the noise of a call depends on the seed, the configuration and how many times
        that configuration was measured before, so a campaign is reproducible and repeats differ.

    Examples
    --------
    >>> w = Workload(gpu="H100", model="llama-3.1-70b")
    >>> row = w({"tp": 4, "pp": 1, "batch": 32}, None)
    >>> row["method"], row["source"]
    ('simulated', 'simulated')
    """

    #: The campaign need not open an energy meter for this workload.
    requires_meter = False

    def __init__(
        self,
        gpu: str | GPU = "H100",
        model: str | ModelSpec = "llama-3.1-70b",
        seconds: float = 0.0,
        *,
        n_gpus: int = 8,
        input_len: int = 512,
        output_len: int = 256,
        noise: float = 0.03,
        seed: int = 0,
    ) -> None:
        if not (isinstance(seconds, (int, float)) and np.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds: must be a finite non-negative number, got {seconds!r}")
        for name, v in (("input_len", input_len), ("output_len", output_len)):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, np.integer))
                or v < (name == "output_len")
            ):
                raise ValueError(f"{name}: must be a non-negative integer, got {v!r}")
        self.node = Node(gpu, model, n_gpus=n_gpus, noise=noise, seed=seed)
        self.seconds = float(seconds)
        self.input_len = int(input_len)
        self.output_len = int(output_len)
        self.seed = int(seed)
        self._counts: dict[tuple[float, ...], int] = {}

    def __repr__(self) -> str:
        return (
            f"Workload(gpu={self.node.gpu.name!r}, model={self.node.model.name!r}, "
            f"seconds={self.seconds}, n_gpus={self.node.n_gpus})  [simulated]"
        )

    def __call__(self, config: Mapping[str, Any], meter: Any = None) -> dict[str, Any]:
        """Simulate one configuration; ``ValueError`` naming the reason if it is invalid.

        Parameters
        ----------
        config : mapping
            ``tp``, ``pp``, ``batch`` and optionally ``input_len``, ``output_len``; other keys
            (user axes) are ignored.
        meter : None
            Unused (``requires_meter`` is False).

        Returns
        -------
        dict
            ``energy_j`` (per batch, all GPUs), ``energy_per_request_j``, ``latency_s``,
            ``ttft_s``, ``tpot_s``, ``avg_power_w``, ... and ``method = source = "simulated"``.
        """
        del meter
        if not isinstance(config, Mapping):
            raise ValueError(f"config: expected a mapping, got {type(config).__name__}")
        cfg = {
            "tp": config.get("tp", 1),
            "pp": config.get("pp", 1),
            "batch": config.get("batch", 1),
            "input_len": config.get("input_len", self.input_len),
            "output_len": config.get("output_len", self.output_len),
        }
        for k, v in cfg.items():
            if np.ndim(v) != 0:
                raise ValueError(f"config: '{k}' must be a single number, got {v!r}")
        key = tuple(float(v) for v in cfg.values())
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        digest = hashlib.blake2b(repr((self.seed, key, count)).encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        if self.seconds:
            time.sleep(self.seconds)
        res = self.node.run(cfg, rng=rng)
        if not bool(res["valid"][0]):
            raise ValueError(f"invalid configuration {cfg}: {res['reason'][0]}")
        out: dict[str, Any] = {k: float(res[k][0]) for k in OUTPUT_COLUMNS}
        out["n_gpus"] = int(out["n_gpus"])
        out.update(gpu=self.node.gpu.name, model=self.node.model.name, method=SOURCE, source=SOURCE)
        return out
