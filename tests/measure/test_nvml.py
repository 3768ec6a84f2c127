"""The C++ NVML layer through _core, against the fake NVML of tests/fake_nvml.c."""

from __future__ import annotations

import time

import numpy as np
import pytest

from energycore import _core


def session(mp: pytest.MonkeyPatch, **env: object) -> _core.NvmlSession:
    for k, v in env.items():
        mp.setenv(f"FAKE_NVML_{k.upper()}", str(v))
    return _core.NvmlSession()


def test_library_missing_names_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYCORE_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1")
    with pytest.raises(_core.NvmlError) as e:
        _core.NvmlSession()
    code, function, message = e.value.args
    assert (code, function) == (12, "dlopen")
    assert "/nonexistent/libnvidia-ml.so.1" in message


def test_not_an_nvml_library(fake_cuda_path: object) -> None:
    with pytest.raises(_core.NvmlError, match="nvmlInit_v2 is missing"):
        _core.NvmlSession(str(fake_cuda_path))


def test_init_error_is_reported(fake_nvml: pytest.MonkeyPatch) -> None:
    with pytest.raises(_core.NvmlError) as e:
        session(fake_nvml, init_error=9)
    assert e.value.args[:2] == (9, "nvmlInit_v2")
    assert "Driver Not Loaded" in e.value.args[2]


def test_devices_and_counters(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, devices=3, power_w="200,100,50")
    assert s.physical_count() == 3
    devs = s.devices()
    assert [d["index"] for d in devs] == [0, 1, 2]
    assert devs[1]["name"] == "Fake GPU 1" and not devs[1]["is_mig"]
    assert devs[2]["uuid"].startswith("GPU-fake0002")
    assert s.power_mw(0) == 200_000 and s.power_mw(2) == 50_000
    assert s.counter_supported(1)
    a = s.energy_mj(0)
    time.sleep(0.05)
    b = s.energy_mj(0)
    assert 0.04 * 200e3 <= b - a <= 0.2 * 200e3


def test_energy_snapshot_reads_time_and_counters_together(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, devices=2, power_w="1000,10")
    t0, (a0, b0) = s.energy_snapshot([0, 1])
    time.sleep(0.05)
    t1, (a1, b1) = s.energy_snapshot([0, 1])
    assert (a1 - a0) / 1e3 == pytest.approx(1000 * (t1 - t0), rel=0.02, abs=0.002)
    assert (b1 - b0) / 1e3 == pytest.approx(10 * (t1 - t0), rel=0.02, abs=0.002)
    with pytest.raises(_core.NvmlError):
        s.energy_snapshot([0, 5])


def test_power_falls_back_to_power_usage(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, no_field=1, power_w=123)
    assert s.power_mw(0) == 123_000


def test_unsupported_counter(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, no_counter=1)
    assert not s.counter_supported(0)
    with pytest.raises(_core.NvmlError) as e:
        s.energy_mj(0)
    assert e.value.args[:2] == (3, "nvmlDeviceGetTotalEnergyConsumption")


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        ("1", [1]),
        ("2,0", [2, 0]),
        (" 1 , 2 ", [1, 2]),
        ("", []),
        ("-1", []),
        ("1,7,0", [1]),  # CUDA stops at the first invalid entry
        ("GPU-fake0002", [2]),
        ("GPU-fake0001-0000-0000-0000-000000000000,0", [1, 0]),
        ("GPU-fake", []),  # ambiguous prefix
        ("GPU-nope", []),
    ],
)
def test_cuda_visible_devices(fake_nvml: pytest.MonkeyPatch, visible: str, expected: list) -> None:
    s = session(fake_nvml, devices=3)
    devs = s.devices(visible)
    assert [d["physical"] for d in devs] == expected
    assert [d["index"] for d in devs] == list(range(len(expected)))


def test_mig_devices_map_to_their_parent(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, devices=2, mig=3)
    devs = s.devices("MIG-fake0000-0002,GPU-fake0001")
    assert [(d["is_mig"], d["physical"]) for d in devs] == [(True, 0), (False, 1)]
    assert devs[0]["uuid"].startswith("MIG-fake0000-0002")
    assert devs[0]["physical_uuid"].startswith("GPU-fake0000")
    assert s.devices("MIG-fake0000-0005") == []  # only three instances exist


def test_sampler_integrates_constant_power(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, devices=2, power_w="300,60")
    sampler = _core.PowerSampler(s, [0, 1], 0.001)
    sampler.start()
    try:
        t0 = _core.monotonic_s()
        time.sleep(0.1)
        t1 = _core.monotonic_s()
        sampler.sample_now()
        e = sampler.integrate(t0, t1)
        t, p = sampler.timeline(t0, t1)
    finally:
        sampler.stop()
    assert not sampler.running
    np.testing.assert_allclose(e, [300 * (t1 - t0), 60 * (t1 - t0)], rtol=1e-9)
    assert p.shape == (len(t), 2) and len(t) >= 20  # 1 ms period on a busy 2-core machine
    assert np.all(np.diff(t) >= 0)
    np.testing.assert_allclose(p, np.tile([300.0, 60.0], (len(t), 1)))
    assert sampler.count(t0, t1) == len(t)


