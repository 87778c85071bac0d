import os

import pytest
from PIL import Image

from mmunlearn.data.images import ImageCache, ImageError, decode_image, open_image


def test_the_cache_decodes_a_file_once_and_again_after_it_changes(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (4, 4), (10, 20, 30)).save(path)
    cache = ImageCache()
    first = cache.open(path)
    assert cache.open(path) is first and cache.decoded == 1
    Image.new("RGB", (4, 4), (99, 20, 30)).save(path)
    os.utime(path, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    assert cache.open(path).getpixel((0, 0)) == (99, 20, 30) and cache.decoded == 2


def test_the_cache_drops_the_least_recently_used_past_its_size(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (4, 4)).save(paths[-1])
    cache = ImageCache(max_bytes=2 * 4 * 4 * 3)  # room for two
    for path in (paths[0], paths[1], paths[0], paths[2]):  # 1 is now the oldest
        cache.open(path)
    assert cache.decoded == 3
    cache.open(paths[0])
    assert cache.decoded == 3
    cache.open(paths[1])
    assert cache.decoded == 4


def test_a_gif_gives_its_first_frame_as_rgb(tmp_path):
    frames = [Image.new("P", (4, 4), i) for i in (3, 7)]
    frames[0].putpalette([v for i in range(256) for v in (i, 0, 255 - i)])
    frames[1].putpalette([v for i in range(256) for v in (0, i, 0)])
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    image, kind = decode_image(path)
    assert kind == "GIF" and image.mode == "RGB" and image.getpixel((0, 0)) == (3, 0, 252)


def test_open_image_names_the_file(tmp_path):
    (tmp_path / "a.png").write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")  # a PPM under a PNG name
    with pytest.raises(ImageError, match=r"a.png' is not a readable image in an allowed format"):
        open_image(tmp_path / "a.png")
    with pytest.raises(ImageError, match=r"b.png' does not exist"):
        open_image(tmp_path / "b.png")
    assert isinstance(ImageError("x"), ValueError)  # a user error to the CLI


def test_a_pixel_cap_that_is_not_a_number_is_refused(tmp_path, monkeypatch):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    monkeypatch.setenv("MMUNLEARN_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="MMUNLEARN_MAX_IMAGE_PIXELS='lots'; expected a positive"):
        decode_image(tmp_path / "a.png")


def test_benchmark_image_bytes_outside_the_allow_list_are_refused(tmp_path):
    import io

    from mmunlearn.data.jsonl import DataError
    from mmunlearn.data.tables import ImageStore

    ppm = io.BytesIO()
    Image.new("RGB", (4, 4)).save(ppm, format="PPM")
    store = ImageStore(tmp_path)
    with pytest.raises(DataError, match="shard.parquet, row 3, field 'image': .* allowed format"):
        store.save({"bytes": ppm.getvalue()}, "shard.parquet, row 3, field 'image'")
    assert list(tmp_path.iterdir()) == []


def test_benchmark_images_written_from_bytes_are_not_decoded_again(tmp_path):
    import io

    from mmunlearn.data.images import CACHE
    from mmunlearn.data.tables import ImageStore

    png = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(png, format="PNG")
    path = ImageStore(tmp_path).save({"bytes": png.getvalue()}, "shard, row 0")
    before = CACHE.decoded
    assert open_image(path).getpixel((0, 0)) == (1, 2, 3)
    assert CACHE.decoded == before
