"""HardwareCheck: the catalogue's memory and divisibility arithmetic as space constraints."""

from __future__ import annotations

import itertools

import pytest

from energycore.simulate import get_gpu, get_model
from energycore.space import ConfigSpace, HardwareCheck

P2 = [1, 2, 4, 8]
BATCHES = ConfigSpace.powers_of_two(1, 512)


def _need_gb(model: str, tp: int, pp: int, batch: int, il: float, ol: float) -> float:
    """Per-GPU memory by hand from the catalogue figures (dense transformer, no window)."""
    m = get_model(model)
    weights = m.params_b * m.bytes_per_param  # GB
    act = 8 * 16384 * m.hidden * 2 / 1e9 / tp  # prefill workspace
    kv_token = 2 * m.kv_heads * m.head_dim * 2 * m.layers / 1e9  # GB per token, all layers
    kv = batch * kv_token * (il + ol) / (pp * min(tp, m.kv_heads))
    return weights / (tp * pp) + 1.0 + act + kv


def _space(n_gpus: int = 8) -> ConfigSpace:
    return ConfigSpace(
        {"tp": P2, "pp": P2, "batch": BATCHES}, constraints=[ConfigSpace.gpu_count(n_gpus)]
    )


def _kept(check: HardwareCheck, il: float, ol: float, n_gpus: int = 8) -> set[tuple[int, ...]]:
    space = ConfigSpace(
        {"tp": P2, "pp": P2, "batch": BATCHES},
        constraints=[ConfigSpace.gpu_count(n_gpus), *check.constraints()],
    )
    f = space.to_frame(None, as_frame=False, input_len=il, output_len=ol)
    return {(int(a), int(b), int(c)) for a, b, c in zip(f["tp"], f["pp"], f["batch"])}


def test_70b_on_one_80gb_gpu_is_refused_and_the_catalogue_decides_the_rest() -> None:
    il, ol = 512.0, 256.0
    for gpu in ("H100", "H200"):
        check = HardwareCheck.resolve(gpu, "llama-3.1-70b")
        usable = get_gpu(gpu).hbm_gb * 0.9
        kept = _kept(check, il, ol)
        for tp, pp, b in itertools.product(P2, P2, BATCHES):
            if tp * pp > 8:
                continue
            fits = _need_gb("llama-3.1-70b", tp, pp, b, il, ol) <= usable
            assert ((tp, pp, b) in kept) == fits, (gpu, tp, pp, b)
        assert not any(tp == pp == 1 for tp, pp, _ in kept)  # 141 GB of weights on one GPU
    # the weights alone: 141.2 / tp + 1 + 2.15 / tp GB against 72 GB (H100) and 126.9 GB (H200)
    h100 = _kept(HardwareCheck.resolve("H100", "70b"), il, ol)
    h200 = _kept(HardwareCheck.resolve("H200", "70b"), il, ol)
    assert (2, 1, 1) not in h100 and (4, 1, 1) in h100  # 72.7 GB > 72 GB at tp=2
    assert (2, 1, 1) in h200 and (2, 1, 256) in h200 and (2, 1, 512) not in h200  # KV: 64 GB


def test_refusal_counts_per_reason_match_the_arithmetic() -> None:
    il, ol = 512.0, 256.0
    check = HardwareCheck.resolve("H100", "llama-3.1-70b")
    refused = dict(check.refusals(_space(), input_len=il, output_len=ol))
    valid = [(t, p, b) for t, p, b in itertools.product(P2, P2, BATCHES) if t * p <= 8]
    m = get_model("llama-3.1-70b")
    weights_fail = [
        c for c in valid
        if m.weight_bytes / 1e9 / (c[0] * c[1]) + 1 + 8 * 16384 * m.hidden * 2 / 1e9 / c[0] > 72
    ]  # fmt: skip
    kv_fail = [c for c in valid if c not in weights_fail and _need_gb("70b", *c, il, ol) > 72]
    (weights_reason,) = [r for r in refused if "weights need" in r]
    assert weights_reason.startswith("llama-3.1-70b weights need 141 GB > 72 GB usable on H100")
    assert refused[weights_reason] == len(weights_fail) == 30  # tp*pp in (1, 2): 3 x 10 batches
    kv_reasons = [r for r in refused if "KV cache of the whole batch" in r]
    assert sum(refused[r] for r in kv_reasons) == len(kv_fail)
    assert not any("divide" in r for r in refused)  # powers of two divide 64 heads, 80 layers


def test_the_batch_kv_cache_is_checked_at_long_contexts() -> None:
    il, ol = 32768.0, 1024.0
    check = HardwareCheck.resolve("H100", "llama-3.1-8b")
    kept = _kept(check, il, ol)
    assert (1, 1, 1) in kept and (1, 1, 512) not in kept
    for tp, pp, b in itertools.product(P2, P2, BATCHES):
        if tp * pp <= 8:
            fits = _need_gb("llama-3.1-8b", tp, pp, b, il, ol) <= 72.0
            assert ((tp, pp, b) in kept) == fits, (tp, pp, b)
    refused = check.refusals(_space(), input_len=il, output_len=ol)
    assert [r for r, _ in refused] == [check.rules()[-1][0]]  # only the KV-cache rule


def test_divisibility_rules() -> None:
    check = HardwareCheck.resolve("B200", "llama-3.1-405b")  # 126 layers
    refused = dict(check.refusals(_space(), input_len=128.0, output_len=128.0))
    n_pp = sum(1 for t, p, _ in itertools.product(P2, P2, BATCHES) if t * p <= 8 and 126 % p)
    assert refused["pp does not divide the 126 layers"] == n_pp


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"gpu: unknown name 'H999'.*known: A100.*H100"):
        HardwareCheck.resolve("H999", "70b")
    with pytest.raises(ValueError, match=r"model: unknown name 'gpt-9'.*known: llama-3.1-8b"):
        HardwareCheck.resolve("H100", "gpt-9")
    with pytest.raises(ValueError, match="memory_fraction"):
        HardwareCheck.resolve("H100", "70b", memory_fraction=1.5)
    d = HardwareCheck.resolve("h100", "70b").to_dict()
    assert d == {
        "gpu": "H100", "served_model": "llama-3.1-70b", "usable_gb": 72.0,
        "weights_gb": pytest.approx(141.2),
    }  # fmt: skip
