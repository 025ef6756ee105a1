"""Safe image input and output helpers shared by the image generators.

Loading follows Pillow's own decompression-bomb defence (`Image.open` is lazy: it reads only the
header), but with the studio's much lower caps: the pixel count and side lengths are checked from
the header *before* any pixel is decoded, and only common raster formats are tried (no EPS/PDF
via Ghostscript, no exotic plugins). The "parameters" text follows AUTOMATIC1111's stable-diffusion
webui infotext format (`modules/processing.py: create_infotext`), which many tools read back.

PIL is imported inside functions so importing this module stays cheap.
"""
from __future__ import annotations

import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

from generators.base import InvalidInput
from generators.inputs import check_file

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image

# Defaults: a 16-megapixel photo (e.g. 4896x3264) loads; an 8k x 8k poster does not.
MAX_PIXELS: int = 16_777_216  # 4096 * 4096
MAX_SIDE: int = 8192  # longest side in pixels, also catches absurd 1 x 10^7 strips
MAX_FILE_BYTES: int = 50 * 1024 * 1024  # an upload larger than this is refused before reading
# Raster formats tried when opening; everything else is refused as "not an image".
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")

ImageSource = Union[str, "os.PathLike[str]", bytes, "Image.Image"]


def _describe(src: Any) -> str:
    if isinstance(src, (str, os.PathLike)):
        return f"'{Path(src).name}'"
    return "the image"


def check_size(width: int, height: int, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
               what: str = "the image") -> None:
    """Raise InvalidInput when a width x height is empty or larger than the caps."""
    if width <= 0 or height <= 0:
        raise InvalidInput(f"{what} has no pixels ({width}x{height})")
    if max(width, height) > max_side:
        raise InvalidInput(f"{what} is {width}x{height} pixels; the longest side may be at most "
                           f"{max_side} pixels. Resize it and try again.")
    if width * height > max_pixels:
        raise InvalidInput(f"{what} is {width}x{height} = {width * height / 1e6:.1f} megapixels; "
                           f"the limit is {max_pixels / 1e6:.1f} megapixels. Resize it and try again.")


