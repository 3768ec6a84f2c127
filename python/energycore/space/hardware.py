"""What the recorded hardware can run: the catalogue's arithmetic as space constraints.

A model file records the GPU and served model its measurements came from
(:mod:`energycore.fit.provenance`). :class:`HardwareCheck` turns the catalogue entries of the
simulator (:mod:`energycore.simulate.catalog`) into :class:`ConfigSpace` constraint expressions,
one rule per reason, so that a selection refuses the configurations that hardware cannot run
and says how many each rule refused:

1. ``tp`` divides the attention heads; ``tp`` and the KV heads divide one another; ``pp``
   divides the layers;
2. the **weights** fit: per GPU, ``weights / (tp * pp)`` plus the runtime reserve (1 GB) and
   the prefill activation workspace (``8 * 16384 * hidden * 2`` bytes ``/ tp``), at most
   ``memory_fraction`` of the GPU's memory (the simulator's rule, ``simulate/node.py``);
3. the **KV cache of the whole batch** fits next to them: ``batch`` sequences at full length
   (``input_len`` + image tokens + ``output_len``), the cache split over
   ``pp * min(tp, kv_heads)`` GPUs (KV heads are replicated beyond that), sliding-window layers
   holding at most their window, a state-space model's recurrent state split over ``tp * pp``.

Rule 3 is stricter than the simulator, whose engine starts when one sequence fits and queues
the rest of a larger batch: a batch the cache cannot hold at once does not run as the batch the
models predict for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energycore.simulate.catalog import GPU, ModelSpec, get_gpu, get_model
from energycore.simulate.node import PREFILL_CHUNK

__all__ = ["HardwareCheck"]

_RUNTIME_GB = 1.0


@dataclass(frozen=True)
class HardwareCheck:
    """The configurations one GPU type can run for one served model.

    Parameters
    ----------
    gpu : str or GPU
        A catalogue name (``"H100"``) or a :class:`~energycore.simulate.GPU`.
    model : str or ModelSpec
        A catalogue name or alias (``"llama-3.1-70b"``, ``"70b"``) or a ModelSpec.
    memory_fraction : float
        Share of GPU memory the serving engine may use (vLLM's ``gpu_memory_utilization``).

    Raises
    ------
    ValueError
        For a name the catalogue does not know (the message lists the known names).
    """

    gpu: GPU
    model: ModelSpec
    memory_fraction: float = 0.9

    @classmethod
    def resolve(
        cls, gpu: str | GPU, model: str | ModelSpec, memory_fraction: float = 0.9
    ) -> HardwareCheck:
        """Look both names up in the catalogue (``ValueError`` listing the known names)."""
        if not 0 < memory_fraction <= 1:
            raise ValueError(f"memory_fraction: must be in (0, 1], got {memory_fraction!r}")
        return cls(get_gpu(gpu), get_model(model), float(memory_fraction))

    @property
    def usable_gb(self) -> float:
        """Memory the engine may use on one GPU, GB."""
        return self.gpu.hbm_gb * self.memory_fraction

    @property
    def weights_gb(self) -> float:
        """All weights of the model, GB."""
        return self.model.weight_bytes / 1e9

    def _fixed(self) -> str:
        act = 8.0 * PREFILL_CHUNK * self.model.hidden * 2.0 / 1e9
        return f"{self.weights_gb!r} / (tp * pp) + {_RUNTIME_GB!r} + {act!r} / tp"

    def _batch_cache(self) -> str:
        m = self.model
        ctx = f"(input_len + {m.image_tokens} + output_len)"
        terms = []
        if m.n_attention_layers:
            split = f"(pp * min(tp, {m.kv_heads}))"
            if m.kv_bytes_per_token:
                terms.append(f"{m.kv_bytes_per_token / 1e9!r} * {ctx} / {split}")
            if m.window_layers:
                local = m.window_layers * m.kv_bytes_per_token_layer / 1e9
                terms.append(f"{local!r} * min({ctx}, {m.window}) / {split}")
        if m.ssm_state_bytes:
            terms.append(f"{m.ssm_state_bytes / 1e9!r} / (tp * pp)")
        return "batch * (" + " + ".join(terms) + ")" if terms else "0"

    def rules(self) -> list[tuple[str, str]]:
        """``(reason, constraint)`` pairs, in the order refusals are attributed."""
        m, u = self.model, self.usable_gb
        out = [(f"tp does not divide the {m.heads} attention heads", f"{m.heads} % tp == 0")]
        if m.kv_heads:
            out.append(
                (
                    f"tp and the {m.kv_heads} KV heads: neither divides the other",
                    f"{m.kv_heads} % tp == 0 or tp % {m.kv_heads} == 0",
                )
            )
        out.append((f"pp does not divide the {m.layers} layers", f"{m.layers} % pp == 0"))
        out.append(
            (
                f"{m.name} weights need {self.weights_gb:.0f} GB > {u:.0f} GB usable on "
                f"{self.gpu.name} x tp*pp (with the runtime reserve and activations)",
                f"{self._fixed()} <= {u!r}",
            )
        )
        kv = m.kv_bytes_per_token / 1e6
        what = f"{kv:.3g} MB/token" if m.n_attention_layers else "recurrent state"
        out.append(
            (
                f"the weights and the KV cache of the whole batch ({what} x batch x "
                f"(input_len + output_len)) exceed {u:.0f} GB usable per {self.gpu.name}",
                f"{self._fixed()} + {self._batch_cache()} <= {u!r}",
            )
        )
        return out

    def constraints(self) -> list[str]:
        """The constraint expressions of :meth:`rules`."""
        return [c for _, c in self.rules()]

    def refusals(self, space: Any, **workload: float) -> list[tuple[str, int]]:
        """How many valid points of ``space`` each rule refuses (a point counts for the first
        rule it fails), at the fixed values ``workload`` (e.g. ``input_len=512``).

        Returns ``[(reason, count), ...]`` for the rules that refuse something.
        """
        out = []
        rules = self.rules()
        before = space.count_valid(**workload)
        for k in range(len(rules)):
            where = " and ".join(f"({c})" for _, c in rules[: k + 1])
            after = space.count_valid(where=where, **workload)
            if before > after:
                out.append((rules[k][0], before - after))
            before = after
        return out

    def to_dict(self) -> dict[str, Any]:
        """``{"gpu", "served_model", "usable_gb", "weights_gb"}``."""
        return {
            "gpu": self.gpu.name,
            "served_model": self.model.name,
            "usable_gb": self.usable_gb,
            "weights_gb": self.weights_gb,
        }
