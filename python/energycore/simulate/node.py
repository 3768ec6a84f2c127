"""The physics of one inference node: roofline prefill and decode, parallelism, power, energy.

Everything is vectorised in numpy over arrays of configurations (``tp``, ``pp``, ``batch``,
``input_len``, ``output_len``); one GPU type and one model per call. The structure is a soft
roofline with micro-batched pipelines, MoE expert coverage, a KV cache read at every decode step
(integrated over the growing context by quadrature) and a utilisation-driven power curve capped at
TDP. It is deliberately NOT the closed form of the energy model, so that fitting it is a test.
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
        Weights of compute and memory utilisation in the dynamic power draw.
    power_exponent : float
        Curvature of dynamic power in utilisation (1 = linear).
    wait_power : float
        Fraction of the dynamic range drawn while waiting (communication, bubbles, host time).
    memory_fraction : float
        Fraction of GPU memory usable for weights, KV cache and activations.
    """

    compute: float = 0.88
    gemm_half_tokens: float = 48.0
    bandwidth: float = 0.87
    link: float = 0.7
    roofline_sharpness: float = 3.0
    layer_overhead_s: float = 10e-6
    step_overhead_s: float = 1.33e-3
    host_s_per_seq: float = 62e-6
    allreduce_latency_s: float = 8e-6
    p2p_latency_s: float = 12e-6
    power_compute: float = 4.1
    power_memory: float = 5.5
    power_exponent: float = 1.0
    wait_power: float = 0.47
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
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.object_], FloatArray]:
    """Which configurations the node can run, the reason for each that it cannot, memory/GPU.

    Returns ``(valid, reason, mem_per_gpu_gb)``; ``reason`` is ``""`` for valid rows.
    """
    n = len(tp)
    reason = np.full(n, "", dtype=object)

    def flag(mask: npt.NDArray[np.bool_], text: Any) -> None:
        free = mask & (reason == "")
        if free.any():
            texts = text(free) if callable(text) else np.full(int(free.sum()), text, dtype=object)
            reason[free] = texts

    n_par = tp * pp
    flag(
        n_par > n_gpus,
        lambda m: [f"tp*pp={int(v)} exceeds the node's {n_gpus} GPUs" for v in n_par[m]],
    )
    flag(
        np.mod(model.heads, tp) != 0,
        lambda m: [f"tp={int(v)} does not divide the {model.heads} attention heads" for v in tp[m]],
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
    mem = memory_per_gpu(model, tp, pp, batch, input_len, output_len)
    cap = gpu.hbm_gb * 1e9 * eff.memory_fraction
    flag(
        mem > cap,
        lambda m: [
            f"does not fit in memory: needs {v / 1e9:.1f} GB per GPU, "
            f"{cap / 1e9:.1f} GB usable on {gpu.name}"
            for v in mem[m]
        ],
    )
    return reason == "", reason, mem / 1e9


def memory_per_gpu(
    model: ModelSpec,
    tp: FloatArray,
    pp: FloatArray,
    batch: FloatArray,
    input_len: FloatArray,
    output_len: FloatArray,
) -> FloatArray:
    """Bytes per GPU: weight shard, the batch's full KV cache (or recurrent state), activations."""
    prompt = input_len + model.image_tokens
    weights = model.weight_bytes / (tp * pp)
    if model.kv_heads:
        kv_split = np.minimum(tp, model.kv_heads)
        cache = batch * (prompt + output_len) * model.kv_bytes_per_token / (pp * kv_split)
    else:
        cache = batch * model.ssm_state_bytes / (pp * tp)
    # Activation workspace: a few hidden-size buffers per token of a prefill chunk (prefill
    # runs in chunks of at most PREFILL_CHUNK tokens as far as memory goes), plus 1 GB.
    act = 1e9 + 8.0 * np.minimum(batch * prompt, PREFILL_CHUNK) * model.hidden * 2.0 / tp
    return weights + cache + act


def _stage_pass(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    tp: FloatArray,
    pp: FloatArray,
    tokens: FloatArray,
    flops: FloatArray,
    nbytes: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """(work time, communication time) of one micro-batch through one pipeline stage on one GPU."""
    m = np.maximum(tokens, 1.0)  # an empty prompt does no work but must not divide by zero
    gemm_eff = eff.compute * m / (m + eff.gemm_half_tokens)
    t_c = flops / (gpu.tflops * 1e12 * gemm_eff)
    t_m = nbytes / (gpu.hbm_tbps * 1e12 * eff.bandwidth)
    p = eff.roofline_sharpness
    scale = np.maximum(t_c, t_m)
    safe = np.where(scale > 0, scale, 1.0)
    t_work = safe * ((t_c / safe) ** p + (t_m / safe) ** p) ** (1.0 / p)
    layers = model.layers / pp
    t_work = t_work + layers * eff.layer_overhead_s
    # Two all-reduces per layer (after attention and after the MLP), ring algorithm.
    ar_bytes = tokens * model.hidden * 2.0
    ring = 2.0 * (tp - 1.0) / tp * ar_bytes / (gpu.link_gbps * 1e9 * eff.link)
    t_comm = np.where(tp > 1, 2.0 * layers * (eff.allreduce_latency_s + ring), 0.0)
    return t_work, t_comm


def _p2p(gpu: GPU, model: ModelSpec, eff: Efficiency, tokens: FloatArray) -> FloatArray:
    return eff.p2p_latency_s + tokens * model.hidden * 2.0 / (gpu.link_gbps * 1e9 * eff.link)


def _power(
    gpu: GPU, eff: Efficiency, flops: FloatArray, nbytes: FloatArray, work: FloatArray
) -> FloatArray:
    """Power of one GPU while it works: idle + dynamic by utilisation, capped at TDP."""
    w = np.maximum(work, 1e-30)
    u_c = flops / (gpu.tflops * 1e12) / w
    u_m = nbytes / (gpu.hbm_tbps * 1e12) / w
    load = np.minimum(1.0, eff.power_compute * u_c + eff.power_memory * u_m)
    return gpu.idle_w + (gpu.tdp_w - gpu.idle_w) * load**eff.power_exponent


def _prefill(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    tp: FloatArray,
    pp: FloatArray,
    b: FloatArray,
    prompt: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """(wall time, energy over all GPUs) of the prefill of one batch."""
    n = tp * pp
    m = np.minimum(b, pp)  # micro-batches: whole requests, at most one per stage
    tok = b * prompt / m
    attn = 2.0 * model.layers * model.heads * model.head_dim * prompt**2 * (b / m)
    vision = 2.0 * model.vision_params_b * 1e9 * model.image_tokens * (b / m)
    flops = (tok * 2.0 * model.active_b * 1e9 + attn + vision) / n
    kv_write = tok * model.kv_bytes_per_token if model.kv_heads else (b / m) * model.ssm_state_bytes
    nbytes = model.weight_bytes / n + kv_write / n
    t_work, t_comm = _stage_pass(gpu, model, eff, tp, pp, tok, flops, nbytes)
    t_stage = t_work + t_comm
    wall = (m + pp - 1.0) * t_stage + (pp - 1.0) * _p2p(gpu, model, eff, tok) + eff.step_overhead_s
    busy = m * t_work  # each GPU works on every micro-batch once
    energy = _energy(gpu, eff, n, wall, busy, m * flops, m * nbytes)
    return wall, energy


def _energy(
    gpu: GPU,
    eff: Efficiency,
    n: FloatArray,
    wall: FloatArray,
    busy: FloatArray,
    flops: FloatArray,
    nbytes: FloatArray,
) -> FloatArray:
    """Joules over all GPUs: working time at utilisation power, the rest (communication,
    pipeline bubbles, host time) at the waiting power."""
    p_work = _power(gpu, eff, flops, nbytes, busy)
    p_wait = gpu.idle_w + (gpu.tdp_w - gpu.idle_w) * eff.wait_power
    wait = np.maximum(wall - busy, 0.0)
    return n * (p_work * busy + p_wait * wait)


def _decode(
    gpu: GPU,
    model: ModelSpec,
    eff: Efficiency,
    tp: FloatArray,
    pp: FloatArray,
    b: FloatArray,
    prompt: FloatArray,
    out: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """(wall time, energy over all GPUs) of all decode steps of one batch."""
    n = tp * pp
    m = np.minimum(b, pp)
    seqs = b / m  # sequences per micro-batch
    # Weight bytes one micro-batch step reads: an MoE reads only the experts its tokens touch.
    if model.experts:
        dense_part = (model.params_b - model.expert_params_b) * 1e9 * model.bytes_per_param
        touched = 1.0 - (1.0 - model.experts_per_token / model.experts) ** seqs
        w_read = dense_part + touched * model.expert_params_b * 1e9 * model.bytes_per_param
    else:
        w_read = np.full_like(seqs, model.weight_bytes)
    lin_flops = seqs * 2.0 * model.active_b * 1e9
    wall = np.zeros_like(b)
    energy = np.zeros_like(b)
    p2p = _p2p(gpu, model, eff, seqs)
    for x in _DECODE_NODES:  # quadrature over the growing context
        ctx = prompt + x * out
        if model.kv_heads:
            kv_split = np.minimum(tp, model.kv_heads)
            cache = seqs * ctx * model.kv_bytes_per_token / (pp * kv_split)
            attn = seqs * 4.0 * model.layers * model.heads * model.head_dim * ctx / n
        else:
            cache = seqs * 2.0 * model.ssm_state_bytes / (pp * tp)  # read and write the state
            attn = seqs * 10.0 * model.ssm_state_bytes / 2.0 / n  # a few flops per state element
        flops = lin_flops / n + attn
        nbytes = w_read / n + cache
        t_work, t_comm = _stage_pass(gpu, model, eff, tp, pp, seqs, flops, nbytes)
        rounds = np.maximum(m, pp)  # a micro-batch needs all stages before its next token
        step = (
            rounds * (t_work + t_comm)
            + np.where(pp > 1, pp * p2p, 0.0)
            + eff.step_overhead_s
            + eff.host_s_per_seq * b
        )
        busy = m * t_work
        wall += step
        energy += _energy(gpu, eff, n, step, busy, m * flops, m * nbytes)
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
) -> dict[str, Any]:
    """Noise-free simulation of validated, broadcast arrays; invalid rows hold NaN.

    Inputs are assumed already validated (finite, positive integers where required);
    :class:`energycore.simulate.Node` does that at the public boundary.
    """
    c = _broadcast(tp=tp, pp=pp, batch=batch, input_len=input_len, output_len=output_len)
    tp_, pp_, b = c["tp"], c["pp"], c["batch"]
    valid, reason, mem = check_validity(
        gpu, model, n_gpus, tp_, pp_, b, c["input_len"], c["output_len"], eff
    )
    if not check_memory:
        mem_bad = np.array([str(r).startswith("does not fit") for r in reason], dtype=bool)
        reason = np.where(mem_bad, "", reason).astype(object)
        valid = reason == ""
    prompt = c["input_len"] + model.image_tokens
    out_len = c["output_len"]
    t_pf, e_pf = _prefill(gpu, model, eff, tp_, pp_, b, prompt)
    t_dec, e_dec = _decode(gpu, model, eff, tp_, pp_, b, prompt, out_len)
    res: dict[str, Any] = {
        "energy_prefill_j": e_pf,
        "energy_decode_j": e_dec,
        "energy_j": e_pf + e_dec,
        "ttft_s": t_pf,
        "tpot_s": t_dec / np.maximum(out_len, 1.0),
        "latency_s": t_pf + t_dec,
        "n_gpus": tp_ * pp_,
        "mem_per_gpu_gb": mem,
    }
    _derive(res, b, out_len)
    for k in OUTPUT_COLUMNS:
        if k not in ("n_gpus", "mem_per_gpu_gb"):
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
