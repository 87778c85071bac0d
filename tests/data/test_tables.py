"""The text readers benchmark loaders share: UTF-8 errors name file and row, and only '\\n'
ends a JSON line."""

import json

import pytest

from mmunlearn.data.jsonl import DataError
from mmunlearn.data.melu import forget_pages
from mmunlearn.data.tables import read_json_rows


def test_json_lines_holding_unicode_line_separators_load(tmp_path):
    rows = [{"question": "a\u2028b\x85c", "answer": "d\u2029e"}, {"question": "q", "answer": "a"}]
    path = tmp_path / "forget01.json"
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n")
    assert [row for _, row in read_json_rows(path, "TOFU rows")] == rows


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("forget01.json", lambda path: read_json_rows(path, "TOFU rows")),
        ("full_set.csv", lambda path: forget_pages(path.parent)),
    ],
    ids=["json lines", "melu csv"],
)
def test_bytes_that_are_not_utf8_name_file_and_row(tmp_path, name, read):
    text = (
        '{"question": "q", "answer": "a"}\n{"question": "r", "answer": "b"}\n'
        if name.endswith(".json")
        else "title,dataset,wikipage\nAda,forget,page\n"
    )
    (tmp_path / name).write_bytes(text.encode() + b"Ada,forget,caf\xe9\n")
    with pytest.raises(DataError, match=rf"{name}, row 3: bytes b'\\xe9' are not UTF-8"):
        read(tmp_path / name)