def test_sampler_interpolates_between_samples(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, power_w=10)
    sampler = _core.PowerSampler(s, [0], 10.0)  # the thread waits; samples taken by hand
    sampler.start()
    sampler.sample_now()
    sampler.stop()
    t, _ = sampler.timeline(0, 1e12)
    assert len(t) == 2
    # Inside one interval, before the first and after the last sample: constant 10 W.
    for a, b in [(t[0], t[1]), (t[0] - 1, t[0] - 0.5), (t[1] + 1, t[1] + 3)]:
        np.testing.assert_allclose(sampler.integrate(a, b), [10 * (b - a)])
    sampler.discard_before(t[1] + 5)  # keeps the last sample for interpolation
    assert sampler.size() == 1


def test_sampler_rejects_bad_arguments(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml)
    with pytest.raises(ValueError, match="period_s"):
        _core.PowerSampler(s, [0], 0.0)
    with pytest.raises(ValueError, match="no GPU"):
        _core.PowerSampler(s, [], 0.01)
    sampler = _core.PowerSampler(s, [0], 0.01)
    with pytest.raises(RuntimeError, match="no sample"):
        sampler.integrate(0.0, 1.0)
    with pytest.raises(ValueError, match="t0 <= t1"):
        sampler.integrate(1.0, 0.0)


def test_sampler_keeps_the_error_of_a_lost_gpu(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, lost_after=5, no_field=1)
    sampler = _core.PowerSampler(s, [0], 0.001)
    sampler.start()
    deadline = time.monotonic() + 10
    error = None
    while error is None and time.monotonic() < deadline:  # the thread hits the 6th read
        try:
            sampler.integrate(0.0, _core.monotonic_s())
        except _core.NvmlError as e:
            error = e
        time.sleep(0.005)
    assert error is not None and error.args[0] == 15
    assert sampler.size() == 5  # the thread stopped at the failed read
    sampler.stop()


def test_permission_error(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, no_permission=1)
    with pytest.raises(_core.NvmlError) as e:
        s.power_mw(0)
    assert e.value.args[0] == 4
    with pytest.raises(_core.NvmlError) as e:
        _core.PowerSampler(s, [0], 0.01).start()
    assert e.value.args[0] == 4


def test_cuda_events_on_fake_driver(
    monkeypatch: pytest.MonkeyPatch, fake_cuda_path: object
) -> None:
    monkeypatch.setenv("ENERGYCORE_CUDA_LIBRARY", str(fake_cuda_path))
    rt = _core.CudaRuntime()
    timer = _core.CudaEventTimer(rt)
    timer.start(0)
    time.sleep(0.03)
    timer.stop(0)
    assert 0.025 <= timer.elapsed_s() <= 0.5
    with pytest.raises(RuntimeError, match="before stop"):
        _core.CudaEventTimer(rt).elapsed_s()
    monkeypatch.setenv("FAKE_CUDA_INIT_ERROR", "100")
    with pytest.raises(_core.CudaError) as e:
        _core.CudaRuntime()
    assert e.value.args[:2] == (100, "cuInit")
    assert "no CUDA-capable device" in e.value.args[2]


def test_sampler_thread_death_turns_running_false(fake_nvml: pytest.MonkeyPatch) -> None:
    s = session(fake_nvml, lost_after=5, no_field=1)
    sampler = _core.PowerSampler(s, [0], 0.001)
    assert sampler.error is None
    sampler.start()
    assert sampler.running
    deadline = time.monotonic() + 10
    while sampler.running and time.monotonic() < deadline:  # the thread hits the 6th read
        time.sleep(0.005)
    assert not sampler.running
    code, function, message = sampler.error
    assert code == 15 and function and message
    with pytest.raises(_core.NvmlError):  # reads report it
        sampler.timeline(0.0, _core.monotonic_s())
    with pytest.raises(_core.NvmlError):  # a restart takes its first sample: the GPU is still lost
        sampler.start()
    assert not sampler.running
    sampler.stop()  # stopping a dead sampler is quiet, and idempotent
    sampler.stop()
    assert sampler.error[0] == 15


def test_sampler_start_stop_from_many_threads(fake_nvml: pytest.MonkeyPatch) -> None:
    import threading

    s = session(fake_nvml, power_w=50)
    sampler = _core.PowerSampler(s, [0], 0.0005)
    errors: list[BaseException] = []

    def flip(k: int) -> None:
        try:
            for i in range(40):
                sampler.start() if (i + k) % 2 == 0 else sampler.stop()
        except BaseException as e:  # any error fails the test below
            errors.append(e)

    threads = [threading.Thread(target=flip, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sampler.stop()
    assert errors == []
    assert not sampler.running and sampler.error is None
    assert sampler.size() >= 1
    np.testing.assert_allclose(sampler.timeline(0.0, 1e12)[1], 50.0)


def test_sampler_rejects_a_negative_gpu_index(fake_nvml: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="physical"):
        _core.PowerSampler(session(fake_nvml), [0, -1], 0.01)
