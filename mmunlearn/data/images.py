"""Opening image files safely: paths stay inside the data folder, formats are an allow-list read
from the file's contents, a pixel cap holds before any decoding, and each file is decoded once.

PIL recognises dozens of formats and hands some to outside programs (EPS goes to Ghostscript), so
a file is only opened with the decoders of `FORMATS`: what the benchmarks ship. The format is
read from the bytes, never from the name, so an EPS file named `.png` is refused unopened.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import OrderedDict
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# PIL's names of the formats mmunlearn decodes (GIF and animated WebP: the first frame).
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
DEFAULT_MAX_PIXELS = 50_000_000  # width × height; below PIL's own decompression-bomb warning
MAX_PIXELS_VARIABLE = "MMUNLEARN_MAX_IMAGE_PIXELS"
CACHE_BYTES = 512 * 2**20  # decoded RGB images kept in memory (least recently used go first)


class ImageError(ValueError):
    """An image that may not or cannot be used; the message says which file and why."""


def max_pixels() -> int:
    """The pixel cap: `$MMUNLEARN_MAX_IMAGE_PIXELS`, else `DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(MAX_PIXELS_VARIABLE)
    if value is None:
        return DEFAULT_MAX_PIXELS
    if not value.strip().isdigit() or int(value) <= 0:
        raise ValueError(f"{MAX_PIXELS_VARIABLE}={value!r}; expected a positive whole number")
    return int(value)


def resolve_inside(folder: Path, relative: str, allow_outside: bool = False) -> Path:
    """`relative` (a path as written in a data file) resolved against `folder`. Unless
    `allow_outside`, the result with every symbolic link followed must lie inside `folder`
    (itself resolved), or an ImageError is raised. The message is the same whether or not the
    outside path exists, so a data file cannot probe the host."""
    joined = Path(os.path.normpath(folder.absolute() / relative))
    if allow_outside:
        return joined
    inside = joined.is_relative_to(os.path.normpath(folder.absolute()))  # by name: '..', '/'
    if inside:
        try:  # then with links followed; nothing outside the folder is looked at before this
            inside = joined.resolve().is_relative_to(folder.resolve())
        except (OSError, RuntimeError):  # a loop of links inside the folder
            inside = False
    if not inside:
        raise ImageError(
            f"{relative!r} leads outside the data folder {folder} (absolute paths, '..' and "
            "symbolic links that leave it are refused); put the image inside the folder, or "
            "allow images outside it with --data-option allow_outside_images=true"
        )
    return joined


def _open(source: Path | bytes) -> Image.Image:
    """The file opened with the allowed decoders only, its size checked against the cap; no
    pixels are decoded yet."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            # the cap below is the limit that applies; PIL's warning would only repeat it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(handle, formats=FORMATS)
    except FileNotFoundError:
        raise ImageError("does not exist") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"is not a readable image in an allowed format ({', '.join(FORMATS)}; the format "
            "is read from the contents, not the file name)"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"is not a readable image ({type(exc).__name__}: {exc})") from None
    width, height = image.size
    cap = max_pixels()
    if width * height > cap:
        image.close()
        raise ImageError(
            f"has {width}×{height} = {width * height:,} pixels, more than the cap of {cap:,}; "
            f"shrink the image, or raise the cap with {MAX_PIXELS_VARIABLE}={width * height}"
        )
    return image


def decode_image(source: Path | bytes) -> tuple[Image.Image, str]:
    """The file or bytes decoded (not cached) as RGB, with PIL's name of its format (`"PNG"`,
    ...); an ImageError says why they cannot be used."""
    image = _open(source)
    try:
        with image, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.seek(0)  # the first frame of a GIF or animated WebP
            return image.convert("RGB"), image.format
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"is not a readable image ({type(exc).__name__}: {exc})") from None


class ImageCache:
    """Decoded RGB images by file (path, size and modification time), least recently used
    dropped first past `max_bytes`; a file changed on disk is decoded again."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._images: OrderedDict[tuple[str, int, int], Image.Image] = OrderedDict()
        self._bytes = 0
        self.decoded = 0  # how many decodes ran (tests check that repeats hit the cache)

    def open(self, path: str | os.PathLike) -> Image.Image:
        """The RGB image at `path`; callers must not modify it (it is shared)."""
        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            raise ImageError("does not exist") from None
        key = (str(path.absolute()), stat.st_size, stat.st_mtime_ns)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        image, _ = decode_image(path)
        self.decoded += 1
        self._keep(key, image)
        return image

    def add(self, path: str | os.PathLike, image: Image.Image) -> None:
        """Remember `image` (RGB) as the contents of the file `path` just written from the bytes
        it was decoded from, so the file is not decoded again."""
        stat = Path(path).stat()
        self._keep((str(Path(path).absolute()), stat.st_size, stat.st_mtime_ns), image)

    def _keep(self, key: tuple[str, int, int], image: Image.Image) -> None:
        self._images[key] = image
        self._bytes += image.width * image.height * 3
        while self._bytes > self.max_bytes and len(self._images) > 1:
            _, old = self._images.popitem(last=False)
            self._bytes -= old.width * old.height * 3


CACHE = ImageCache()  # one per process: a run decodes each image file once


def open_image(path: str | os.PathLike) -> Image.Image:
    """The RGB image at `path`, decoded at most once per process while it stays in the cache.
    Raises ImageError (a ValueError) naming the problem: not found, a format outside `FORMATS`,
    more pixels than the cap, undecodable."""
    try:
        return CACHE.open(path)
    except ImageError as error:
        raise ImageError(f"image {str(path)!r} {error}") from None
