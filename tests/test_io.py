"""Files written atomically, and as strict JSON."""

import json

import pytest

from mmunlearn.io import atomic_write_json, json_line


def strict_loads(text):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_json_holds_null_and_the_reason_where_a_number_cannot_exist(tmp_path):
    path = tmp_path / "report.json"
    report = {"auc": float("nan"), "n": 3, "curve": [0.5, float("inf")], "sub": {"x": -1e999}}
    atomic_write_json(path, report)
    written = strict_loads(path.read_text())
    assert written == {
        "auc": None,
        "n": 3,
        "curve": [0.5, None],
        "sub": {"x": None, "not_finite": {"x": "-inf"}},
        "not_finite": {"auc": "nan"},
    }


def test_finite_values_are_written_as_they_are(tmp_path):
    path = tmp_path / "plain.json"
    values = {"a": [1, 2.5, "x", None, True], "b": {"c": 0.0}}
    atomic_write_json(path, values)
    assert strict_loads(path.read_text()) == values
    with pytest.raises(ValueError, match="not strict JSON"):
        strict_loads('{"a": NaN}')


def test_a_jsonl_row_is_strict_json_on_one_line():
    line = json_line({"question": "Où?", "rouge": float("nan")})
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert strict_loads(line) == {"question": "Où?", "rouge": None, "not_finite": {"rouge": "nan"}}
