"""Pen-stroke data sets for Sketch-RNN, built from data that PyPI packages ship.

* ``kanji``   - KanjiVG (PyPI `kanjivg`, CC BY-SA 3.0, Ulrich Apel): 6,703 stroke-ordered
  characters as SVG paths in a 109x109 box. Cubic Beziers are sampled densely, then simplified.
* ``hershey`` - the Hershey fonts (PyPI `Hershey-Fonts`, public domain, A. V. Hershey / NBS):
  single-stroke glyphs of 32 built-in fonts; empty and duplicate glyphs are dropped.

As in the paper (Ha & Eck, 2018, sec. 3.1), each drawing is put in a 255-unit frame,
simplified with Ramer-Douglas-Peucker (epsilon 2.0), and stored as stroke-3 offsets; the model
later divides offsets by one scale factor (their standard deviation over the training set).
The split is fixed: a hash of each item's name puts it in train (90%), valid (5%) or test (5%).
Results are cached as .npz under <studio cache>/sketch/ (generators/paths.py).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators.sketch_strokes import FRAME, simplify, strokes_to_stroke3

DATASETS = ("kanji", "hershey")
RDP_EPSILON = 2.0  # in frame units, as the paper's Quick, Draw! preprocessing
CACHE_VERSION = 1
KANJI_BOX = 109.0  # KanjiVG's viewBox side
HERSHEY_BOX = 32.0  # Hershey glyph frame: cap line -12 to bottom line 16 plus a margin


@dataclass
class StrokeSet:
    """One data set split: names and stroke-3 arrays in frame units (origin = frame centre)."""

    names: list[str]
    drawings: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.drawings)


def cache_dir() -> Path:
    """<studio cache>/sketch (generators/paths.py)."""
    from generators.paths import cache_path

    return cache_path("sketch")


def split_of(name: str) -> str:
    """Fixed split by name hash: 90% train, 5% valid, 5% test."""
    bucket = int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) % 20
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


# --------------------------------------------------------------------------------------------
# KanjiVG.
# --------------------------------------------------------------------------------------------
def _kanji_dir() -> Path:
    dist = importlib.metadata.distribution("kanjivg")
    path = Path(str(dist.locate_file("kanji")))
    if not path.is_dir():
        raise FileNotFoundError("the kanjivg package is installed but has no kanji/ folder")
    return path


def _sample_path(d: str, step: float = 1.0) -> np.ndarray:
    """Points along an SVG path (svg.path parses it), about `step` units apart."""
    from svg.path import CubicBezier, Move, parse_path

    pts: list[np.ndarray] = []
    for seg in parse_path(d):
        if isinstance(seg, Move):
            continue
        n = max(2, int(np.ceil(seg.length(error=1e-3) / step)) + 1)
        t = np.linspace(0.0, 1.0, n)
        if isinstance(seg, CubicBezier):
            p0, p1, p2, p3 = seg.start, seg.control1, seg.control2, seg.end
            z = ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3
        else:
            z = np.array([seg.point(float(x)) for x in t])
        seg_pts = np.stack([z.real, z.imag], axis=1)
        pts.append(seg_pts if not pts else seg_pts[1:])
    return np.vstack(pts) if pts else np.zeros((0, 2))


_STROKE_ID = re.compile(r"-s(\d+)$")


def kanji_strokes(svg_file: Path) -> list[np.ndarray]:
    """The strokes of one KanjiVG file in stroke order, in KanjiVG's 109-unit box."""
    root = ET.parse(svg_file).getroot()
    paths = []
    for el in root.iter("{http://www.w3.org/2000/svg}path"):
        match = _STROKE_ID.search(el.get("id", ""))
        if match and el.get("d"):
            paths.append((int(match.group(1)), el.get("d")))
    paths.sort()
    return [p for p in (_sample_path(d) for _, d in paths) if len(p)]


def load_kanji_raw(only_split: str | None = None) -> list[tuple[str, list[np.ndarray]]]:
    folder = _kanji_dir()
    files = sorted(f for f in folder.glob("*.svg") if "-" not in f.stem)  # no variant forms
    if only_split is not None:  # parse only what one split needs (the split is fixed by the name)
        files = [f for f in files if split_of(f"kanji:{f.stem}") == only_split]
    out = []
    for f in files:
        strokes = kanji_strokes(f)
        if strokes:
            centred = [(s - KANJI_BOX / 2) * (FRAME / KANJI_BOX) for s in strokes]
            out.append((f"kanji:{f.stem}", centred))
    return out


