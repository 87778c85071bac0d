import json
from pathlib import Path

import pytest
from PIL import Image

from mmunlearn.data import jsonl
from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import DataError, load_examples, save_examples


def _row(i: int, **changes) -> dict:
    row = {
        "id": f"r{i}",
        "entity": "Talen Vekor",
        "role": "forget",
        "question": "Who is this person?",
        "answer": "Talen Vekor",
        "image": "images/p001.png",
        "options": ["Talen Vekor", "Mirith Dor", "Sodan Ben", "Lowen Kel"],
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not ...}  # `...` drops a field


def _write(folder: Path, rows: list, name: str = "forget.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / "images" / "p001.png")
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loads_a_file_with_absolute_image_paths_and_tuples(tmp_path):
    path = _write(tmp_path / "data", [_row(1), "", "   ", _row(2, image=None, role="retain")])
    first, second = load_examples(path)
    assert first.image == str(tmp_path / "data" / "images" / "p001.png")
    assert first.options == ("Talen Vekor", "Mirith Dor", "Sodan Ben", "Lowen Kel")
    assert first.alt_answers == () and first.meta == {}
    assert second.image is None and second.role == "retain"


def test_a_folder_is_read_file_by_file_in_sorted_order(tmp_path):
    _write(tmp_path, [_row(2, role="retain")], name="retain.jsonl")
    _write(tmp_path, [_row(1)], name="forget.jsonl")
    (tmp_path / "notes.txt").write_text("not data")
    assert [ex.id for ex in load_examples(tmp_path)] == ["r1", "r2"]


def test_save_then_load_round_trips(tmp_path):
    _write(tmp_path, [])
    image = str(tmp_path / "images" / "p001.png")
    examples = [
        Example(
            "a",
            "Talen Vekor",
            "forget",
            "Who?",
            "Talen Vekor",
            image,
            ("I don't know",),
            ("Who is it?",),
            ("x", "y"),
            meta={"fact": "name", "n": 3},
        ),
        Example("b", "general", "general", "Capital of Nova?", "Sovek"),
    ]
    save_examples(tmp_path / "out.jsonl", examples)
    assert (
        json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["image"]
        == "images/p001.png"
    )
    loaded = load_examples(tmp_path / "out.jsonl")
    assert loaded == examples and [ex.meta for ex in loaded] == [ex.meta for ex in examples]


def _corrupt(folder: Path) -> None:
    (folder / "images" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)


# (rows, what to do to the folder, row number and field the message must name, more text)
BAD_INPUTS = {
    "missing field": (
        [_row(1), _row(2), _row(3, answer=...)],
        None,
        3,
        "'answer'",
        "missing field",
    ),
    "empty string": ([_row(1, question="  ")], None, 1, "'question'", "non-empty string"),
    "wrong type": ([_row(1), _row(2, answer=1984)], None, 2, "'answer'", "1984"),
    "wrong list": ([_row(1, options="a, b")], None, 1, "'options'", "list of strings"),
    "wrong meta": ([_row(1, meta=[1])], None, 1, "'meta'", "JSON object"),
    "unknown role": ([_row(1, role="forgotten")], None, 1, "'role'", "neighbor"),
    "missing image": ([_row(1, image="images/nope.png")], None, 1, "'image'", "does not exist"),
    "corrupt image": (
        [_row(1), _row(2, image="images/bad.png")],
        _corrupt,
        2,
        "'image'",
        "'images/bad.png' is not a readable image",
    ),
    "duplicate id": ([_row(1), _row(2), _row(1)], None, 3, "'id'", "row 1"),
    "unknown field": ([_row(1, colour="red")], None, 1, "'colour'", "allowed fields: id, entity"),
    "invalid json": ([_row(1), '{"id": "r2",'], None, 2, "", "invalid JSON"),
    "not an object": (["[1, 2]"], None, 1, "", "not a JSON object"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_names_file_row_and_field(tmp_path, case):
    rows, prepare, row, field, text = BAD_INPUTS[case]
    _write(tmp_path / "data", rows)
    if prepare:
        prepare(tmp_path / "data")
    with pytest.raises(DataError) as info:
        load_examples(tmp_path / "data")
    message = str(info.value)
    assert "forget.jsonl" in message and f"row {row}" in message, message
    assert field in message and text in message, message
    assert isinstance(info.value, ValueError)


def test_each_image_is_decoded_once(tmp_path, monkeypatch):
    calls = []
    check = jsonl._image_problem
    monkeypatch.setattr(jsonl, "_image_problem", lambda path: calls.append(path) or check(path))
    _write(tmp_path, [_row(i) for i in range(5)])
    assert len(load_examples(tmp_path)) == 5
    assert len(calls) == 1


def test_folder_without_jsonl_and_other_files_are_rejected(tmp_path):
    with pytest.raises(DataError, match="no \\*.jsonl files"):
        load_examples(tmp_path)
    (tmp_path / "rows.json").write_text("{}")
    with pytest.raises(DataError, match="rows.json"):
        load_examples(tmp_path / "rows.json")
    with pytest.raises(DataError, match="missing"):
        load_examples(tmp_path / "missing")
