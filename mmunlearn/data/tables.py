"""Reading benchmarks in their published layouts: parquet shards, JSON / JSON-lines QA files,
and image bytes turned into files (`Example.image` is a path).

Every error is a `DataError` naming the file, the row and the field, like the JSONL loader's.
Parquet rows are numbered from 0, as pandas and the Hugging Face viewer number them; JSON-lines
rows by line number from 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mmunlearn.data.example import Example
from mmunlearn.data.images import CACHE, ImageError, decode_image
from mmunlearn.data.jsonl import DataError, read_text
from mmunlearn.io import atomic_write_bytes, default_cache_dir

log = logging.getLogger(__name__)

Row = tuple[str, dict[str, Any]]  # ("<file>, row <n>", the row's fields)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def read_parquet_rows(folder: Path, required: tuple[str, ...], what: str) -> list[Row]:
    """Every row of every `*.parquet` file in `folder` (shards in name order), after checking
    that each file has the `required` columns; `what` names the expected split in errors."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found (expected {what})")
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise DataError(f"{folder}: no *.parquet files (expected {what})")
    rows: list[Row] = []
    for file in files:
        try:
            table = pq.read_table(file)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{file}: not a readable parquet file ({exc})") from None
        missing = [name for name in required if name not in table.column_names]
        if missing:
            raise DataError(
                f"{file}: missing column(s) {', '.join(map(repr, missing))} "
                f"(has {', '.join(table.column_names) or 'none'}); expected {what}"
            )
        rows += [(f"{file}, row {i}", row) for i, row in enumerate(table.to_pylist())]
    if not rows:
        raise DataError(f"{folder}: the split has no rows (expected {what})")
    return rows


def with_progress(rows: list[Row], desc: str) -> Any:
    """`rows` under a progress bar when there are enough to wait for (image decoding)."""
    return tqdm(rows, desc=desc, unit="row", leave=False, disable=len(rows) < 100)


def read_json_rows(path: Path, what: str) -> list[Row]:
    """Rows of a JSON list or of a JSON-lines file (TOFU ships JSON lines named `.json`)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected {what})")
    text = read_text(path)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # not one JSON document: read it as JSON lines below
    if isinstance(whole, list):
        rows = [(f"{path}, item {i}", row) for i, row in enumerate(whole)]
    elif isinstance(whole, dict):
        rows = [(f"{path}, line 1", whole)]
    else:
        rows = []
        for number, line in enumerate(text.split("\n"), start=1):  # not U+2028 etc.
            if not line.strip():
                continue
            try:
                rows.append((f"{path}, line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}, line {number}: invalid JSON ({exc}); expected a JSON list or one "
                    "JSON object per line"
                ) from None
    for where, row in rows:
        if not isinstance(row, dict):
            raise DataError(f"{where}: {show(row)} is not a JSON object (expected {what})")
    if not rows:
        raise DataError(f"{path}: the split has no rows (expected {what})")
    return rows


def text_field(row: dict[str, Any], name: str, where: str, path: str = "") -> str:
    """`row[name]` as a non-empty string, or a DataError naming the row and the field; `path`
    prefixes nested fields (`"Generation_Task[2]."`)."""
    if name not in row:
        raise DataError(f"{where}: missing field '{path}{name}' (expected a non-empty string)")
    value = row[name]
    if not isinstance(value, str) or not value.strip():
        raise DataError(
            f"{where}, field '{path}{name}': {show(value)} (expected a non-empty string)"
        )
    return value


def text_list(row: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    """`row[name]` as a tuple of strings (absent or null: empty)."""
    value = row.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}, field {name!r}: {show(value)} (expected a list of strings)")
    return tuple(value)


def default_image_dir() -> Path:
    return default_cache_dir() / "images"


class ImageStore:
    """Writes image bytes to `folder` under their content hash (so a shared folder never holds
    two copies, and a second load writes nothing) and returns the file's path. Bytes that do not
    decode are a DataError naming where they came from."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_image_dir()
        self._paths: dict[str, str] = {}  # sha256 -> path, each blob decoded once per load

    def save(self, value: Any, where: str) -> str:
        """`value`: raw bytes or a Hugging Face image struct `{"bytes": ..., "path": ...}`."""
        data = value.get("bytes") if isinstance(value, dict) else value
        if not isinstance(data, bytes | bytearray) or not data:
            raise DataError(
                f"{where}: {show(value)} (expected image bytes or a {{'bytes': ..., 'path': ...}} "
                "struct with bytes)"
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self._paths:
            try:
                image, kind = decode_image(bytes(data))
            except ImageError as error:
                raise DataError(f"{where}: {len(data)} bytes that {error}") from None
            kind = kind.lower()
            path = self.folder / f"{digest[:32]}.{'jpg' if kind == 'jpeg' else kind}"
            if not path.is_file():
                atomic_write_bytes(path, bytes(data))
                CACHE.add(path, image)  # training reads the file: decoded once, here
            self._paths[digest] = str(path)
        return self._paths[digest]


def check_split_choice(
    benchmark: str,
    forget_percent: int,
    percents: tuple[int, ...],
    **chosen: tuple[tuple[str, ...], tuple[str, ...]],
) -> None:
    """Refuse a forget percentage not in `percents`, and any name of `chosen[option] = (names,
    known)` not among its known ones, naming the benchmark, the option and the allowed values."""
    if forget_percent not in percents:
        raise ValueError(
            f"{benchmark}: forget_percent={forget_percent!r}; expected one of {percents}"
        )
    for option, (names, known) in chosen.items():
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"{benchmark}: unknown {option} {unknown}; expected some of {known}")


def default_sets(
    required: tuple[str, ...], optional: tuple[str, ...], present: Callable[[str], bool]
) -> tuple[str, ...]:
    """The sets a loader reads when none are named: the required ones, and the optional ones
    whose files are there."""
    return required + tuple(name for name in optional if present(name))


def check_unique_ids(examples: list[Example], source: str) -> None:
    """Record ids are built from the published ids; a repeat means a repeated row in the data."""
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DataError(
                f"{source}: record id {example.id!r} occurs twice (set {example.meta.get('set')!r}); "
                "expected each person / question once per split"
            )
        seen.add(example.id)
