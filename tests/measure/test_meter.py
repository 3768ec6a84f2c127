"""energycore.measure: EnergyMeter windows, methods, errors and timing, on the fake NVML."""

from __future__ import annotations

import ctypes
import sys
import time
import types

import numpy as np
import pytest

import energycore
from energycore import measure
from energycore.measure import (
    CudaEventTimer,
    EnergyMeter,
    GPULostError,
    Measurement,
    NoGPUError,
    NVMLNotSupportedError,
    NVMLPermissionError,
)


def setenv(mp: pytest.MonkeyPatch, **env: object) -> None:
    for k, v in env.items():
        mp.setenv(f"FAKE_NVML_{k.upper()}", str(v))


def test_no_gpu_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENERGYCORE_NVML_LIBRARY", raising=False)
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        pass
    else:
        pytest.skip("this machine has an NVIDIA driver (libnvidia-ml.so.1 loads)")
    with pytest.raises(NoGPUError, match=r"libnvidia-ml\.so\.1") as e:
        EnergyMeter()
    assert "tried NVML library" in str(e.value)
    assert energycore.NoGPUError is NoGPUError
    with pytest.raises(NoGPUError):
        measure.list_gpus()


def test_no_visible_gpu(fake_nvml: pytest.MonkeyPatch) -> None:
    fake_nvml.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(NoGPUError, match="none is visible under CUDA_VISIBLE_DEVICES=''"):
        EnergyMeter()
    fake_nvml.delenv("CUDA_VISIBLE_DEVICES")
    setenv(fake_nvml, devices=0)
    with pytest.raises(NoGPUError, match="sees 0 GPU"):
        EnergyMeter()
    setenv(fake_nvml, devices=1, init_error=9)
    with pytest.raises(NoGPUError, match="Driver Not Loaded"):
        EnergyMeter()


def test_counter_window(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, devices=2, power_w="250,50")
    with EnergyMeter() as meter:
        assert meter.method == "counter" and meter.gpus == (0, 1)
        meter.begin("work")
        time.sleep(0.15)
        m = meter.end("work")
    assert isinstance(m, Measurement) and m.method == "counter" and m.timing == "monotonic"
    assert m.time_s == m.wall_s and 0.15 <= m.time_s < 1.0
    # The counter has millijoule resolution and is read one GPU after the other.
    assert m.energy_j[0] == pytest.approx(250 * m.time_s, rel=0.05, abs=0.01)
    assert m.energy_j[1] == pytest.approx(50 * m.time_s, rel=0.05, abs=0.01)
    assert m.total_energy_j == pytest.approx(sum(m.energy_j.values()))
    assert m.avg_power_w == pytest.approx(300, rel=0.05)
    assert m.timeline is None and m.warnings == ()
    assert m.active_energy_j is None
    d = m.to_dict("x_")
    assert d["x_energy_j"] == m.total_energy_j and d["x_method"] == "counter"
    assert "energy_j=" in repr(m) and "counter" in repr(m)


def test_sampled_window_and_timeline(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, power_w=400)
    with EnergyMeter(method="sampled", period_s=0.001) as meter:
        m_win = None
        with meter.window("w") as w:
            time.sleep(0.1)
        m_win = w.measurement
    assert m_win is not None and m_win.method == "sampled"
    assert m_win.energy_j[0] == pytest.approx(400 * m_win.wall_s, rel=1e-6)
    assert m_win.timeline is not None
    t, p = m_win.timeline
    assert p.shape == (len(t), 1) and len(t) >= 10
    assert t[0] >= 0 and t[-1] <= m_win.wall_s + 1e-9
    np.testing.assert_allclose(p, 400.0)


def test_unsupported_counter_falls_back_to_sampler(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, no_counter=1, no_field=1, power_w=80)
    with EnergyMeter(period_s=0.002) as meter:
        assert meter.method == "sampled"
        m = meter.measure(lambda: time.sleep(0.05))[1]
    assert m.energy_j[0] == pytest.approx(80 * m.wall_s, rel=1e-6)
    with pytest.raises(NVMLNotSupportedError, match="no total-energy counter") as e:
        EnergyMeter(method="counter")
    assert e.value.code == 3


def test_nested_and_overlapping_windows(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, power_w=100)
    for method in ("counter", "sampled"):
        with EnergyMeter(method=method, period_s=0.001) as meter:
            meter.begin("request")
            meter.begin("prefill")
            time.sleep(0.03)
            meter.begin("decode")  # overlaps prefill
            time.sleep(0.03)
            prefill = meter.end("prefill")
            time.sleep(0.03)
            decode = meter.end("decode")
            assert meter.open_windows == ("request",)
            req = meter.end("request")
        assert req.wall_s >= prefill.wall_s + 0.02 and req.wall_s >= decode.wall_s
        for m in (req, prefill, decode):
            assert m.total_energy_j == pytest.approx(100 * m.wall_s, rel=0.05, abs=2e-3), method
        assert prefill.end_s > decode.start_s  # they really overlapped


