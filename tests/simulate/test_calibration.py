"""The simulator stays calibrated against the ML.ENERGY leaderboard v3 measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from energycore.simulate.calibration import compare, load_rows, summary


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[dict]:
    return compare(load_rows(shared_data))


def test_every_llama_row_on_h100_and_b200_is_compared(records: list[dict]) -> None:
    groups = {(r["model"].split(" Instruct")[0], r["gpu"]) for r in records}
    for model in ("Llama 3.1 8B", "Llama 3.1 70B"):
        for gpu in ("H100", "B200"):
            assert (model, gpu) in groups
    assert ("Llama 3.1 405B", "B200") in groups  # held out of the tuning: a transfer check
    assert len(records) >= 70


@pytest.mark.parametrize("key", ["energy_ratio", "itl_ratio"])
def test_ratios_are_within_the_calibration_bounds(records: list[dict], key: str) -> None:
    v = np.array([r[key] for r in records])
    assert 0.67 <= np.median(v) <= 1.5
    worst = records[int(np.argmax(np.abs(np.log(v))))]
    assert v.min() >= 0.5 and v.max() <= 2.0, f"worst row: {worst}"


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="calibration data not found"):
        load_rows(tmp_path)


def test_tune_brings_a_bad_start_back_within_bounds(shared_data: Path) -> None:
    """From a start far off (a third of the bandwidth), tuning restores the calibration."""
    from energycore.simulate import CALIBRATED
    from energycore.simulate.calibration import tune

    pytest.importorskip("scipy")
    rows = load_rows(shared_data)
    start = CALIBRATED.replace(bandwidth=CALIBRATED.bandwidth / 3)
    assert summary(compare(rows, start))["itl_ratio_max"] > 2.0
    s = summary(compare(rows, tune(rows, start)))
    for key in ("energy_ratio", "itl_ratio"):
        assert 0.67 <= s[f"{key}_median"] <= 1.5
        assert s[f"{key}_min"] >= 0.5 and s[f"{key}_max"] <= 2.0
