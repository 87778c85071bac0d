import json
from pathlib import Path

import pytest
from PIL import Image

from mmunlearn.data import images
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
        "images/bad.png' is not a readable image",
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


def test_each_image_is_decoded_once(tmp_path):
    _write(tmp_path, [_row(i) for i in range(5)])
    before = images.CACHE.decoded
    assert len(load_examples(tmp_path)) == 5
    assert images.CACHE.decoded == before + 1


def test_folder_without_jsonl_and_other_files_are_rejected(tmp_path):
    with pytest.raises(DataError, match="no \\*.jsonl files"):
        load_examples(tmp_path)
    (tmp_path / "rows.json").write_text("{}")
    with pytest.raises(DataError, match="rows.json"):
        load_examples(tmp_path / "rows.json")
    with pytest.raises(DataError, match="missing"):
        load_examples(tmp_path / "missing")


@pytest.mark.parametrize(
    "image",
    [
        "/etc/hostname",
        "/no/such/file.png",
        "../outside.png",
        "../missing.png",
        "images/../../x.png",
    ],
)
def test_image_paths_outside_the_data_folder_are_refused_alike(tmp_path, image):
    """Absolute paths and '..' are refused before anything is opened, with one message whether
    or not the outside path exists (a data file must not probe the host)."""
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    _write(tmp_path / "data", [_row(1, image=image)])
    with pytest.raises(DataError) as info:
        load_examples(tmp_path / "data")
    message = str(info.value).replace(str(tmp_path), "<tmp>")
    assert message == (
        f"<tmp>/data/forget.jsonl, row 1, field 'image': {image!r} leads outside the data folder "
        "<tmp>/data (absolute paths, '..' and symbolic links that leave it are refused); put "
        "the image inside the folder, or allow images outside it with --data-option "
        "allow_outside_images=true"
    )


def test_a_symlink_out_of_the_data_folder_is_refused_and_one_inside_it_is_not(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    _write(tmp_path / "data", [_row(1, image="images/out.png")])
    (tmp_path / "data" / "images" / "out.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(DataError, match="row 1, field 'image': 'images/out.png' leads outside"):
        load_examples(tmp_path / "data")
    (tmp_path / "data" / "images" / "out.png").unlink()
    (tmp_path / "data" / "images" / "out.png").symlink_to(tmp_path / "data/images/p001.png")
    assert load_examples(tmp_path / "data")[0].image == str(tmp_path / "data/images/out.png")
    (tmp_path / "data" / "images" / "out.png").unlink()
    (tmp_path / "data" / "images" / "out.png").symlink_to("out.png")  # a loop: refused, no crash
    with pytest.raises(DataError, match="'images/out.png' leads outside"):
        load_examples(tmp_path / "data")


def test_images_outside_the_folder_load_when_the_user_allows_it(tmp_path):
    from mmunlearn.data.benchmarks import load_benchmark

    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    _write(tmp_path / "data", [_row(1, image="../outside.png")])
    (example,) = load_benchmark("mmunlearn_jsonl", tmp_path / "data", allow_outside_images="true")
    assert example.image == str(tmp_path / "outside.png")


def _ppm(path: Path) -> None:
    """A PPM image (which PIL decodes without help) under whatever name `path` has."""
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path, format="PPM")


def _eps(path: Path) -> None:
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")


@pytest.mark.parametrize("make", [_ppm, _eps], ids=["ppm", "eps"])
def test_formats_are_an_allow_list_read_from_the_contents(tmp_path, monkeypatch, make):
    from PIL import EpsImagePlugin

    opened = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened.append(self))
    _write(tmp_path, [_row(1, image="images/fake.png")])
    make(tmp_path / "images" / "fake.png")
    with pytest.raises(DataError) as info:
        load_examples(tmp_path)
    assert "forget.jsonl, row 1, field 'image'" in str(info.value)
    assert "fake.png' is not a readable image in an allowed format (PNG, JPEG, WEBP" in str(
        info.value
    )
    assert not opened  # the EPS decoder (which would call Ghostscript) was never reached


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_allowed_format_loads(tmp_path, fmt):
    _write(tmp_path, [_row(1, image="images/picture.bin")])
    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "images" / "picture.bin", format=fmt)
    assert load_examples(tmp_path)[0].image.endswith("picture.bin")


def test_the_pixel_cap_names_file_row_count_cap_and_how_to_raise_it(tmp_path, monkeypatch):
    _write(tmp_path, [_row(1, image=None), _row(2)])
    monkeypatch.setenv("MMUNLEARN_MAX_IMAGE_PIXELS", "63")
    with pytest.raises(DataError) as info:
        load_examples(tmp_path)
    message = str(info.value)
    assert "forget.jsonl, row 2, field 'image'" in message and "p001.png' has 8×8 = 64" in message
    assert "the cap of 63" in message and "MMUNLEARN_MAX_IMAGE_PIXELS=64" in message
    monkeypatch.setenv("MMUNLEARN_MAX_IMAGE_PIXELS", "64")
    assert len(load_examples(tmp_path)) == 2


def test_rows_holding_line_separators_inside_strings_round_trip(tmp_path):
    """U+2028, U+0085 and friends are line breaks to str.splitlines, not to JSON lines."""
    odd = "a\u2028b\u2029c\x85d\x1ce\x1df\x1eg\x0bh\x0ci"
    examples = [
        Example("a", "Talen Vekor", "forget", f"Who? {odd}", odd),
        Example("b", "Mirith Dor", "retain", "Where?", "Sovek", meta={"note": odd}),
    ]
    save_examples(tmp_path / "rows.jsonl", examples)
    loaded = load_examples(tmp_path / "rows.jsonl")
    assert loaded == examples and loaded[1].meta == {"note": odd}


def test_bytes_that_are_not_utf8_name_the_file_and_row(tmp_path):
    good = json.dumps(_row(1, image=None))
    (tmp_path / "rows.jsonl").write_bytes(good.encode() + b"\n" + good.encode()[:-1] + b'\xff"}\n')
    with pytest.raises(DataError, match=r"rows.jsonl, row 2: bytes b'\\xff' are not UTF-8"):
        load_examples(tmp_path / "rows.jsonl")


def test_derived_data_brings_its_images_inside_its_folder(tmp_path):
    """filter-known writes a subset of some data elsewhere; with bring_images it loads without
    allow_outside_images, and the images are the same bytes."""
    _write(tmp_path / "data", [_row(1), _row(2), _row(3, image=None)])
    examples = load_examples(tmp_path / "data")
    save_examples(tmp_path / "derived" / "forget.jsonl", examples)
    with pytest.raises(DataError, match="leads outside the data folder"):
        load_examples(tmp_path / "derived")
    save_examples(tmp_path / "derived" / "forget.jsonl", examples, bring_images=True)
    first, second, third = load_examples(tmp_path / "derived")
    assert first.image == second.image and third.image is None
    assert Path(first.image).parent == tmp_path / "derived" / "images"
    assert Path(first.image).read_bytes() == Path(examples[0].image).read_bytes()