def test_window_errors(fake_nvml: pytest.MonkeyPatch) -> None:
    with EnergyMeter() as meter:
        with pytest.raises(ValueError, match="never begun"):
            meter.end("nope")
        meter.begin("a")
        with pytest.raises(ValueError, match="already open"):
            meter.begin("a")
        with pytest.raises(ValueError, match="name"):
            meter.begin("")
        with pytest.raises(ZeroDivisionError), meter.window("b"):
            _ = 1 / 0
        assert meter.open_windows == ("a",)  # the failed window is dropped
    with pytest.raises(ValueError, match="closed"):
        meter.begin("c")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gpus": 3}, "no GPU 3; 2 visible"),
        ({"gpus": [0, 0]}, "given twice"),
        ({"gpus": []}, "empty"),
        ({"gpus": ["0"]}, "integer"),
        ({"method": "magic"}, "method"),
        ({"period_s": 0.0}, "period_s"),
        ({"period_s": "fast"}, "period_s"),
        ({"sync": 3}, "sync"),
        ({"idle_power_w": {0: 50.0}}, "one entry per GPU"),
        ({"idle_power_w": {0: -1.0, 1: 2.0}}, "non-negative"),
    ],
)
def test_bad_arguments(fake_nvml: pytest.MonkeyPatch, kwargs: dict, match: str) -> None:
    setenv(fake_nvml, devices=2)
    with pytest.raises(ValueError, match=match):
        EnergyMeter(**kwargs)


def test_gpu_selection_and_visible_devices(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, devices=3, power_w="10,20,30")
    fake_nvml.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    with EnergyMeter(gpus=[1]) as meter:  # CUDA device 1 is physical GPU 0
        assert meter.devices[1]["physical"] == 0
        assert meter.power_w() == {1: pytest.approx(10.0)}
    with EnergyMeter(gpus=0) as meter:
        assert meter.power_w() == {0: pytest.approx(30.0)}
    assert [d["physical"] for d in measure.list_gpus()] == [2, 0]


def test_mig_is_measured_through_the_parent(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, devices=1, mig=2, power_w=120)
    fake_nvml.setenv("CUDA_VISIBLE_DEVICES", "MIG-fake0000-0001")
    with EnergyMeter() as meter:
        m = meter.measure(lambda: time.sleep(0.02))[1]
    assert m.energy_j[0] == pytest.approx(120 * m.wall_s, rel=0.05, abs=2e-3)
    assert any("MIG instance" in w and "whole GPU" in w for w in m.warnings)
    fake_nvml.setenv("CUDA_VISIBLE_DEVICES", "MIG-fake0000-0000,MIG-fake0000-0001")
    with pytest.raises(ValueError, match="same physical GPU"):
        EnergyMeter()


def test_gpu_lost_mid_window(fake_nvml: pytest.MonkeyPatch) -> None:
    # Construction reads the counter once per GPU and the window start once: lost after 3.
    setenv(fake_nvml, lost_after=2)
    with EnergyMeter() as meter:
        meter.begin("w")
        with pytest.raises(GPULostError, match="GPU is lost") as e:
            meter.end("w")
        assert e.value.code == 15 and meter.open_windows == ()
    setenv(fake_nvml, lost_after=20, no_counter=1)
    with EnergyMeter(period_s=0.001) as meter:
        meter.begin("w")
        deadline = time.monotonic() + 10
        while meter._sampler.size() < 19 and time.monotonic() < deadline:
            time.sleep(0.005)  # set-up took one read, the samples the next 19: the GPU is lost
        with pytest.raises(GPULostError):
            meter.end("w")


def test_permission_error(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, no_permission=1)
    with pytest.raises(NVMLPermissionError, match="Insufficient Permissions") as e:
        EnergyMeter()
    assert e.value.code == 4 and e.value.function == "nvmlDeviceGetTotalEnergyConsumption"


def test_short_window_and_frozen_counter_warn(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, counter_period_ms=500)
    with EnergyMeter() as meter:
        m = meter.measure(lambda: None)[1]
    text = " ".join(m.warnings)
    assert "shorter than the energy counter's update period" in text
    assert "did not move" in text
    assert m.total_energy_j == 0.0  # reported as read, never made up
    with EnergyMeter(method="sampled", period_s=1.0) as meter:
        m = meter.measure(lambda: None)[1]
    assert any("power sample" in w for w in m.warnings)


