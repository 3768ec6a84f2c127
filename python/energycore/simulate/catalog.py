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
        Static power, W: the draw of a serving GPU with its clocks up and no kernel running,
        the floor of the simulator's power curve. Fitted on ML.ENERGY v3 for H100 and B200
        (:func:`energycore.simulate.calibration.tune_static_power`); an estimate elsewhere (no
        vendor figure).
    description : str
        Full product name.
    fp8_tflops : float
        Peak dense FP8 tensor throughput, TFLOP/s; 0 for a GPU without FP8 tensor cores (an
        FP8 checkpoint then computes at the BF16 rate, weights dequantised on the fly).
    fp32_tflops : float
        Peak non-tensor (CUDA-core / vector) FP32 throughput, TFLOP/s: the rate of element-wise
        work such as dequantising block-scaled FP8 weights; 0 means ``tflops / 15``.
    """

    name: str
    tflops: float
    hbm_gb: float
    hbm_tbps: float
    link_gbps: float
    tdp_w: float
    idle_w: float
    description: str = ""
    fp8_tflops: float = 0.0
    fp32_tflops: float = 0.0

    def __post_init__(self) -> None:
        for f in ("tflops", "hbm_gb", "hbm_tbps", "link_gbps", "tdp_w"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and v > 0 and v == v and v != float("inf")):
                raise ValueError(f"GPU '{self.name}': '{f}' must be a positive number, got {v!r}")
        if not (self.fp8_tflops >= 0 and self.fp8_tflops == self.fp8_tflops):
            raise ValueError(
                f"GPU '{self.name}': 'fp8_tflops' must be >= 0, got {self.fp8_tflops!r}"
            )
        if not (self.fp32_tflops >= 0 and self.fp32_tflops == self.fp32_tflops):
            raise ValueError(
                f"GPU '{self.name}': 'fp32_tflops' must be >= 0, got {self.fp32_tflops!r}"
            )
        if not (0 <= self.idle_w < self.tdp_w):
            raise ValueError(
                f"GPU '{self.name}': 'idle_w' must lie in [0, tdp_w), got {self.idle_w!r}"
            )

    def peak_tflops(self, compute_dtype: str) -> float:
        """Peak dense tensor TFLOP/s for ``"bf16"`` or ``"fp8"`` matrix products."""
        if compute_dtype == "fp8" and self.fp8_tflops > 0:
            return self.fp8_tflops
        return self.tflops

    @property
    def vector_tflops(self) -> float:
        """Non-tensor FP32 TFLOP/s (``fp32_tflops``, or ``tflops / 15`` when not given)."""
        return self.fp32_tflops if self.fp32_tflops > 0 else self.tflops / 15.0

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
        2 for bf16 weights, 1 for fp8, the checkpoint's average for mixed formats (mxfp4).
    attention_layers : int or None
        Layers with a KV cache; ``None`` means every layer (a transformer) or none (a model
        without KV heads). A hybrid (Mamba-Transformer) has a few attention layers and a
        recurrent state (``ssm_state_bytes``) for the others.
    window : int
        Sliding-window (local-attention) span in tokens of the ``window_layers`` (0: none).
        Those layers keep and read at most ``window`` tokens of KV cache per sequence.
    window_layers : int
        How many of the attention layers are local (sliding-window or chunked attention).
    compute_dtype : str
        ``"bf16"`` or ``"fp8"``: the precision of the matrix products (fp8 checkpoints served
        W8A8 use the GPU's FP8 tensor rate, see :meth:`GPU.peak_tflops`).
    fp8_block : int
        Block size of block-wise (fine-grained) FP8 weight scaling, e.g. 128 for a
        ``weight_block_size: [128, 128]`` checkpoint; 0 for per-tensor / per-channel scales.
        Block-scaled weights are dequantised tile by tile on the vector units
        (:attr:`Efficiency.fp8_block_ops_per_byte`).
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
    attention_layers: int | None = None
    window: int = 0
    window_layers: int = 0
    compute_dtype: str = "bf16"
    fp8_block: int = 0
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
        if self.attention_layers is not None and not (0 <= self.attention_layers <= self.layers):
            raise ValueError(
                f"model '{self.name}': 'attention_layers' must lie in [0, layers], "
                f"got {self.attention_layers}"
            )
        if self.window < 0 or not (0 <= self.window_layers <= self.n_attention_layers):
            raise ValueError(
                f"model '{self.name}': 'window' must be >= 0 and 'window_layers' lie in "
                f"[0, attention layers], got {self.window}, {self.window_layers}"
            )
        if self.window_layers and not self.window:
            raise ValueError(f"model '{self.name}': 'window_layers' needs a 'window' > 0")
        if self.compute_dtype not in ("bf16", "fp8"):
            raise ValueError(
                f"model '{self.name}': 'compute_dtype' must be 'bf16' or 'fp8', "
                f"got {self.compute_dtype!r}"
            )
        if self.fp8_block < 0 or (self.fp8_block and self.compute_dtype != "fp8"):
            raise ValueError(
                f"model '{self.name}': 'fp8_block' must be 0, or > 0 with compute_dtype 'fp8', "
                f"got {self.fp8_block!r}"
            )

    @property
    def active_b(self) -> float:
        """Parameters used per token, billions."""
        return self.params_b if self.active_params_b is None else self.active_params_b

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights."""
        return self.params_b * 1e9 * self.bytes_per_param

    @property
    def n_attention_layers(self) -> int:
        """Layers that keep a KV cache."""
        if self.attention_layers is not None:
            return self.attention_layers
        return self.layers if self.kv_heads else 0

    @property
    def kv_bytes_per_token_layer(self) -> float:
        """KV-cache bytes per token of context in one attention layer (bf16 cache)."""
        return 2.0 * self.kv_heads * self.head_dim * 2.0

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token of context over the full-attention layers (bf16 cache);
        the local layers add at most ``window`` tokens each (see :meth:`kv_bytes`)."""
        return (self.n_attention_layers - self.window_layers) * self.kv_bytes_per_token_layer

    def kv_bytes(self, context: Any) -> Any:
        """Bytes one sequence holds at ``context`` tokens: KV cache of the full and the local
        attention layers plus the recurrent state (works on numpy arrays)."""
        full = self.kv_bytes_per_token * context
        if self.window_layers:
            local = self.window_layers * self.kv_bytes_per_token_layer
            full = full + local * (context - (context - self.window) * (context > self.window))
        return full + self.ssm_state_bytes

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


# --- GPUs: dense BF16 tensor TFLOP/s (no sparsity), HBM, per-direction link bandwidth, TDP, idle
# (estimate), description, dense FP8 TFLOP/s. Sources per figure in docs/simulator.md.
for _g in (
    GPU("A100", 312.0, 80.0, 2.039, 300.0, 400.0, 55.0, "NVIDIA A100 80GB SXM4", fp32_tflops=19.5),
    GPU(
        "A100-40GB",
        312.0,
        40.0,
        1.555,
        300.0,
        400.0,
        50.0,
        "NVIDIA A100 40GB SXM4 (HBM2)",
        fp32_tflops=19.5,
    ),
    GPU(
        "A100-PCIe",
        312.0,
        80.0,
        1.935,
        32.0,
        300.0,
        45.0,
        "NVIDIA A100 80GB PCIe (no NVLink bridge: PCIe Gen4 x16 between GPUs)",
        fp32_tflops=19.5,
    ),
    GPU("H100", 989.0, 80.0, 3.35, 450.0, 700.0, 70.0, "NVIDIA H100 SXM5 80GB", 1979.0, 67.0),
    GPU("H200", 989.0, 141.0, 4.8, 450.0, 700.0, 75.0, "NVIDIA H200 SXM 141GB", 1979.0, 67.0),
    GPU(
        "B200",
        2250.0,
        180.0,
        8.0,
        900.0,
        1000.0,
        305.0,  # static power calibrated on ML.ENERGY v3 (docs/simulator.md)
        "NVIDIA B200 (HGX/DGX B200, 180GB)",
        4500.0,
        75.0,
    ),
    GPU(
        "L40S",
        362.0,
        48.0,
        0.864,
        32.0,
        350.0,
        35.0,
        "NVIDIA L40S (PCIe Gen4 x16, no NVLink)",
        733.0,
        91.6,
    ),
    GPU(
        "MI300X",
        1307.0,
        192.0,
        5.3,
        448.0,
        750.0,
        90.0,
        "AMD Instinct MI300X OAM",
        2615.0,
        163.4,
    ),
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
    ModelSpec(
        "llama-3.1-405b-fp8",
        405.9,
        126,
        16384,
        128,
        8,
        128,
        bytes_per_param=1.0,
        compute_dtype="fp8",
        source="meta-llama/Llama-3.1-405B-Instruct-FP8 config.json (same shape, FP8 W8A8)",
        aliases=("405b-fp8",),
    ),
    # --- Qwen3 dense (Qwen/Qwen3-*/config.json: num_hidden_layers, hidden_size,
    # num_attention_heads, num_key_value_heads, head_dim 128; totals from the model cards).
    ModelSpec("qwen3-8b", 8.19, 36, 4096, 32, 8, 128, source="Qwen/Qwen3-8B config.json"),
    ModelSpec("qwen3-14b", 14.8, 40, 5120, 40, 8, 128, source="Qwen/Qwen3-14B config.json"),
    ModelSpec("qwen3-32b", 32.8, 64, 5120, 64, 8, 128, source="Qwen/Qwen3-32B config.json"),
    # --- Gemma 3 (google/gemma-3-*-it config.json, text_config): sliding window 1024 on five
    # of every six layers (sliding_window_pattern 6). Weights include the 0.4 B SigLIP encoder.
    ModelSpec(
        "gemma-3-12b",
        12.2,
        48,
        3840,
        16,
        8,
        256,
        window=1024,
        window_layers=40,
        source="google/gemma-3-12b-it config.json (48 layers, 8 global)",
    ),
    ModelSpec(
        "gemma-3-27b",
        27.4,
        62,
        5376,
        32,
        16,
        128,
        window=1024,
        window_layers=52,
        source="google/gemma-3-27b-it config.json (62 layers, 10 global)",
    ),
    # --- Qwen3 MoE (config.json: num_experts, num_experts_per_tok, moe_intermediate_size;
    # expert parameters = layers * experts * 3 * hidden * moe_intermediate_size).
    ModelSpec(
        "qwen3-30b-a3b",
        30.5,
        48,
        2048,
        32,
        4,
        128,
        active_params_b=3.3,
        experts=128,
        experts_per_token=8,
        expert_params_b=48 * 128 * 3 * 2048 * 768 / 1e9,
        source="Qwen/Qwen3-30B-A3B-Instruct-2507 config.json (also -Thinking-2507, Coder-30B-A3B)",
        aliases=("qwen3-coder-30b-a3b",),
    ),
    ModelSpec(
        "qwen3-235b-a22b",
        235.1,
        94,
        4096,
        64,
        4,
        128,
        active_params_b=22.2,
        experts=128,
        experts_per_token=8,
        expert_params_b=94 * 128 * 3 * 4096 * 1536 / 1e9,
        source="Qwen/Qwen3-235B-A22B-Instruct-2507 config.json (also -Thinking-2507)",
    ),
    ModelSpec(
        "qwen3-235b-a22b-fp8",
        235.1,
        94,
        4096,
        64,
        4,
        128,
        active_params_b=22.2,
        experts=128,
        experts_per_token=8,
        expert_params_b=94 * 128 * 3 * 4096 * 1536 / 1e9,
        bytes_per_param=1.0,
        compute_dtype="fp8",
        fp8_block=128,
        source="Qwen/Qwen3-235B-A22B-Instruct-2507-FP8 config.json (FP8, weight_block_size 128x128)",
    ),
    ModelSpec(
        "qwen3-coder-480b-a35b",
        480.2,
        62,
        6144,
        96,
        8,
        128,
        active_params_b=35.0,
        experts=160,
        experts_per_token=8,
        expert_params_b=62 * 160 * 3 * 6144 * 2560 / 1e9,
        source="Qwen/Qwen3-Coder-480B-A35B-Instruct config.json",
    ),
    ModelSpec(
        "qwen3-coder-480b-a35b-fp8",
        480.2,
        62,
        6144,
        96,
        8,
        128,
        active_params_b=35.0,
        experts=160,
        experts_per_token=8,
        expert_params_b=62 * 160 * 3 * 6144 * 2560 / 1e9,
        bytes_per_param=1.0,
        compute_dtype="fp8",
        fp8_block=128,
        source="Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8 config.json (FP8, weight_block_size 128x128)",
    ),
    # --- Llama 4 Scout: 16 routed experts (top-1) plus a shared expert in all 48 layers;
    # chunked local attention (8192) on three of every four layers.
    ModelSpec(
        "llama-4-scout-17b-16e",
        109.0,
        48,
        5120,
        40,
        8,
        128,
        active_params_b=17.0,
        experts=16,
        experts_per_token=1,
        expert_params_b=48 * 16 * 3 * 5120 * 8192 / 1e9,
        window=8192,
        window_layers=36,
        source="meta-llama/Llama-4-Scout-17B-16E-Instruct config.json (text_config)",
        aliases=("llama-4-scout",),
    ),
    # --- GPT-OSS: MoE with MXFP4 experts (bytes_per_param is the checkpoint average: 65 GB
    # for 116.8 B, 12.8 GB for 20.9 B), alternating 128-token sliding-window layers.
    ModelSpec(
        "gpt-oss-120b",
        116.8,
        36,
        2880,
        64,
        8,
        64,
        active_params_b=5.1,
        experts=128,
        experts_per_token=4,
        expert_params_b=36 * 128 * 3 * 2880 * 2880 / 1e9,
        bytes_per_param=65.0 / 116.8,
        window=128,
        window_layers=18,
        source="openai/gpt-oss-120b config.json and model card",
    ),
    ModelSpec(
        "gpt-oss-20b",
        20.9,
        24,
        2880,
        64,
        8,
        64,
        active_params_b=3.6,
        experts=32,
        experts_per_token=4,
        expert_params_b=24 * 32 * 3 * 2880 * 2880 / 1e9,
        bytes_per_param=12.8 / 20.9,
        window=128,
        window_layers=12,
        source="openai/gpt-oss-20b config.json and model card",
    ),
    # --- Nemotron Nano v2: Mamba-2 / attention hybrids (hybrid_override_pattern: 4 of 56,
    # 6 of 62 layers attention). Recurrent state per Mamba layer: mamba_num_heads 128 x
    # mamba_head_dim 80 x ssm_state_size 128, plus the conv state, bf16.
    ModelSpec(
        "nemotron-nano-9b-v2",
        8.9,
        56,
        4480,
        40,
        8,
        128,
        attention_layers=4,
        ssm_state_bytes=27 * (128 * 80 * 128 + (10240 + 2 * 8 * 128) * 3) * 2.0,
        source="nvidia/NVIDIA-Nemotron-Nano-9B-v2 config.json",
    ),
    ModelSpec(
        "nemotron-nano-12b-v2",
        12.3,
        62,
        5120,
        40,
        8,
        128,
        attention_layers=6,
        ssm_state_bytes=28 * (128 * 80 * 128 + (10240 + 2 * 8 * 128) * 3) * 2.0,
        source="nvidia/NVIDIA-Nemotron-Nano-12B-v2 config.json",
    ),
):
    register_model(_m)
