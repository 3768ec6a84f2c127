"""The physics of one inference node: roofline prefill and decode, parallelism, power, energy.

Everything is vectorised in numpy over arrays of configurations (``tp``, ``pp``, ``batch``,
``input_len``, ``output_len``); one GPU type and one model per call. The structure is a soft
roofline with micro-batched pipelines, MoE expert coverage, a KV cache read at every decode step
(integrated over the growing context by quadrature), a vLLM-style paged KV cache whose capacity
limits the running batch (the rest queue), and a power curve in which memory traffic and compute
utilisation draw separately (so power rises with the batch, as measured), capped at TDP. It is
deliberately NOT the closed form of the energy model, so that fitting it is a test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from energycore.simulate.catalog import GPU, ModelSpec

FloatArray = npt.NDArray[np.float64]

#: Columns every simulation returns (besides ``valid`` and ``reason``).
OUTPUT_COLUMNS: tuple[str, ...] = (
    "energy_j",
    "energy_prefill_j",
    "energy_decode_j",
    "energy_per_request_j",
    "energy_per_token_j",
    "latency_s",
    "ttft_s",
    "tpot_s",
    "avg_power_w",
    "throughput_tok_s",
    "n_gpus",
    "mem_per_gpu_gb",
    "running_batch",
)


#: Tokens of one prefill chunk, for the activation memory.
PREFILL_CHUNK = 16384.0


@dataclass(frozen=True)
class Efficiency:
    """The free factors of the simulator: how far real serving stays from the datasheet.

    They are the same for every GPU and model. The defaults are the calibrated values: tuned
    once with :func:`energycore.simulate.calibration.tune` against the ML.ENERGY measurements
    (see ``docs/simulator.md``) and rounded; a GPU that was not calibrated on transfers through
    its spec figures alone.

    Attributes
    ----------
    compute : float
        Achieved fraction of peak FLOP/s on large matrix products.
    gemm_half_tokens : float
        Tokens per forward pass at which matrix-product efficiency is half of ``compute``.
    bandwidth : float
        Achieved fraction of peak memory bandwidth.
    link : float
        Achieved fraction of peak GPU-to-GPU bandwidth.
    roofline_sharpness : float
        Exponent p of the soft roofline ``t = (t_compute^p + t_memory^p)^(1/p)``.
    layer_overhead_s : float
        Kernel-launch and synchronisation time per layer per forward pass.
    step_overhead_s : float
        Host time per forward pass (scheduling, sampling) independent of the batch.
    host_s_per_seq : float
        Host time per sequence per decode step (scheduler and detokeniser bookkeeping).
    allreduce_latency_s, p2p_latency_s : float
        Latency of one all-reduce / one point-to-point transfer.
    power_compute, power_memory : float
        Dynamic power per unit of compute utilisation (achieved / peak FLOP/s, raised to
        ``power_exponent``) and per unit of memory utilisation (achieved / peak bandwidth), as
        fractions of the dynamic range ``TDP - idle``.
    power_exponent : float
        Curvature of dynamic power in compute utilisation (< 1: the first tensor-core work
        costs most, clocks and SMs wake up before they are busy).
    wait_power : float
        Fraction of the dynamic range drawn while the GPU waits for the host or in pipeline
        bubbles (clocks up, no kernels).
    comm_power : float
        Fraction of the dynamic range drawn during collectives (all-reduce, all-to-all,
        point-to-point): copy engines and a few SMs busy, tensor cores and most of HBM idle.
    ep_skew : float
        Over-dispersion of expert routing relative to uniformly random routing (1: uniform).
        Scales the spread of the per-GPU expert load under expert parallelism, so the busiest
        GPU, which every MoE layer waits for, carries ``mean + ep_skew * z(ep) * sd``.
    a2a_latency_s : float
        Latency per synchronisation round of one expert-parallel all-to-all (dispatch or
        combine); an all-to-all over ``ep`` GPUs takes ``log2(ep)`` rounds (0 for one GPU).
    moe_layer_overhead_s : float
        Extra launch time of an MoE layer per forward pass (router, top-k, token permutation
        and un-permutation kernels around the grouped expert GEMMs).
    fp8_block_ops_per_byte : float
        Vector (non-tensor) operations per weight byte to dequantise block-scaled FP8 weights
        (:attr:`ModelSpec.fp8_block`) inside the GEMMs: scale loads, conversion and rescaling
        on the CUDA cores, at the GPU's :attr:`GPU.vector_tflops`.
    memory_fraction : float
        Fraction of GPU memory the engine may use for weights, KV cache and activations
        (vLLM's ``gpu_memory_utilization``, default 0.9).
    """

    compute: float = 1.0
    gemm_half_tokens: float = 48.0
    bandwidth: float = 0.81
    link: float = 0.7
    roofline_sharpness: float = 3.0
    layer_overhead_s: float = 10e-6
    step_overhead_s: float = 2.0e-3
    host_s_per_seq: float = 54e-6
    allreduce_latency_s: float = 8e-6
    p2p_latency_s: float = 12e-6
    power_compute: float = 1.27
    power_memory: float = 0.62
    power_exponent: float = 0.59
    wait_power: float = 0.70
    comm_power: float = 0.24
    ep_skew: float = 0.76
    a2a_latency_s: float = 21e-6
    moe_layer_overhead_s: float = 16e-6
    fp8_block_ops_per_byte: float = 26.0
    memory_fraction: float = 0.9

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ValueError(f"Efficiency: '{name}' must be a finite non-negative number")
        for name in ("compute", "bandwidth", "link", "memory_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"Efficiency: '{name}' must lie in (0, 1]")

    def replace(self, **changes: float) -> Efficiency:
        """A copy with some factors changed."""
        return replace(self, **changes)


#: Quadrature nodes over the decode phase (context grows from the prompt to prompt + output).
_DECODE_NODES = (np.arange(8, dtype=np.float64) + 0.5) / 8.0


def _broadcast(**cols: Any) -> dict[str, FloatArray]:
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in cols.values()))
    return {k: np.ascontiguousarray(a).reshape(-1) for k, a in zip(cols, arrays, strict=True)}


def _per_gpu_seq_bytes(model: ModelSpec, ctx: Any, tp: Any, pp: Any) -> Any:
    """Bytes one sequence holds on one GPU at ``ctx`` tokens: the KV cache split over the
    pipeline stages and ``min(tp, kv_heads)`` (KV heads are replicated beyond that), the
    recurrent state of a state-space / hybrid model split over ``tp * pp``."""
    state = model.ssm_state_bytes / (tp * pp)
    if not model.n_attention_layers:
        return state + 0.0 * ctx
    kv = model.kv_bytes(ctx) - model.ssm_state_bytes
    return kv / (pp * np.minimum(tp, model.kv_heads)) + state


def _fixed_bytes(model: ModelSpec, tp: Any, pp: Any) -> Any:
    """Bytes per GPU that do not depend on the batch: the weight shard and the activation
    workspace the engine reserves for one prefill chunk of :data:`PREFILL_CHUNK` tokens (a few
    hidden-size buffers per token), plus 1 GB (CUDA context, graphs)."""
    return model.weight_bytes / (tp * pp) + 1e9 + 8.0 * PREFILL_CHUNK * model.hidden * 2.0 / tp


def kv_capacity(
    gpu: GPU,
    model: ModelSpec,
    tp: FloatArray,
    pp: FloatArray,
    input_len: FloatArray,
    output_len: FloatArray,
    eff: Efficiency,
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """The paged-KV-cache memory rule of a serving engine (vLLM).

    The engine takes ``memory_fraction`` of the GPU, loads the weight shard, reserves the
    activation workspace and gives the rest to the KV cache in pages. A sequence holds the
    pages of the tokens it has so far; under continuous batching it holds on average its prompt
    plus half its output. Returns ``(fits, max_running, free_bytes)``: ``fits`` is whether one
    sequence of full length (prompt + output) fits next to the weights (else the engine refuses
    to start), ``max_running`` how many sequences the cache holds at once (a larger batch
    queues: it runs in waves of ``max_running``), ``free_bytes`` the cache per GPU.
    """
    prompt = input_len + model.image_tokens
    free = gpu.hbm_gb * 1e9 * eff.memory_fraction - _fixed_bytes(model, tp, pp)
    full = _per_gpu_seq_bytes(model, prompt + output_len, tp, pp)
    live = _per_gpu_seq_bytes(model, prompt + 0.5 * output_len, tp, pp)
    fits = free >= full
    max_running = np.maximum(np.floor(np.maximum(free, 0.0) / live), 1.0)
    return fits, max_running, free


def _texts(values: FloatArray, fmt: Any) -> npt.NDArray[np.object_]:
    """``fmt(v)`` for every value, formatting each distinct value once (100k rows stay fast)."""
    uniq, inv = np.unique(values, return_inverse=True)
    return np.array([fmt(v) for v in uniq], dtype=object)[inv.reshape(-1)]


def check_validity(
    gpu: GPU,
    model: ModelSpec,
    n_gpus: int,
    tp: FloatArray,
    pp: FloatArray,
    batch: FloatArray,
    input_len: FloatArray,
    output_len: FloatArray,
    eff: Efficiency,
    ep: FloatArray | None = None,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.object_], FloatArray]:
    """Which configurations the node can run, the reason for each that it cannot, memory/GPU.

    Memory follows :func:`kv_capacity`: a configuration is refused only when the weights and
    one full-length sequence do not fit; a batch larger than the cache holds queues.
    Returns ``(valid, reason, mem_per_gpu_gb)``; ``reason`` is ``""`` for valid rows.
    """
    n = len(tp)
    reason = np.full(n, "", dtype=object)
    taken = np.zeros(n, dtype=bool)

    def flag(mask: npt.NDArray[np.bool_], text: Any) -> None:
        free = mask & ~taken
        if free.any():
            texts = text(free) if callable(text) else np.full(int(free.sum()), text, dtype=object)
            reason[free] = texts
            taken[free] = True

    n_par = tp * pp
    flag(
        n_par > n_gpus,
        lambda m: _texts(n_par[m], lambda v: f"tp*pp={int(v)} exceeds the node's {n_gpus} GPUs"),
    )
    flag(
        np.mod(model.heads, tp) != 0,
        lambda m: _texts(
            tp[m], lambda v: f"tp={int(v)} does not divide the {model.heads} attention heads"
        ),
    )
    if model.kv_heads:
        kv_ok = (np.mod(model.kv_heads, tp) == 0) | (np.mod(tp, model.kv_heads) == 0)
        flag(
            ~kv_ok,
            lambda m: [
                f"tp={int(v)} and the {model.kv_heads} KV heads: neither divides the other"
                for v in tp[m]
            ],
        )
    flag(
        np.mod(model.layers, pp) != 0,
        lambda m: [f"pp={int(v)} does not divide the {model.layers} layers" for v in pp[m]],
    )
    if ep is not None:
        flag(
            (ep > 1) & (model.experts == 0),
            lambda m: [f"ep={int(v)}: '{model.name}' has no experts" for v in ep[m]],
        )
        flag(
            (ep > 1) & (ep != tp),
            lambda m: [
                f"ep={int(e)} must equal tp={int(t)} (experts spread over the attention's "
                "tensor-parallel group)"
                for e, t in zip(ep[m], tp[m], strict=True)
            ],
        )
        if model.experts:
            flag(
                (ep > 1) & (np.mod(model.experts, ep) != 0),
                lambda m: [
                    f"ep={int(v)} does not divide the {model.experts} experts" for v in ep[m]
                ],
            )
    fits, max_running, _ = kv_capacity(gpu, model, tp, pp, input_len, output_len, eff)
    fixed = _fixed_bytes(model, tp, pp)
    prompt = input_len + model.image_tokens
    need = fixed + _per_gpu_seq_bytes(model, prompt + output_len, tp, pp)
    cap = gpu.hbm_gb * 1e9 * eff.memory_fraction
    flag(
        ~fits,
        lambda m: _texts(
            np.round(need[m] / 1e8),
            lambda v: (
                f"does not fit in memory: the weights and one sequence need {v / 10:.1f} "
                f"GB per GPU, {cap / 1e9:.1f} GB usable on {gpu.name}"
            ),
        ),
    )
    running = np.minimum(batch, max_running)
    mem = fixed + running * _per_gpu_seq_bytes(model, prompt + 0.5 * output_len, tp, pp)
    return ~taken, reason, mem / 1e9


def memory_constraint(gpu: GPU, model: ModelSpec, memory_fraction: float) -> str:
    """The memory rule of :func:`kv_capacity` as one ``ConfigSpace`` constraint expression in
    GB over ``tp``, ``pp``, ``input_len`` and ``output_len`` (numbers from the catalogue), so an
    engine can enumerate exactly what the node runs."""
    img = model.image_tokens
    ctx = f"(input_len + {img} + output_len)"
    terms = [f"{model.weight_bytes / 1e9!r} / (tp * pp)"]
    terms.append(f"1 + {8.0 * PREFILL_CHUNK * model.hidden * 2.0 / 1e9!r} / tp")
    if model.n_attention_layers:
        kv = model.kv_heads
        split = f"(pp * min(tp, {kv}))"
        if model.kv_bytes_per_token:
            terms.append(f"{model.kv_bytes_per_token / 1e9!r} * {ctx} / {split}")
        if model.window_layers:
            local = model.window_layers * model.kv_bytes_per_token_layer / 1e9
            terms.append(f"{local!r} * min({ctx}, {model.window}) / {split}")
    if model.ssm_state_bytes:
        terms.append(f"{model.ssm_state_bytes / 1e9!r} / (pp * tp)")
    return " + ".join(terms) + f" <= {gpu.hbm_gb * memory_fraction!r}"


def memory_per_gpu(
    model: ModelSpec,
    tp: FloatArray,
    pp: FloatArray,
    batch: FloatArray,
    input_len: FloatArray,
    output_len: FloatArray,
) -> FloatArray:
    """Bytes per GPU of ``batch`` running sequences at their mean live context (prompt + half
    the output), next to the weight shard and the activation workspace."""
    prompt = input_len + model.image_tokens
    live = _per_gpu_seq_bytes(model, prompt + 0.5 * output_len, tp, pp)
    return _fixed_bytes(model, tp, pp) + batch * live


def _attn_span(model: ModelSpec, ctx: Any) -> Any:
    """Context tokens attended per token, summed over the attention layers (local layers
    see at most ``window`` tokens)."""
    full = (model.n_attention_layers - model.window_layers) * ctx
    if model.window_layers:
        full = full + model.window_layers * np.minimum(ctx, model.window)
    return full


#: Expected maximum of n independent standard normal variables, n = 1, 2, 4, ..., 64 (the
#: busiest of ``ep`` GPUs under random expert routing), interpolated in log2(n).
_MAX_NORMAL_Z = np.array([0.0, 0.5642, 1.0294, 1.4236, 1.7660, 2.0727, 2.3537])


def _z_max(ep: FloatArray) -> FloatArray:
    """Expected maximum of ``ep`` standard normals (0 for one GPU)."""
    return np.interp(np.log2(np.maximum(ep, 1.0)), np.arange(7.0), _MAX_NORMAL_Z)


class _Moe:
    """Per-pass MoE loads on one GPU: weight bytes read and expert FLOPs, mean and busiest.

    With experts sharded (``ep = 1``) every GPU reads the same slice of every touched expert:
    no imbalance. With expert parallelism each GPU holds ``E / ep`` whole experts; under
    routing of ``tokens * k`` assignments the number of its experts touched and of tokens it
    computes vary between GPUs, and every layer waits for the busiest (normal approximation
    of the binomial maximum, spread scaled by ``ep_skew``).
    """

    def __init__(
        self, model: ModelSpec, eff: Efficiency, n: FloatArray, ep: FloatArray, tokens: FloatArray
    ) -> None:
        e, k = float(model.experts), float(model.experts_per_token)
        bpp = model.bytes_per_param
        dense_params = (model.params_b - model.expert_params_b) * 1e9
        routed = max(model.active_b * 1e9 - dense_params, 0.0)
        p = 1.0 - (1.0 - k / e) ** tokens  # probability an expert is touched
        z = eff.ep_skew * _z_max(ep)
        local = e / ep  # experts per GPU
        frac_max = np.minimum(1.0, p + z * np.sqrt(p * (1.0 - p) / local))
        assign = tokens * k / ep  # token-expert assignments per GPU, mean
        tok_max = assign + z * np.sqrt(assign * (1.0 - 1.0 / ep))
        ebytes = model.expert_params_b * 1e9 * bpp
        self.bytes_mean = (dense_params * bpp + p * ebytes) / n
        self.bytes_max = (dense_params * bpp + frac_max * ebytes) / n
        per_assign = 2.0 * routed / k
        self.flops_mean = (tokens * 2.0 * dense_params + assign * ep * per_assign) / n
        self.flops_max = (tokens * 2.0 * dense_params + tok_max * ep * per_assign) / n


def _stage_pass(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    tp: FloatArray,
    pp: FloatArray,
    tokens: FloatArray,
    flops: FloatArray,
    nbytes: FloatArray,
    ep: FloatArray,
    vector_s: Any = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """(work time, communication time) of one micro-batch through one pipeline stage on one
    GPU; ``vector_s`` is CUDA-core time (FP8 dequantisation) inside the GEMMs."""
    m = np.maximum(tokens, 1.0)  # an empty prompt does no work but must not divide by zero
    gemm_eff = eff.compute * m / (m + eff.gemm_half_tokens)
    t_c = flops / (gpu.peak_tflops(model.compute_dtype) * 1e12 * gemm_eff) + vector_s
    t_m = nbytes / (gpu.hbm_tbps * 1e12 * eff.bandwidth)
    p = eff.roofline_sharpness
    if p == 3.0:  # the default: cube and cube root are much faster than a general power
        t_work = np.cbrt(t_c * t_c * t_c + t_m * t_m * t_m)
    else:
        scale = np.maximum(t_c, t_m)
        safe = np.where(scale > 0, scale, 1.0)
        t_work = safe * ((t_c / safe) ** p + (t_m / safe) ** p) ** (1.0 / p)
    layers = model.layers / pp
    launch = eff.layer_overhead_s + (eff.moe_layer_overhead_s if model.experts else 0.0)
    t_work = t_work + layers * launch
    # Two all-reduces per layer (after attention and after the MLP), ring algorithm; under
    # expert parallelism the MLP's is replaced by the all-to-all dispatch and combine.
    link = gpu.link_gbps * 1e9 * eff.link
    ar_bytes = tokens * model.hidden * 2.0
    ring = eff.allreduce_latency_s + 2.0 * (tp - 1.0) / tp * ar_bytes / link
    per_layer = np.where(tp > 1, 2.0 * ring, 0.0)
    if model.experts:
        # Each rank dispatches its 1/ep share of the tokens to the GPUs of their k experts
        # ((ep-1)/ep of the copies leave the GPU) and gets the results back: two all-to-alls.
        a2a_bytes = tokens / ep * model.experts_per_token * model.hidden * 2.0 * (ep - 1.0) / ep
        a2a = eff.a2a_latency_s * np.log2(ep) + a2a_bytes / link
        per_layer = np.where(ep > 1, ring + 2.0 * a2a, per_layer)
    t_comm = layers * per_layer
    return t_work, t_comm


def _p2p(gpu: GPU, model: ModelSpec, eff: Efficiency, tokens: FloatArray) -> FloatArray:
    return eff.p2p_latency_s + tokens * model.hidden * 2.0 / (gpu.link_gbps * 1e9 * eff.link)


def _dequant_s(gpu: GPU, model: ModelSpec, eff: Efficiency, weight_bytes: Any) -> Any:
    """CUDA-core seconds to dequantise ``weight_bytes`` of block-scaled FP8 weights."""
    if not model.fp8_block or not eff.fp8_block_ops_per_byte:
        return 0.0
    return weight_bytes * eff.fp8_block_ops_per_byte / (gpu.vector_tflops * 1e12)


def _power(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    flops: FloatArray,
    nbytes: FloatArray,
    work: FloatArray,
    vector_s: Any = 0.0,
) -> FloatArray:
    """Power of one GPU while it works, W.

    ``idle + (TDP - idle) * min(1, power_memory * u_m + power_compute * u_c ** power_exponent)``
    with ``u_c`` the achieved fraction of peak FLOP/s (plus the fraction of the time the
    vector units dequantise) and ``u_m`` of peak bandwidth over the working time. Memory
    traffic and tensor-core work draw separately, so a memory-bound decode step (small batch)
    draws less than a step that also computes (large batch, prefill).
    """
    w = np.maximum(work, 1e-30)
    u_c = (flops / (gpu.peak_tflops(model.compute_dtype) * 1e12) + vector_s) / w
    u_m = nbytes / (gpu.hbm_tbps * 1e12) / w
    load = eff.power_memory * u_m + eff.power_compute * np.minimum(u_c, 1.0) ** eff.power_exponent
    return gpu.idle_w + (gpu.tdp_w - gpu.idle_w) * np.minimum(1.0, load)


def _prefill(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    tp: FloatArray,
    pp: FloatArray,
    b: FloatArray,
    prompt: FloatArray,
    ep: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """(wall time, energy over all GPUs) of the prefill of one batch."""
    n = tp * pp
    m = np.minimum(b, pp)  # micro-batches: whole requests, at most one per stage
    tok = b * prompt / m
    head = 2.0 * model.heads * model.head_dim
    attn = head * prompt * _attn_span(model, prompt) * (b / m)
    vision = 2.0 * model.vision_params_b * 1e9 * model.image_tokens * (b / m)
    other = (attn + vision) / n
    kv_write = (b / m) * model.kv_bytes(prompt) / n
    w_bytes = model.weight_bytes / n
    if model.experts:
        moe = _Moe(model, eff, n, ep, tok)
        flops_max, flops = moe.flops_max + other, moe.flops_mean + other
        w_max, w_bytes = moe.bytes_max, moe.bytes_mean
    else:
        flops = flops_max = tok * 2.0 * model.active_b * 1e9 / n + other
        w_max = w_bytes
    deq = _dequant_s(gpu, model, eff, w_max)
    t_work, t_comm = _stage_pass(gpu, model, eff, tp, pp, tok, flops_max, w_max + kv_write, ep, deq)
    t_stage = t_work + t_comm
    p2p = (pp - 1.0) * _p2p(gpu, model, eff, tok)
    wall = (m + pp - 1.0) * t_stage + p2p + eff.step_overhead_s
    busy = m * t_work  # each GPU works on every micro-batch once
    comm = m * t_comm + p2p
    energy = _energy(
        gpu, model, eff, n, wall, busy, comm, m * flops, m * (w_bytes + kv_write), m * deq
    )
    return wall, energy


def _energy(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    n: FloatArray,
    wall: FloatArray,
    busy: FloatArray,
    comm: FloatArray,
    flops: FloatArray,
    nbytes: FloatArray,
    vector_s: Any = 0.0,
) -> FloatArray:
    """Joules over all GPUs: working time at utilisation power (over the busiest GPU's time:
    the others finish their share early and wait inside the kernel), communication at the
    collective power, the rest (pipeline bubbles, host time) at the waiting power."""
    p_work = _power(gpu, model, eff, flops, nbytes, busy, vector_s)
    rng = gpu.tdp_w - gpu.idle_w
    p_comm = gpu.idle_w + rng * eff.comm_power
    p_wait = gpu.idle_w + rng * eff.wait_power
    comm = np.minimum(comm, np.maximum(wall - busy, 0.0))
    wait = np.maximum(wall - busy - comm, 0.0)
    return n * (p_work * busy + p_comm * comm + p_wait * wait)


def _decode(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    tp: FloatArray,
    pp: FloatArray,
    b: FloatArray,
    prompt: FloatArray,
    out: FloatArray,
    ep: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """(wall time, energy over all GPUs) of all decode steps of one batch."""
    n = tp * pp
    m = np.minimum(b, pp)
    seqs = b / m  # sequences per micro-batch
    # Weight bytes one micro-batch step reads per GPU: an MoE reads only the experts its
    # tokens touch (the busiest GPU sets the time under expert parallelism).
    if model.experts:
        moe = _Moe(model, eff, n, ep, seqs)
        w_mean, w_max = moe.bytes_mean, moe.bytes_max
        lin_mean, lin_max = moe.flops_mean, moe.flops_max
    else:
        w_mean = w_max = np.full_like(seqs, model.weight_bytes / n)
        lin_mean = lin_max = seqs * 2.0 * model.active_b * 1e9 / n
    deq = _dequant_s(gpu, model, eff, w_max)
    head = 4.0 * model.heads * model.head_dim
    wall = np.zeros_like(b)
    energy = np.zeros_like(b)
    p2p = np.where(pp > 1, pp * _p2p(gpu, model, eff, seqs), 0.0)
    rounds = np.maximum(m, pp)  # a micro-batch needs all stages before its next token
    host = eff.step_overhead_s + eff.host_s_per_seq * b
    for x in _DECODE_NODES:  # quadrature over the growing context
        ctx = prompt + x * out
        # KV cache read (and recurrent state read and written) per micro-batch step per GPU.
        cache = seqs * (_per_gpu_seq_bytes(model, ctx, tp, pp) + model.ssm_state_bytes / (tp * pp))
        attn = seqs * (head * _attn_span(model, ctx) + 5.0 * model.ssm_state_bytes) / n
        t_work, t_comm = _stage_pass(
            gpu, model, eff, tp, pp, seqs, lin_max + attn, w_max + cache, ep, deq
        )
        step = rounds * (t_work + t_comm) + p2p + host
        busy = m * t_work
        wall += step
        energy += _energy(
            gpu,
            model,
            eff,
            n,
            step,
            busy,
            m * t_comm + p2p,
            m * (lin_mean + attn),
            m * (w_mean + cache),
            m * deq,
        )
    scale = out / len(_DECODE_NODES)
    return wall * scale, energy * scale


def run_physics(
    gpu: GPU,
    model: ModelSpec,
    tp: Any,
    pp: Any,
    batch: Any,
    input_len: Any,
    output_len: Any,
    *,
    n_gpus: int,
    eff: Efficiency,
    check_memory: bool = True,
    ep: Any = None,
) -> dict[str, Any]:
    """Noise-free simulation of validated, broadcast arrays; invalid rows hold NaN.

    Inputs are assumed already validated (finite, positive integers where required);
    :class:`energycore.simulate.Node` does that at the public boundary. A batch larger than
    the paged KV cache holds (:func:`kv_capacity`) runs in waves of the running batch
    (``running_batch``): energy and latency add up over the waves, ``tpot_s`` is that of the
    running batch and ``ttft_s`` includes the time the last wave queued. ``ep`` (expert
    parallelism, 1 or ``tp``) puts whole experts on each GPU: the busiest GPU's expert load
    sets each MoE layer's time, and the MLP all-reduce becomes an all-to-all dispatch and
    combine (see :class:`_Moe` and :func:`_stage_pass`). ``check_memory=False``
    ignores the memory rule (nothing is refused or queued).
    """
    c = _broadcast(tp=tp, pp=pp, batch=batch, input_len=input_len, output_len=output_len)
    tp_, pp_, b = c["tp"], c["pp"], c["batch"]
    ep_ = None if ep is None else np.broadcast_to(np.asarray(ep, dtype=np.float64), b.shape)
    valid, reason, mem = check_validity(
        gpu, model, n_gpus, tp_, pp_, b, c["input_len"], c["output_len"], eff, ep_
    )
    if check_memory:
        _, max_running, _ = kv_capacity(gpu, model, tp_, pp_, c["input_len"], c["output_len"], eff)
        run = np.minimum(b, max_running)
    else:
        mem_bad = np.array([str(r).startswith("does not fit") for r in reason], dtype=bool)
        reason = np.where(mem_bad, "", reason).astype(object)
        valid = reason == ""
        run = b
        mem = memory_per_gpu(model, tp_, pp_, b, c["input_len"], c["output_len"]) / 1e9
    waves = b / run
    prompt = c["input_len"] + model.image_tokens
    out_len = c["output_len"]
    ep_run = np.ones_like(b) if ep_ is None else np.where(ep_ > 1, ep_, 1.0)
    t_pf, e_pf = _prefill(gpu, model, eff, tp_, pp_, run, prompt, ep_run)
    t_dec, e_dec = _decode(gpu, model, eff, tp_, pp_, run, prompt, out_len, ep_run)
    tpot = t_dec / np.maximum(out_len, 1.0)
    latency = waves * (t_pf + t_dec)
    res: dict[str, Any] = {
        "energy_prefill_j": waves * e_pf,
        "energy_decode_j": waves * e_dec,
        "energy_j": waves * (e_pf + e_dec),
        "ttft_s": latency - t_dec,
        "tpot_s": tpot,
        "latency_s": latency,
        "n_gpus": tp_ * pp_,
        "mem_per_gpu_gb": mem,
        "running_batch": run,
    }
    _derive(res, b, out_len)
    for k in OUTPUT_COLUMNS:
        if k not in ("n_gpus", "mem_per_gpu_gb", "running_batch"):
            res[k] = np.where(valid, res[k], np.nan)
    res["valid"] = valid
    res["reason"] = reason
    return res


def _derive(res: dict[str, Any], batch: FloatArray, out_len: FloatArray) -> None:
    """Per-request, per-token, power and throughput columns from energy and times."""
    res["energy_per_request_j"] = res["energy_j"] / batch
    res["energy_per_token_j"] = res["energy_j"] / (batch * np.maximum(out_len, 1.0))
    res["avg_power_w"] = res["energy_j"] / res["latency_s"]
    res["throughput_tok_s"] = batch * out_len / res["latency_s"]


def apply_noise(
    res: dict[str, Any],
    batch: FloatArray,
    out_len: FloatArray,
    sigma: float,
    rng: np.random.Generator,
) -> None:
    """Seeded multiplicative (log-normal) measurement noise on energies and times, in place."""
    if sigma <= 0:
        return
    n = len(batch)
    shared = rng.normal(0.0, sigma, n)
    for key in ("energy_prefill_j", "energy_decode_j", "ttft_s", "tpot_s"):
        own = rng.normal(0.0, sigma, n)
        res[key] = res[key] * np.exp(0.5 * shared + own * np.sqrt(0.75))
    res["energy_j"] = res["energy_prefill_j"] + res["energy_decode_j"]
    res["latency_s"] = res["ttft_s"] + res["tpot_s"] * out_len
    _derive(res, batch, out_len)