def test_idle_calibration(fake_nvml: pytest.MonkeyPatch) -> None:
    setenv(fake_nvml, devices=2, power_w="60,40")
    with EnergyMeter() as meter:
        idle = meter.calibrate_idle(0.12)
        assert idle == {0: pytest.approx(60, rel=0.05), 1: pytest.approx(40, rel=0.05)}
        m = meter.measure(lambda: time.sleep(0.05))[1]
        with pytest.raises(ValueError, match="seconds"):
            meter.calibrate_idle(0)
    assert m.idle_power_w == idle
    assert m.idle_energy_j == pytest.approx(sum(idle.values()) * m.wall_s)
    assert m.active_energy_j == pytest.approx(m.total_energy_j - m.idle_energy_j)
    assert abs(m.active_energy_j) < 0.05 * m.total_energy_j  # the fake draws idle power only
    assert "active_energy_j" in m.to_dict() and "active_energy_j" in repr(m)
    with EnergyMeter(idle_power_w={0: 10.0, 1: 0.0}) as meter:
        assert meter.measure(lambda: None)[1].idle_power_w == {0: 10.0, 1: 0.0}


def test_sync_callback_runs_at_both_ends(fake_nvml: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    with EnergyMeter(sync=lambda: calls.append(time.monotonic())) as meter:
        meter.measure(lambda: None)
    assert len(calls) == 2


def test_cuda_event_timing(fake_nvml: pytest.MonkeyPatch, fake_cuda_path: object) -> None:
    fake_nvml.setenv("ENERGYCORE_CUDA_LIBRARY", str(fake_cuda_path))
    torch_like = types.SimpleNamespace(cuda_stream=0)
    with EnergyMeter() as meter:
        meter.begin("k", stream=torch_like)
        time.sleep(0.03)
        m = meter.end("k")
        with pytest.raises(ValueError, match="stream"):
            meter.begin("bad", stream="s")
    assert m.timing == "cuda_event"
    assert 0.02 <= m.time_s <= m.wall_s + 1e-3
    timer = CudaEventTimer(str(fake_cuda_path))
    timer.start(types.SimpleNamespace(ptr=0))
    assert timer.stop() >= 0
    with pytest.raises(ValueError, match="never called"):
        timer.stop()


def test_cuda_missing_is_no_gpu(tmp_path: object) -> None:
    with pytest.raises(NoGPUError, match="CUDA event timing is unavailable"):
        CudaEventTimer("/nonexistent/libcuda.so.1")


def test_nvtx_ranges(fake_nvml: pytest.MonkeyPatch) -> None:
    ranges: list[tuple[str, object]] = []
    fake = types.ModuleType("nvtx")
    fake.start_range = lambda message: ranges.append(("start", message)) or len(ranges)  # type: ignore[attr-defined]
    fake.end_range = lambda rid: ranges.append(("end", rid))  # type: ignore[attr-defined]
    fake_nvml.setitem(sys.modules, "nvtx", fake)
    with EnergyMeter(nvtx=True) as meter:
        meter.measure(lambda: None, name="fwd")
    assert ranges == [("start", "fwd"), ("end", 1)]
    fake_nvml.setitem(sys.modules, "nvtx", None)  # import fails
    with pytest.raises(ValueError, match="nvtx"):
        EnergyMeter(nvtx=True)


@pytest.mark.gpu
def test_real_gpu_counter_and_sampler_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENERGYCORE_NVML_LIBRARY", raising=False)
    try:
        counter = EnergyMeter(0)
    except NoGPUError as e:
        pytest.skip(f"needs a real NVIDIA GPU: {e}")
    with counter, EnergyMeter(0, method="sampled", period_s=0.001) as sampled:
        counter.begin("idle")
        sampled.begin("idle")
        time.sleep(1.0)
        ms, mc = sampled.end("idle"), counter.end("idle")
    assert mc.total_energy_j > 0 and ms.total_energy_j > 0
    assert ms.total_energy_j == pytest.approx(mc.total_energy_j, rel=0.2)


def test_windows_from_several_threads(fake_nvml: pytest.MonkeyPatch) -> None:
    import threading

    setenv(fake_nvml, power_w=50)
    results: list[Measurement] = []
    errors: list[BaseException] = []
    for method in ("counter", "sampled"):
        with EnergyMeter(method=method, period_s=0.001) as meter:

            def worker(k: int, meter: EnergyMeter = meter) -> None:
                try:
                    for i in range(30):
                        with meter.window(f"t{k}-{i}") as w:
                            time.sleep(0.0005)
                        assert w.measurement is not None
                        results.append(w.measurement)
                except BaseException as e:  # reported below
                    errors.append(e)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert meter.open_windows == ()
    assert not errors and len(results) == 240
    for m in results:
        # measured: at most 0.001 J apart (windows of ~0.03 J) on a loaded 2-core machine
        assert m.total_energy_j == pytest.approx(50 * m.wall_s, rel=0.05, abs=0.0025)
