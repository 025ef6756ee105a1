"""Stroke and shape features of a drawing, read from the pen paths of its SVG (Sketch-RNN output).

Counts (strokes, points), ink length relative to the drawing's size, how straight and how
curved the strokes are, a pen-direction histogram, how much of the canvas the ink covers
(on a 16x16 grid) and a coarse 4x4 ink layout: the usual hand-drawn-shape descriptors.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from generators.base import InvalidInput

MAX_SVG_BYTES = 5_000_000
_PATH = re.compile(r'<path\b[^>]*?\bd="([^"]*)"')
_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?")
DIRECTIONS = 8


def strokes(svg: str) -> list[list[tuple[float, float]]]:
    """Each <path> as a polyline (M/L absolute points; the 'h0.01' dot marker becomes one point)."""
    out = []
    for d in _PATH.findall(svg):
        nums = [float(x) for x in _NUM.findall(re.sub(r"h-?[\d.]+", "", d))]
        pts = list(zip(nums[0::2], nums[1::2]))
        if pts:
            out.append(pts)
    return out


def features(path: Path) -> list[float]:
    import numpy as np

    if path.stat().st_size > MAX_SVG_BYTES:
        raise InvalidInput(f"{path.name} is larger than {MAX_SVG_BYTES // 1_000_000} MB; not a studio drawing")
    lines = strokes(path.read_text(encoding="utf-8", errors="replace"))
    if not lines:
        raise InvalidInput(f"{path.name} holds no pen strokes")
    pts = np.array([p for s in lines for p in s], dtype=np.float64)
    lo, hi = pts.min(0), pts.max(0)
    size = max(float((hi - lo).max()), 1e-6)
    lengths, straight, turns, dirs = [], [], [], np.zeros(DIRECTIONS)
    grid = np.zeros((16, 16))
    for s in lines:
        a = (np.array(s) - lo) / size
        seg = np.diff(a, axis=0)
        seglen = np.hypot(seg[:, 0], seg[:, 1]) if len(seg) else np.zeros(0)
        length = float(seglen.sum())
        lengths.append(length)
        straight.append(float(np.hypot(*(a[-1] - a[0])) / length) if length > 1e-9 else 1.0)
        if len(seg):
            ang = np.arctan2(seg[:, 1], seg[:, 0])
            np.add.at(dirs, ((ang + math.pi) / (2 * math.pi) * DIRECTIONS).astype(int) % DIRECTIONS, seglen)
            if len(ang) > 1:
                turn = np.abs((np.diff(ang) + math.pi) % (2 * math.pi) - math.pi)
                turns.append(float(turn.mean()))
        # densify each segment so coverage does not depend on how many points the pen took
        for p, q, ln in zip(a[:-1], a[1:], seglen):
            for t in np.linspace(0, 1, max(2, int(ln * 32) + 1)):
                x, y = p + (q - p) * t
                grid[min(15, int(y * 15.999)), min(15, int(x * 15.999))] = 1
        if len(a) == 1:
            grid[min(15, int(a[0][1] * 15.999)), min(15, int(a[0][0] * 15.999))] = 1
    lengths_a = np.array(lengths)
    total = float(lengths_a.sum())
    dirs = dirs / max(float(dirs.sum()), 1e-9)
    layout = grid.reshape(4, 4, 4, 4).mean(axis=(1, 3)).reshape(-1)
    w, h = (hi - lo) / size
    centre = (pts.mean(0) - lo) / size
    return [math.log1p(len(lines)), math.log1p(len(pts)), math.log1p(total), float(lengths_a.mean()),
            float(lengths_a.std()), float(np.mean(straight)), float(np.mean(turns)) if turns else 0.0,
            float(w), float(h), float(grid.mean()), float(centre[0]), float(centre[1]), *dirs.tolist(),
            *layout.tolist()]