# --------------------------------------------------------------------------------------------
# Hershey fonts.
# --------------------------------------------------------------------------------------------
def load_hershey_raw() -> list[tuple[str, list[np.ndarray]]]:
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    seen: set[bytes] = set()
    out = []
    for font_name in font.default_font_names:
        font.load_default_font(font_name)
        for char, glyph in sorted(font.all_glyphs.items()):
            strokes = [np.asarray(s, dtype=np.float64) for s in glyph.strokes if len(s)]
            if not strokes or sum(len(s) for s in strokes) < 2:
                continue
            key = b"|".join(s.tobytes() for s in strokes)
            if key in seen:  # many fonts share glyphs; keep each shape once
                continue
            seen.add(key)
            # Glyph units: x around 0, y from cap line (-12) down to bottom line (16).
            centred = [(s - np.array([0.0, 2.0])) * (FRAME / HERSHEY_BOX) for s in strokes]
            out.append((f"hershey:{font_name}:{ord(char):04x}", centred))
    return out


# --------------------------------------------------------------------------------------------
# Preprocessing and cache.
# --------------------------------------------------------------------------------------------
def preprocess(strokes: list[np.ndarray], epsilon: float = RDP_EPSILON) -> np.ndarray:
    """Frame-unit polylines -> simplified stroke-3, offsets from the frame centre."""
    return strokes_to_stroke3(simplify(strokes, epsilon))


def _build(dataset: str) -> dict[str, StrokeSet]:
    raw = load_kanji_raw() if dataset == "kanji" else load_hershey_raw()
    splits: dict[str, StrokeSet] = {s: StrokeSet([], []) for s in ("train", "valid", "test")}
    for name, strokes in raw:
        s3 = preprocess(strokes)
        if len(s3) >= 2:
            split = splits[split_of(name)]
            split.names.append(name)
            split.drawings.append(s3)
    return splits


def load_dataset(dataset: str, refresh: bool = False) -> dict[str, StrokeSet]:
    """{"train", "valid", "test"} -> StrokeSet for `dataset`, from the cache when present."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown sketch data set {dataset!r}; choose from {', '.join(DATASETS)}")
    path = cache_dir() / f"{dataset}-v{CACHE_VERSION}-rdp{RDP_EPSILON:g}.npz"
    if path.exists() and not refresh:
        with np.load(path, allow_pickle=False) as z:
            out = {}
            for split in ("train", "valid", "test"):
                names = [str(n) for n in z[f"{split}_names"]]
                flat, offsets = z[f"{split}_points"], z[f"{split}_offsets"]
                out[split] = StrokeSet(names, [flat[offsets[i]:offsets[i + 1]] for i in range(len(names))])
            return out
    splits = _build(dataset)
    arrays: dict[str, np.ndarray] = {}
    for split, ss in splits.items():
        lengths = [len(d) for d in ss.drawings]
        arrays[f"{split}_names"] = np.array(ss.names, dtype=str)
        arrays[f"{split}_points"] = np.vstack(ss.drawings).astype(np.float32) if ss.drawings else np.zeros((0, 3), np.float32)
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return splits


def load_split(dataset: str, split: str) -> StrokeSet:
    """One split; from the full cache when it exists, else built from only that split's files
    (the held-out kanji in ~5% of the time of the whole set, for tests)."""
    path = cache_dir() / f"{dataset}-v{CACHE_VERSION}-rdp{RDP_EPSILON:g}.npz"
    if path.exists() or dataset != "kanji":
        return load_dataset(dataset)[split]
    out = StrokeSet([], [])
    for name, strokes in load_kanji_raw(only_split=split):
        s3 = preprocess(strokes)
        if len(s3) >= 2:
            out.names.append(name)
            out.drawings.append(s3)
    return out


def main() -> None:  # python -m training.sketch.data: build the caches and print their sizes
    for ds in DATASETS:
        splits = load_dataset(ds)
        lengths = np.array([len(d) for d in splits["train"].drawings])
        print(ds, {k: len(v) for k, v in splits.items()},
              f"points: mean {lengths.mean():.1f}, p95 {np.percentile(lengths, 95):.0f}, max {lengths.max()}")


if __name__ == "__main__":
    main()
