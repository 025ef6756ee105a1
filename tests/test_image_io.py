"""Safe image loading (decompression bombs, non-images, sizes), masks, A1111 text, grids."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from generators.base import InvalidInput
from generators.image_io import a1111_parameters, load_image, load_mask, make_grid, png_text


def png_header_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but whose data is a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [5000, 20000, 100000])
def test_decompression_bomb_refused_before_decoding(tmp_path: Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_bomb(side, side))
    with pytest.raises(InvalidInput, match="megapixels|decompression bomb|longest side"):
        load_image(path)


def test_real_zlib_bomb_is_refused(tmp_path: Path) -> None:
    # A genuine bomb: 8000x8000 one-bit pixels compress to a few KB.
    path = tmp_path / "zbomb.png"
    Image.new("1", (8000, 8000)).save(path)
    assert path.stat().st_size < 100_000
    with pytest.raises(InvalidInput, match="megapixels"):
        load_image(path)


def test_strip_too_long_and_custom_cap(tmp_path: Path) -> None:
    path = tmp_path / "strip.png"
    Image.new("RGB", (9000, 2)).save(path)
    with pytest.raises(InvalidInput, match="longest side"):
        load_image(path)
    small = tmp_path / "small.png"
    Image.new("RGB", (100, 100)).save(small)
    with pytest.raises(InvalidInput, match="megapixels"):
        load_image(small, max_pixels=5000)


def test_non_image_and_missing_and_truncated(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("hello, I am not a picture")
    with pytest.raises(InvalidInput, match="not an image"):
        load_image(text)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_image(tmp_path / "nope.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty"):
        load_image(empty)
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, format="PNG")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InvalidInput, match="damaged|truncated|could not"):
        load_image(truncated)
    eps = tmp_path / "x.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(InvalidInput, match="not an image"):
        load_image(eps)


def test_modes_become_rgb(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 6), (255, 0, 0, 0))
    out = load_image(rgba)
    assert out.mode == "RGB" and out.size == (8, 6)
    assert out.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white background
    grey16 = Image.new("I;16", (4, 4), 60000)
    p = tmp_path / "g16.png"
    grey16.save(p)
    assert load_image(p).getpixel((1, 1)) == (255, 255, 255)
    jpg = tmp_path / "c.jpg"
    Image.new("CMYK", (5, 5), (0, 255, 255, 0)).save(jpg)
    assert load_image(jpg).mode == "RGB"
    assert load_image(jpg.read_bytes()).size == (5, 5)


def test_mask_size_must_match(tmp_path: Path) -> None:
    mask = tmp_path / "mask.png"
    Image.new("L", (32, 16), 255).save(mask)
    assert load_mask(mask, size=(32, 16)).mode == "L"
    with pytest.raises(InvalidInput, match="32x16 pixels but the image is 64x64"):
        load_mask(mask, size=(64, 64))
    strokes = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    strokes.putpixel((3, 3), (255, 255, 255, 255))
    m = load_mask(strokes, size=(10, 10))
    assert m.getpixel((3, 3)) == 255 and m.getpixel((0, 0)) == 0


def test_a1111_parameters_format_and_png_roundtrip() -> None:
    text = a1111_parameters("a red fox, snow", "blurry", 20, "Euler a", 7.5, 42, (512, 768),
                            "runwayml/sd", {"Denoising strength": 0.75, "Note": "a: b", "Skip": None})
    assert text == ("a red fox, snow\nNegative prompt: blurry\n"
                    'Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x768, '
                    'Model: runwayml/sd, Denoising strength: 0.75, Note: "a: b"')
    assert a1111_parameters("cat", seed=1) == "cat\nSeed: 1"
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG", pnginfo=info)
    assert png_text(buf.getvalue())["parameters"] == text


def test_grid() -> None:
    ims = [Image.new("RGB", (10, 8), (i * 40, 0, 0)) for i in range(5)]
    grid = make_grid(ims)
    assert grid.size == (30, 16)
    assert grid.getpixel((25, 2)) == (80, 0, 0)  # third image, first row
    assert grid.getpixel((25, 12)) == (255, 255, 255)  # empty cell


def test_exif_orientation_and_animation_first_frame(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    assert load_image(path).size == (20, 40)
    frames = [Image.new("RGB", (8, 8), c) for c in ((0, 0, 255), (0, 255, 0))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    assert load_image(gif).getpixel((0, 0)) == (0, 0, 255)
