"""Rasterise KanjiVG glyphs (PyPI `kanjivg`, CC BY-SA 3.0) into small grayscale images.

KanjiVG stores each character as stroke-ordered SVG paths on a 109x109 canvas. We parse the
path data with `svg.path`, sample each Bezier segment densely, draw round-capped strokes with
Pillow at 4x the target size and downsample with a box filter (anti-aliasing). Ink is 1.0,
paper is 0.0. The result is cached as an .npz under the studio cache directory, keyed by the
rendering settings, so a second run takes well under a second.

Split: a glyph goes to the held-out set when the sha256 of its file name falls in the last
10% of the hash space, so the split is stable across package versions that add characters.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CANVAS = 109.0  # KanjiVG's viewBox side
CACHE_VERSION = 1
_SVG_NS = "{http://www.w3.org/2000/svg}"
_BASE_NAME = re.compile(r"^[0-9a-f]{5}\.svg$")  # skips variants such as 04e14-Kaisho.svg


@dataclass(frozen=True)
class GlyphSet:
    train: np.ndarray  # (N, S, S) float32 in [0, 1], ink = 1
    heldout: np.ndarray  # (M, S, S)
    train_names: list[str]
    heldout_names: list[str]


def cache_dir() -> Path:
    """The studio cache (generators/paths.py)."""
    from generators.paths import cache_root

    return cache_root()


def kanjivg_dir() -> Path:
    """The folder of SVG files that the `kanjivg` wheel installs (top-level `kanji/`)."""
    spec = importlib.util.find_spec("kanji")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        if any(Path(loc).glob("0*.svg")):
            return Path(loc)
    raise FileNotFoundError("the KanjiVG SVG files were not found; install them with "
                            "`pip install kanjivg`")


def glyph_files(folder: Path | None = None) -> list[Path]:
    folder = folder or kanjivg_dir()
    return sorted(p for p in folder.iterdir() if _BASE_NAME.match(p.name))


def _segment_points(seg: object, samples: int) -> np.ndarray:
    """Points along one svg.path segment as an (n, 2) array (vectorised Bezier evaluation)."""
    from svg.path import CubicBezier, Line, QuadraticBezier

    t = np.linspace(0.0, 1.0, samples)[:, None]
    if isinstance(seg, Line):
        p = np.array([[seg.start.real, seg.start.imag], [seg.end.real, seg.end.imag]])
        return p
    if isinstance(seg, CubicBezier):
        c = [np.array([z.real, z.imag]) for z in (seg.start, seg.control1, seg.control2, seg.end)]
        u = 1.0 - t
        return u**3 * c[0] + 3 * u**2 * t * c[1] + 3 * u * t**2 * c[2] + t**3 * c[3]
    if isinstance(seg, QuadraticBezier):
        c = [np.array([z.real, z.imag]) for z in (seg.start, seg.control, seg.end)]
        u = 1.0 - t
        return u**2 * c[0] + 2 * u * t * c[1] + t**2 * c[2]
    pts = [seg.point(float(x)) for x in t[:, 0]]  # arcs and anything else: slow but exact
    return np.array([[z.real, z.imag] for z in pts])


def strokes_of(svg_file: Path) -> list[np.ndarray]:
    """The stroke polylines of one KanjiVG file, in canvas units."""
    from svg.path import Close, Move, parse_path

    strokes: list[np.ndarray] = []
    for el in ET.parse(svg_file).getroot().iter(f"{_SVG_NS}path"):
        d = el.get("d")
        if not d:
            continue
        current: list[np.ndarray] = []
        for seg in parse_path(d):
            if isinstance(seg, Move):
                if current:
                    strokes.append(np.concatenate(current))
                current = []
                continue
            if isinstance(seg, Close):
                continue
            current.append(_segment_points(seg, 12))
        if current:
            strokes.append(np.concatenate(current))
    return strokes


def rasterise(strokes: list[np.ndarray], size: int, stroke_width: float, supersample: int = 4) -> np.ndarray:
    """Draw polylines (canvas units) into a (size, size) float32 image, ink = 1."""
    from PIL import Image, ImageDraw

    big = size * supersample
    scale = big / CANVAS
    width = max(1, int(round(stroke_width * scale)))
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    r = width / 2.0
    for pts in strokes:
        xy = [tuple(p) for p in (pts * scale).tolist()]
        if len(xy) > 1:
            draw.line(xy, fill=255, width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    small = img.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _is_heldout(name: str) -> bool:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF >= 0.9


def load_glyphs(size: int = 32, stroke_width: float = 6.0, limit: int | None = None,
                use_cache: bool = True) -> GlyphSet:
    """All KanjiVG base glyphs at `size` px, split into train / held-out; cached on disk."""
    files = glyph_files()
    if limit is not None:
        files = files[:limit]
    key = f"kanjivg_v{CACHE_VERSION}_{size}px_w{stroke_width:g}_n{len(files)}"
    path = cache_dir() / "gan" / f"{key}.npz"
    if use_cache and path.is_file():
        with np.load(path) as z:
            names = [str(n) for n in z["names"]]
            images = z["images"].astype(np.float32) / 255.0
    else:
        names = [f.name for f in files]
        images = np.stack([rasterise(strokes_of(f), size, stroke_width) for f in files])
        if use_cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, names=np.array(names),
                                images=np.round(images * 255).astype(np.uint8))
            os.replace(tmp, path)
    held = np.array([_is_heldout(n) for n in names])
    return GlyphSet(train=images[~held], heldout=images[held],
                    train_names=[n for n, h in zip(names, held) if not h],
                    heldout_names=[n for n, h in zip(names, held) if h])
