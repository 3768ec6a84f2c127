"""GPU and model catalogues of the simulator, built from public specification figures.

Every GPU figure comes from the vendor's public datasheet; the source of each figure is listed
in ``docs/simulator.md``. Idle power has no vendor figure and is an estimate (stated as such).
Users can add their own entries with :func:`register_gpu` and :func:`register_model`, or pass a
:class:`GPU` / :class:`ModelSpec` object wherever a name is accepted.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GPU:
    """One accelerator, from its datasheet.

    Attributes
    ----------
    name : str
        Catalogue key, e.g. ``"H100"``.
    tflops : float
        Peak dense (no sparsity) BF16 tensor throughput, TFLOP/s.
    hbm_gb : float
        Memory capacity, GB (1e9 bytes).
    hbm_tbps : float
        Memory bandwidth, TB/s.
    link_gbps : float
        GPU-to-GPU bandwidth per direction, GB/s (NVLink / Infinity Fabric / PCIe).
    tdp_w : float
        Board power limit, W.
    idle_w : float
        Power of an idle GPU with a model loaded, W (an estimate; no vendor figure).
    description : str
        Full product name.
    """

    name: str
    tflops: float
    hbm_gb: float
    hbm_tbps: float
    link_gbps: float
    tdp_w: float
    idle_w: float
    description: str = ""

    def __post_init__(self) -> None:
        for f in ("tflops", "hbm_gb", "hbm_tbps", "link_gbps", "tdp_w"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and v > 0 and v == v and v != float("inf")):
                raise ValueError(f"GPU '{self.name}': '{f}' must be a positive number, got {v!r}")
        if not (0 <= self.idle_w < self.tdp_w):
            raise ValueError(
                f"GPU '{self.name}': 'idle_w' must lie in [0, tdp_w), got {self.idle_w!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The figures as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """The shape of one model, enough for a roofline of its prefill and decode.

    Attributes
    ----------
    name : str
        Catalogue key, e.g. ``"llama-3.1-70b"``.
    params_b : float
        Total parameters, billions (all experts for an MoE).
    layers, hidden, heads, kv_heads, head_dim : int
        Transformer shape. ``kv_heads = 0`` means no KV cache (a state-space model).
    active_params_b : float or None
        Parameters used per token, billions (an MoE); ``None`` means ``params_b``.
    experts, experts_per_token : int
        MoE experts per layer and experts each token is routed to (0 for a dense model).
    expert_params_b : float
        Parameters in all experts together, billions (the part an MoE step reads sparsely).
    ssm_state_bytes : float
        Recurrent state per sequence in bytes (a state-space model: constant, does not grow).
    image_tokens : int
        Tokens each request's image adds to the prompt (a multimodal model; 0 otherwise).
    vision_params_b : float
        Parameters of the vision encoder, billions, run once per image token in prefill.
    bytes_per_param : float
        2 for bf16 weights, 1 for fp8.
    source : str
        Where the shape comes from.
    """

    name: str
    params_b: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    active_params_b: float | None = None
    experts: int = 0
    experts_per_token: int = 0
    expert_params_b: float = 0.0
    ssm_state_bytes: float = 0.0
    image_tokens: int = 0
    vision_params_b: float = 0.0
    bytes_per_param: float = 2.0
    source: str = ""
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for f in ("params_b", "layers", "hidden", "heads", "head_dim", "bytes_per_param"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"model '{self.name}': '{f}' must be positive, got {v!r}")
        if self.kv_heads < 0 or (self.kv_heads and self.heads % self.kv_heads):
            raise ValueError(
                f"model '{self.name}': 'kv_heads' must be 0 or divide heads ({self.heads}), "
                f"got {self.kv_heads}"
            )
        if self.kv_heads == 0 and self.ssm_state_bytes <= 0:
            raise ValueError(
                f"model '{self.name}': a model without KV heads needs 'ssm_state_bytes' > 0"
            )
        if self.experts and not (0 < self.experts_per_token <= self.experts):
            raise ValueError(
                f"model '{self.name}': 'experts_per_token' must lie in [1, experts], "
                f"got {self.experts_per_token}"
            )
        if self.expert_params_b > self.params_b:
            raise ValueError(f"model '{self.name}': 'expert_params_b' exceeds 'params_b'")

    @property
    def active_b(self) -> float:
        """Parameters used per token, billions."""
        return self.params_b if self.active_params_b is None else self.active_params_b

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights."""
        return self.params_b * 1e9 * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token of context over all layers (bf16 cache)."""
        return 2.0 * self.layers * self.kv_heads * self.head_dim * 2.0

    def to_dict(self) -> dict[str, Any]:
        """The shape as a plain dict."""
        return asdict(self)


_GPUS: dict[str, GPU] = {}
_MODELS: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register_gpu(gpu: GPU, *, overwrite: bool = False) -> GPU:
    """Add a GPU to the catalogue (``ValueError`` if the name is taken and not ``overwrite``)."""
    if not isinstance(gpu, GPU):
        raise ValueError(f"gpu: expected a GPU, got {type(gpu).__name__}")
    if gpu.name.lower() in _GPUS and not overwrite:
        raise ValueError(f"gpu: '{gpu.name}' is already in the catalogue (pass overwrite=True)")
    _GPUS[gpu.name.lower()] = gpu
    return gpu


def register_model(model: ModelSpec, *, overwrite: bool = False) -> ModelSpec:
    """Add a model to the catalogue (``ValueError`` if the name is taken and not ``overwrite``)."""
    if not isinstance(model, ModelSpec):
        raise ValueError(f"model: expected a ModelSpec, got {type(model).__name__}")
    key = model.name.lower()
    if key in _MODELS and not overwrite:
        raise ValueError(f"model: '{model.name}' is already in the catalogue (pass overwrite=True)")
    _MODELS[key] = model
    for a in model.aliases:
        _ALIASES[a.lower()] = key
    return model


def _lookup(table: dict[str, Any], key: str, what: str) -> Any:
    k = key.lower()
    if k in table:
        return table[k]
    hint = difflib.get_close_matches(k, list(table), n=1, cutoff=0.5)
    msg = f"{what}: unknown name '{key}'"
    if hint:
        msg += f" (did you mean '{table[hint[0]].name}'?)"
    raise ValueError(msg + f"; known: {', '.join(v.name for v in table.values())}")


def get_gpu(gpu: str | GPU) -> GPU:
    """A GPU by catalogue name (case-insensitive), or the object itself."""
    if isinstance(gpu, GPU):
        return gpu
    if not isinstance(gpu, str):
        raise ValueError(f"gpu: expected a name or a GPU, got {type(gpu).__name__}")
    return _lookup(_GPUS, gpu, "gpu")


def get_model(model: str | ModelSpec) -> ModelSpec:
    """A model by catalogue name or alias (case-insensitive), or the object itself."""
    if isinstance(model, ModelSpec):
        return model
    if not isinstance(model, str):
        raise ValueError(f"model: expected a name or a ModelSpec, got {type(model).__name__}")
    key = _ALIASES.get(model.lower(), model)
    return _lookup(_MODELS, key, "model")


def gpus() -> list[GPU]:
    """All catalogue GPUs."""
    return list(_GPUS.values())


def models() -> list[ModelSpec]:
    """All catalogue models."""
    return list(_MODELS.values())


# --- GPUs: dense BF16 tensor TFLOP/s (no sparsity), HBM, per-direction link bandwidth, TDP.
for _g in (
    GPU("A100", 312.0, 80.0, 2.039, 300.0, 400.0, 55.0, "NVIDIA A100 80GB SXM"),
    GPU("H100", 989.0, 80.0, 3.35, 450.0, 700.0, 75.0, "NVIDIA H100 SXM5 80GB"),
    GPU("H200", 989.0, 141.0, 4.8, 450.0, 700.0, 75.0, "NVIDIA H200 SXM 141GB"),
    GPU("B200", 2250.0, 180.0, 8.0, 900.0, 1000.0, 140.0, "NVIDIA B200 (HGX/DGX B200, 180GB)"),
    GPU("L40S", 362.0, 48.0, 0.864, 32.0, 350.0, 35.0, "NVIDIA L40S (PCIe Gen4 x16, no NVLink)"),
    GPU("MI300X", 1307.0, 192.0, 5.3, 448.0, 750.0, 90.0, "AMD Instinct MI300X OAM"),
):
    register_gpu(_g)

# --- Models.
for _m in (
    ModelSpec(
        "llama-3.1-8b",
        8.03,
        32,
        4096,
        32,
        8,
        128,
        source="meta-llama/Llama-3.1-8B config.json",
        aliases=("llama-8b", "8b"),
    ),
    ModelSpec(
        "llama-3.1-70b",
        70.6,
        80,
        8192,
        64,
        8,
        128,
        source="meta-llama/Llama-3.1-70B config.json (Llama 3.3 70B has the same shape)",
        aliases=("llama-70b", "70b", "llama-3.3-70b"),
    ),
    ModelSpec(
        "llama-3.1-405b",
        405.9,
        126,
        16384,
        128,
        8,
        128,
        source="meta-llama/Llama-3.1-405B config.json",
        aliases=("llama-405b", "405b"),
    ),
    ModelSpec(
        "mixtral-8x7b",
        46.7,
        32,
        4096,
        32,
        8,
        128,
        active_params_b=12.9,
        experts=8,
        experts_per_token=2,
        expert_params_b=45.1,
        source="mistralai/Mixtral-8x7B-v0.1 config.json; total vs active from the Mixtral paper",
        aliases=("mixtral",),
    ),
    ModelSpec(
        # Mamba: 64 layers, d_model 2560, d_inner 5120 (expand 2), d_state 16, d_conv 4. The
        # recurrent state per sequence is layers * d_inner * (d_state + d_conv) * 2 bytes and
        # does not grow with context. heads = d_inner / 64 only fixes tensor-parallel splits.
        "mamba-2.8b",
        2.77,
        64,
        2560,
        80,
        0,
        64,
        ssm_state_bytes=64 * 5120 * (16 + 4) * 2.0,
        source="state-spaces/mamba-2.8b config.json",
        aliases=("mamba",),
    ),
    ModelSpec(
        # LLaVA-1.5-7B: Vicuna-7B (Llama-2 shape, full multi-head KV) + CLIP ViT-L/14-336
        # (0.30B) whose 576 patch tokens are added to every prompt.
        "llava-1.5-7b",
        7.06,
        32,
        4096,
        32,
        32,
        128,
        image_tokens=576,
        vision_params_b=0.30,
        source="liuhaotian/llava-v1.5-7b config.json; CLIP ViT-L/14-336",
        aliases=("llava",),
    ),
):
    register_model(_m)
