"""The project's own data format: one JSON object per line (all `Example` fields), images as
files whose paths are relative to the JSONL file's folder. Users' own data goes through here."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mmunlearn.data.example import ROLES, Example
from mmunlearn.data.images import ImageError, open_image, resolve_inside
from mmunlearn.io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

FIELDS = tuple(f.name for f in dataclasses.fields(Example))
REQUIRED = ("id", "entity", "role", "question", "answer")
LIST_FIELDS = ("alt_answers", "paraphrases", "options")


class DataError(ValueError):
    """A data file that cannot become Example records; the message names file, row and field."""


def save_examples(
    path: str | os.PathLike,
    examples: Iterable[Example],
    root: str | os.PathLike | None = None,
    bring_images: bool = False,
) -> None:
    """Write `examples` as JSONL. Absolute image paths are stored relative to `root` (default:
    the file's folder, which is where `load_examples` resolves them); relative ones as they are.

    `load_examples` refuses images outside the file's folder; with `bring_images`, each image
    file outside it is linked (or copied) into `<folder>/images/` under its content hash, so
    the file loads wherever the images came from (derived data: `mmunlearn filter-known`)."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    if bring_images:
        brought: dict[str, str] = {}  # each image file is read once
        examples = [_brought(ex, path.parent, brought) for ex in examples]
    lines = [json.dumps(_to_row(ex, root), ensure_ascii=False) + "\n" for ex in examples]
    atomic_write_text(path, "".join(lines))


def _brought(example: Example, folder: Path, brought: dict[str, str]) -> Example:
    """`example` with its image inside `folder`; `brought` maps each image to where it is."""
    if example.image is None:
        return example
    if example.image not in brought:
        brought[example.image] = _bring(Path(example.image), folder)
    return dataclasses.replace(example, image=brought[example.image])


def _bring(source: Path, folder: Path) -> str:
    """The image file `source` as a path inside `folder`: itself, or a link (else a copy) in
    `folder/images/` named by its content hash."""
    if source.resolve().is_relative_to(folder.resolve()):
        return str(source)
    data = source.read_bytes()
    target = folder / "images" / f"{hashlib.sha256(data).hexdigest()[:32]}{source.suffix}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system, or links not allowed: a copy
            atomic_write_bytes(target, data)
    return str(target.absolute())


def _to_row(example: Example, root: Path) -> dict[str, Any]:
    row = {name: getattr(example, name) for name in FIELDS}
    row.update({name: list(row[name]) for name in LIST_FIELDS}, meta=dict(example.meta))
    if example.image is not None and Path(example.image).is_absolute():
        row["image"] = Path(os.path.relpath(example.image, root.absolute())).as_posix()
    return row


def load_examples(path: str | os.PathLike, allow_outside_images: bool = False) -> list[Example]:
    """Read a `.jsonl` file, or every `*.jsonl` of a folder in sorted order, into validated
    records whose image paths are absolute. Image paths must lead inside the JSONL file's folder
    (symbolic links followed) unless `allow_outside_images`; each image is decoded once, here,
    and checked as `images.open_image` does (allowed formats, pixel cap)."""
    path = Path(path)
    files = jsonl_files(path)
    first_seen: dict[str, str] = {}  # id -> "file, row n" where it first appeared
    examples: list[Example] = []
    for file in files:
        for number, line in enumerate(read_lines(file), start=1):
            if not line.strip():
                continue
            where = f"{file}, row {number}"
            example = _parse_line(line, where, file.parent.absolute(), allow_outside_images)
            if example.id in first_seen:
                raise DataError(
                    f"{where}, field 'id': duplicate id {example.id!r} "
                    f"(first used at {first_seen[example.id]}); expected unique ids"
                )
            first_seen[example.id] = where
            examples.append(example)
    logger.info("loaded %d records from %d file(s) under %s", len(examples), len(files), path)
    return examples


def jsonl_files(path: Path) -> list[Path]:
    """The `.jsonl` file `path`, or every `*.jsonl` of the folder `path` in sorted order."""
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DataError(f"{path}: folder has no *.jsonl files")
        return files
    if path.is_file() and path.suffix == ".jsonl":
        return [path]
    raise DataError(f"{path}: expected an existing .jsonl file or a folder of them")


def row_locator(path: str | os.PathLike) -> Callable[[Example], str]:
    """`locate(example)` → "<file>, row <n>" for records `load_examples(path)` read; the files
    are read again on the first call only (error messages need it, runs that pass do not)."""

    @functools.cache
    def rows() -> dict[str, str]:
        found = {}
        for file in jsonl_files(Path(path)):
            for number, line in enumerate(read_lines(file), start=1):
                if line.strip():
                    row = json.loads(line)
                    found.setdefault(str(row.get("id")), f"{file}, row {number}")
        return found

    return lambda example: rows().get(example.id, f"{path} (row not found)")


def read_lines(file: Path) -> list[str]:
    """The file's lines, split on '\\n' alone: JSON strings may hold U+2028, U+0085 and the other
    characters `str.splitlines` also breaks at."""
    return read_text(file).split("\n")


def read_text(file: Path) -> str:
    """The file as UTF-8 text; bytes that are not UTF-8 are a DataError naming the file and the
    row (line) they are on."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{file}, row {row}: bytes {data[exc.start : exc.end]!r} are not UTF-8 ({exc.reason}); "
            "expected a UTF-8 text file"
        ) from None
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_line(line: str, where: str, folder: Path, allow_outside_images: bool) -> Example:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{where}: invalid JSON ({exc}); expected one JSON object per line"
        ) from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: {_show(row)} is not a JSON object; expected one object per line")
    unknown = [name for name in row if name not in FIELDS]
    if unknown:
        raise DataError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed fields: {', '.join(FIELDS)}"
        )

    def bad(name: str, expected: str) -> DataError:
        return DataError(f"{where}, field {name!r}: {_show(row[name])} ({expected})")

    for name in REQUIRED:
        if name not in row:
            raise DataError(f"{where}: missing field {name!r} (expected a non-empty string)")
        if not isinstance(row[name], str) or not row[name].strip():
            raise bad(name, "expected a non-empty string")
    if row["role"] not in ROLES:
        raise bad("role", f"expected one of {', '.join(ROLES)}")
    for name in LIST_FIELDS:
        value = row.setdefault(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad(name, "expected a list of strings")
    if not isinstance(row.setdefault("meta", {}), dict):
        raise bad("meta", "expected a JSON object")
    image = row.setdefault("image", None)
    if image is not None:
        if not isinstance(image, str) or not image.strip():
            raise bad("image", "expected a file path relative to the JSONL file's folder, or null")
        try:
            resolved = resolve_inside(folder, image, allow_outside_images)
            open_image(resolved)  # decoded into the run's image cache, which the encoder reads
        except ImageError as error:
            raise DataError(f"{where}, field 'image': {error}") from None
        row["image"] = str(resolved)
    return Example(**{**row, **{name: tuple(row[name]) for name in LIST_FIELDS}})