def _open_lazy(src: ImageSource, max_file_bytes: int) -> "Image.Image":
    """Open the header only (no pixel decoding), refusing non-images and oversized files."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(src, Image.Image):
        return src
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) > max_file_bytes:
            raise InvalidInput(f"the image file is {len(src) / 2**20:.1f} MB; the limit is "
                               f"{max_file_bytes / 2**20:.0f} MB")
        fp: Any = io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)):
        fp = check_file(src, "image", max_file_bytes)
    else:
        raise InvalidInput(f"an image must be a file path, bytes or a PIL image, got {type(src).__name__}")
    try:
        with warnings.catch_warnings():
            # Our own caps (checked right after) are far stricter than Pillow's warning level.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp, formats=list(ALLOWED_FORMATS))
    except Image.DecompressionBombError:
        raise InvalidInput(f"{_describe(src)} declares an enormous size (a 'decompression bomb'); "
                           f"it was refused before decoding") from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{_describe(src)} is not an image this studio reads "
                           f"({', '.join(ALLOWED_FORMATS)})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{_describe(src)} could not be read as an image: {exc}") from None


def check_image_file(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
                     max_file_bytes: int = MAX_FILE_BYTES) -> tuple[int, int]:
    """(width, height) of an image file read from its header only, or InvalidInput when it is
    not an image, too large a file, or too many pixels. Nothing is decoded."""
    img = _open_lazy(path, max_file_bytes)
    try:
        check_size(*img.size, max_pixels=max_pixels, max_side=max_side, what=_describe(path))
        return img.size
    finally:
        img.close()


def _to_rgb(img: "Image.Image") -> "Image.Image":
    """RGB, with transparency composited onto white (what a creator sees in a viewer)."""
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the value range into 8 bits rather than clip it.
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        return Image.fromarray((arr * (255.0 / max(hi, 255.0))).round().astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def load_image(src: ImageSource, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
               max_file_bytes: int = MAX_FILE_BYTES, mode: str = "RGB",
               what: str | None = None) -> "Image.Image":
    """Load an upload safely and return a decoded PIL image in `mode` ("RGB" or "L").

    The size is read from the header and checked against `max_pixels` / `max_side` before any
    pixel is decoded; non-images, truncated files, unknown formats and decompression bombs raise
    `InvalidInput`. EXIF orientation is applied; animated images give their first frame.
    """
    from PIL import Image, ImageOps

    label = what or _describe(src)
    img = _open_lazy(src, max_file_bytes)
    width, height = img.size
    try:
        check_size(width, height, max_pixels=max_pixels, max_side=max_side, what=label)
    except InvalidInput:
        if img is not src:
            img.close()
        raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            if img is src:  # never modify the caller's image
                img = ImageOps.exif_transpose(img)
            else:
                ImageOps.exif_transpose(img, in_place=True)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{label} is damaged or truncated and could not be decoded: {exc}") from None
    if mode == "RGB":
        out = _to_rgb(img)
    elif mode == "L":
        out = _to_rgb(img).convert("L") if img.mode not in ("L", "1") else img.convert("L")
    else:
        raise ValueError(f"unsupported mode {mode!r}")
    return out.copy() if out is img and isinstance(src, Image.Image) else out


def load_mask(src: ImageSource, *, size: tuple[int, int], max_file_bytes: int = MAX_FILE_BYTES,
              what: str = "the mask") -> "Image.Image":
    """Load an inpainting mask as mode "L" (white = repaint); it must match `size` exactly.

    A mask with an alpha channel (a stroke layer drawn in the UI) uses the alpha as the mask.
    """
    from PIL import Image

    width, height = size
    img = _open_lazy(src, max_file_bytes)
    if img.size != (width, height):
        if img is not src:
            img.close()
        raise InvalidInput(f"{what} is {img.size[0]}x{img.size[1]} pixels but the image is "
                           f"{width}x{height}; draw the mask on the same image")
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{what} is damaged or truncated and could not be decoded: {exc}") from None
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        alpha = img.getchannel("A")
        lo, hi = alpha.getextrema()
        if lo != hi:  # a real stroke layer: painted pixels are opaque
            return alpha
        img = img.convert("RGB")
    mask = img.convert("L")
    return mask if mask is not img else mask.copy()


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------
def _quote(text: str) -> str:
    """A1111's `quote()`: JSON-quote a value only when it contains a separator."""
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def a1111_parameters(prompt: str = "", negative: str = "", steps: int | None = None,
                     sampler: str | None = None, cfg: float | None = None, seed: int | None = None,
                     size: tuple[int, int] | None = None, model: str | None = None,
                     extra: Mapping[str, Any] | None = None) -> str:
    """The AUTOMATIC1111 "parameters" text: prompt, "Negative prompt: ...", then "Key: value, ...".

    `size` is (width, height). `extra` adds more "Key: value" pairs in order (e.g.
    {"Denoising strength": 0.75}); None values are left out. Values with commas, colons or
    newlines are JSON-quoted as A1111 does, so the line parses back.
    """
    fields: list[tuple[str, Any]] = [("Steps", steps), ("Sampler", sampler), ("CFG scale", cfg),
                                     ("Seed", seed),
                                     ("Size", f"{size[0]}x{size[1]}" if size else None),
                                     ("Model", model)]
    fields.extend((extra or {}).items())
    parts = []
    for key, value in fields:
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{key}: {_quote(str(value))}")
    lines = [prompt.strip()]
    if negative.strip():
        lines.append(f"Negative prompt: {negative.strip()}")
    if parts:
        lines.append(", ".join(parts))
    return "\n".join(lines)


def make_grid(images: Sequence["Image.Image"], *, cols: int | None = None,
              background: tuple[int, int, int] = (255, 255, 255)) -> "Image.Image":
    """Tile images (of any sizes) into one RGB grid, row-major, near-square by default."""
    from PIL import Image

    if not images:
        raise ValueError("make_grid needs at least one image")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cell_w = max(im.width for im in images)
    cell_h = max(im.height for im in images)
    grid = Image.new("RGB", (cols * cell_w, rows * cell_h), background)
    for i, im in enumerate(images):
        grid.paste(im.convert("RGB"), ((i % cols) * cell_w, (i // cols) * cell_h))
    return grid


def png_text(path_or_bytes: Union[str, "os.PathLike[str]", bytes]) -> dict[str, str]:
    """The text chunks of a PNG (e.g. "parameters"), for tests and for reading settings back."""
    from PIL import Image

    fp: Any = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(fp, formats=["PNG"]) as img:
        return dict(getattr(img, "text", {}) or {})


__all__ = ["MAX_PIXELS", "MAX_SIDE", "MAX_FILE_BYTES", "ALLOWED_FORMATS", "check_size", "check_image_file",
           "load_image", "load_mask", "a1111_parameters", "make_grid", "png_text"]
