"""energycore.data: CSV, Parquet and journal files as named columns, without pandas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from energycore import data


def test_csv_round_trip_keeps_numbers_text_and_missing(tmp_path):
    cols = {
        "tp": np.array([1.0, 2.0, 4.0]),
        "gpu": np.array(["H100", "B200", "H100"], dtype=object),
        "energy_j": np.array([1.5, math.nan, 3.25]),
    }
    p = tmp_path / "m.csv"
    data.write_csv(p, cols)
    back = data.read_csv(p)
    assert list(back) == ["tp", "gpu", "energy_j"]
    np.testing.assert_array_equal(back["tp"], [1.0, 2.0, 4.0])
    assert list(back["gpu"]) == ["H100", "B200", "H100"]
    assert back["energy_j"][0] == 1.5 and math.isnan(back["energy_j"][1])


def test_csv_comments_are_skipped(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("# measured on the simulator\ntp,energy_j\n1,2.5\n")
    assert data.read_csv(p)["energy_j"].tolist() == [2.5]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        ("", "no rows"),
        ("tp,energy_j\n", "no rows"),
        (b"\xff\xfe\x00", "not a readable"),
    ],
)
def test_csv_errors_name_the_file(tmp_path, content, match):
    p = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(ValueError, match=match) as e:
        data.read_csv(p)
    assert "bad.csv" in str(e.value)


def test_records_to_columns_unions_keys():
    cols = data.records_to_columns([{"a": 1}, {"b": 2}])
    assert cols["a"][0] == 1 and math.isnan(cols["a"][1]) and cols["b"][1] == 2


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    cols = {"batch": np.array([1.0, 8.0]), "gpu": np.array(["A", "B"], dtype=object)}
    p = tmp_path / "m.parquet"
    data.write_table(p, cols)
    back = data.read_table(p)
    np.testing.assert_array_equal(back["batch"], [1.0, 8.0])
    assert list(back["gpu"]) == ["A", "B"]


def _journal(tmp_path, results):
    p = tmp_path / "j.jsonl"
    lines = [{"type": "header", "format": data.JOURNAL_FORMAT, "format_version": 1}]
    lines += [{"type": "result", "key": str(i), "index": i, **r} for i, r in enumerate(results)]
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return p


def test_journal_columns_ok_rows_and_failed_on_request(tmp_path):
    p = _journal(
        tmp_path,
        [
            {"status": "ok", "config": {"tp": 1}, "result": {"energy_j": 10.0}},
            {"status": "failed", "config": {"tp": 2}, "result": {}, "error": "OOM"},
        ],
    )
    ok = data.read_table(p)
    assert ok["tp"].tolist() == [1.0] and ok["energy_j"].tolist() == [10.0]
    every = data.journal_columns(p, include_failed=True)
    assert list(every["status"]) == ["ok", "failed"] and every["error"][1] == "OOM"


def test_journal_without_results_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no successful results"):
        data.journal_columns(_journal(tmp_path, []))


def test_read_table_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"unknown file type '\.xlsx'"):
        data.read_table(tmp_path / "m.xlsx")
