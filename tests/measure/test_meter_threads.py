"""EnergyMeter.close() from one thread while others begin and end windows (issue 18, item 3)."""

from __future__ import annotations

import threading

import pytest

from energycore.measure import EnergyMeter


def test_close_while_other_threads_use_windows(fake_nvml: pytest.MonkeyPatch) -> None:
    fake_nvml.setenv("FAKE_NVML_POWER_W", "200")
    for attempt in range(10):
        meter = EnergyMeter(method="sampled", period_s=0.001)
        errors: list[BaseException] = []
        stop = threading.Event()

        def work(
            k: int,
            meter: EnergyMeter = meter,
            stop: threading.Event = stop,
            errors: list[BaseException] = errors,
        ) -> None:
            i = 0
            while not stop.is_set():
                name = f"t{k}-{i}"
                i += 1
                try:
                    meter.begin(name)
                    meter.end(name)
                except ValueError as e:
                    if "closed" not in str(e) and "never begun" not in str(e):
                        errors.append(e)
                    if "closed" in str(e):
                        return
                except BaseException as e:  # e.g. AttributeError on a released sampler
                    errors.append(e)
                    return

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        threading.Event().wait(0.01 + 0.002 * attempt)
        meter.close()
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors[:3]


def test_a_closed_meter_says_so(fake_nvml: pytest.MonkeyPatch) -> None:
    meter = EnergyMeter(method="sampled", period_s=0.001)
    meter.begin("w")
    meter.close()
    meter.close()  # idempotent
    for call in (lambda: meter.begin("x"), lambda: meter.end("w"), meter.power_w):
        with pytest.raises(ValueError, match="the meter is closed"):
            call()
