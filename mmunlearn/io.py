"""Atomic file writes: a reader never sees a half-written file, even if the writer dies mid-way."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from PIL import Image


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write through `write` into a temp file in the same folder, fsync it, then rename it over
    `path` (os.replace is atomic only within one file system, hence the same folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Strict JSON (no bare NaN or Infinity, which strict parsers reject): see `finite_json`."""
    text = json.dumps(finite_json(obj), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def json_line(obj: Any) -> str:
    """One strict JSON line (a JSONL row): see `finite_json`."""
    return json.dumps(finite_json(obj), ensure_ascii=False, allow_nan=False) + "\n"


def finite_json(obj: Any) -> Any:
    """`obj` with each NaN or infinite float replaced by null. In a mapping the reason goes
    beside it: `{"auc": nan}` becomes `{"auc": null, "not_finite": {"auc": "nan"}}`."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        reasons = {
            str(key): str(value)
            for key, value in obj.items()
            if isinstance(value, float) and not math.isfinite(value)
        }
        clean = {key: finite_json(value) for key, value in obj.items()}
        return {**clean, "not_finite": reasons} if reasons else clean
    if isinstance(obj, list | tuple):
        return [finite_json(value) for value in obj]
    return obj


def atomic_save_image(path: str | os.PathLike, image: Image.Image) -> None:
    """Save a PIL image; the format follows the file's extension (`.png`, `.jpg`, ...)."""
    suffix = Path(path).suffix.lower()
    image_format = Image.registered_extensions().get(suffix)
    if image_format is None:
        raise ValueError(
            f"atomic_save_image: path={str(path)!r} has extension {suffix!r}; expected an image "
            "extension such as '.png' or '.jpg'"
        )
    _atomic_write(path, lambda handle: image.save(handle, format=image_format))


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The JSON document in `path`; a file that is not UTF-8 JSON (truncated by a killed writer,
    damaged, edited by hand) is a ValueError naming the file and `what` it should hold."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a valid JSON file ({error}); expected {what}") from None


def default_cache_dir() -> Path:
    """Where built models are cached: `$MMUNLEARN_CACHE`, else ~/.cache/mmunlearn."""
    return Path(os.environ.get("MMUNLEARN_CACHE", Path.home() / ".cache" / "mmunlearn"))
