"""Pen-stroke formats for Sketch-RNN (Ha & Eck, 2018, "A Neural Representation of Sketch Drawings").

Three views of one drawing:

* strokes  - a list of polylines, each an (n, 2) float array of absolute [x, y] points.
* stroke-3 - an (N, 3) array, one row per point: (dx, dy, lift). dx, dy is the offset from the
  previous point (the first row's from the origin), lift = 1 when the pen leaves the paper
  after this point. The move into a row is drawn when the previous row's lift is 0; the first
  move is never drawn (the pen starts in the air), as in the paper's own renderer.
* stroke-5 - an (N, 5) array (dx, dy, p1, p2, p3): p1 = pen stays down, p2 = pen lifts,
  p3 = drawing has ended (one-hot). Padding rows are (0, 0, 0, 0, 1).

Simplification is the Ramer-Douglas-Peucker algorithm, via scikit-image's `approximate_polygon`.
Parsing the creator's stroke JSON (`parse_drawing`) validates it before any model work.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from generators.base import InvalidInput

#: Side of the square frame the training data is normalised into (as Quick, Draw!'s 0-255 box).
FRAME = 255.0
#: Caps on creator input, checked before any work: a drawing bigger than this is refused.
MAX_INPUT_STROKES = 500
MAX_INPUT_POINTS = 20_000
MAX_INPUT_CHARS = 2_000_000
MAX_CANVAS = 10_000.0


# --------------------------------------------------------------------------------------------
# Conversions.
# --------------------------------------------------------------------------------------------
def strokes_to_stroke3(strokes: Sequence[np.ndarray], origin: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Absolute polylines -> stroke-3 rows (dx, dy, lift), offsets counted from `origin`."""
    rows: list[np.ndarray] = []
    prev = np.asarray(origin, dtype=np.float64)
    for stroke in strokes:
        pts = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            continue
        deltas = np.diff(np.vstack([prev[None], pts]), axis=0)
        lift = np.zeros((len(pts), 1))
        lift[-1, 0] = 1.0
        rows.append(np.hstack([deltas, lift]))
        prev = pts[-1]
    if not rows:
        return np.zeros((0, 3), dtype=np.float32)
    return np.vstack(rows).astype(np.float32)


def stroke3_to_strokes(s3: np.ndarray, origin: Sequence[float] = (0.0, 0.0)) -> list[np.ndarray]:
    """stroke-3 -> absolute polylines (the inverse of `strokes_to_stroke3`)."""
    s3 = np.asarray(s3, dtype=np.float64).reshape(-1, 3)
    if len(s3) == 0:
        return []
    pts = np.cumsum(s3[:, :2], axis=0) + np.asarray(origin, dtype=np.float64)
    ends = np.flatnonzero(s3[:, 2] > 0.5)
    out: list[np.ndarray] = []
    start = 0
    for end in ends:
        out.append(pts[start:end + 1])
        start = end + 1
    if start < len(pts):  # an unfinished last stroke
        out.append(pts[start:])
    return out


def stroke3_to_stroke5(s3: np.ndarray, max_len: int | None = None) -> np.ndarray:
    """stroke-3 -> stroke-5, padded with end rows to `max_len` rows when given.

    The last real row's pen state becomes p3 (end of drawing), as in the paper.
    """
    s3 = np.asarray(s3, dtype=np.float32).reshape(-1, 3)
    n = len(s3)
    length = n if max_len is None else max_len
    if n > length:
        raise ValueError(f"drawing has {n} points, more than max_len={length}")
    out = np.zeros((length, 5), dtype=np.float32)
    out[:n, :2] = s3[:, :2]
    out[:n, 3] = s3[:, 2]
    out[:n, 2] = 1.0 - s3[:, 2]
    out[n:, 4] = 1.0
    if n:
        out[n - 1, 2:] = (0.0, 0.0, 1.0)
    return out


def stroke5_to_stroke3(s5: np.ndarray) -> np.ndarray:
    """stroke-5 -> stroke-3, stopping at the first end-of-drawing row (which is kept as a point)."""
    s5 = np.asarray(s5, dtype=np.float32).reshape(-1, 5)
    ends = np.flatnonzero(s5[:, 4] > 0.5)
    n = int(ends[0]) + 1 if len(ends) else len(s5)
    out = np.zeros((n, 3), dtype=np.float32)
    out[:, :2] = s5[:n, :2]
    out[:, 2] = (s5[:n, 3] + s5[:n, 4] > 0.5).astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------
# Simplification and normalisation.
# --------------------------------------------------------------------------------------------
def simplify(strokes: Sequence[np.ndarray], epsilon: float) -> list[np.ndarray]:
    """Ramer-Douglas-Peucker on each polyline (scikit-image `approximate_polygon`).

    Every dropped point lies within `epsilon` of the simplified polyline; endpoints are kept.
    `epsilon <= 0` returns the strokes unchanged (as float arrays).
    """
    from skimage.measure import approximate_polygon

    out: list[np.ndarray] = []
    for stroke in strokes:
        pts = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            continue
        # Repeated points carry no shape and confuse RDP's segment distances.
        keep = np.ones(len(pts), dtype=bool)
        keep[1:] = np.any(np.abs(np.diff(pts, axis=0)) > 1e-9, axis=1)
        pts = pts[keep]
        if epsilon > 0 and len(pts) > 2:
            closed = bool(np.allclose(pts[0], pts[-1]))
            if closed:  # approximate_polygon treats a closed ring specially; split it in two
                mid = len(pts) // 2
                a = approximate_polygon(pts[:mid + 1], tolerance=epsilon)
                b = approximate_polygon(pts[mid:], tolerance=epsilon)
                pts = np.vstack([a, b[1:]])
            else:
                pts = approximate_polygon(pts, tolerance=epsilon)
        out.append(pts)
    return out


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point in p (n, 2) to the segment a-b."""
    ab = b - a
    denom = float(ab @ ab)
    if denom == 0.0:
        return np.linalg.norm(p - a, axis=1)
    t = np.clip(((p - a) @ ab) / denom, 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def polyline_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Distance from each point to the nearest segment of a polyline."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    polyline = np.asarray(polyline, dtype=np.float64).reshape(-1, 2)
    if len(polyline) == 1:
        return np.linalg.norm(points - polyline[0], axis=1)
    return np.min(np.stack([point_segment_distance(points, polyline[i], polyline[i + 1])
                            for i in range(len(polyline) - 1)]), axis=0)


# --------------------------------------------------------------------------------------------
# The creator's drawing: JSON in canvas pixels, validated.
# --------------------------------------------------------------------------------------------
@dataclass
class Drawing:
    """A creator's drawing in canvas pixels, with the canvas size when the widget sent it."""

    strokes: list[np.ndarray]
    width: float | None = None
    height: float | None = None

    @property
    def n_points(self) -> int:
        return int(sum(len(s) for s in self.strokes))

    def frame_transform(self) -> tuple[float, np.ndarray]:
        """(scale, centre): canvas px -> training frame via (p - centre) * scale.

        With a canvas size, the canvas is the frame (so a stroke drawn in the top-left stays
        there). Without one, the drawing's bounding box is fitted to 80% of the frame.
        """
        if self.width and self.height:
            side = max(self.width, self.height)
            return FRAME / side, np.array([self.width / 2.0, self.height / 2.0])
        pts = np.vstack(self.strokes)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        side = float(max(hi - lo))
        scale = 0.8 * FRAME / side if side > 0 else 1.0
        return scale, (lo + hi) / 2.0


def parse_drawing(text: str, name: str = "strokes") -> Drawing:
    """Parse and validate stroke JSON: `[[[x, y], ...], ...]`, or `{"strokes": ..., "width":,
    "height":}`, or a studio sketch JSON (`{"drawings": [one drawing]}`). Raises InvalidInput."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{name} is empty: draw something on the canvas first")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidInput(f"{name} is too large ({len(text):,} characters; the limit is {MAX_INPUT_CHARS:,})")
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name} is not valid stroke JSON: {exc.msg} at character {exc.pos}") from None
    width = height = None
    if isinstance(data, dict):
        if "drawings" in data:
            drawings = data["drawings"]
            if not isinstance(drawings, list) or len(drawings) != 1:
                count = len(drawings) if isinstance(drawings, list) else 0
                raise InvalidInput(f"{name} holds {count} drawings; keep exactly one of them to use it as input")
            data = drawings[0]
            if not isinstance(data, dict):
                raise InvalidInput(f"{name}: each drawing must be an object with 'strokes'")
        width, height = data.get("width"), data.get("height")
        if "strokes" not in data:
            raise InvalidInput(f"{name} must be a list of strokes or an object with a 'strokes' list")
        data = data["strokes"]
    if (width is None) != (height is None):
        raise InvalidInput(f"{name}: give both canvas width and height, or neither")
    if width is not None:
        width, height = _finite(width, f"{name} width"), _finite(height, f"{name} height")
        if not (0 < width <= MAX_CANVAS and 0 < height <= MAX_CANVAS):
            raise InvalidInput(f"{name}: the canvas must be between 1 and {MAX_CANVAS:.0f} pixels a side")
    if not isinstance(data, list):
        raise InvalidInput(f"{name} must be a list of strokes, each a list of [x, y] points")
    if len(data) > MAX_INPUT_STROKES:
        raise InvalidInput(f"{name} has {len(data)} strokes; the limit is {MAX_INPUT_STROKES}")
    strokes: list[np.ndarray] = []
    total = 0
    for i, stroke in enumerate(data):
        if not isinstance(stroke, list):
            raise InvalidInput(f"{name}: stroke {i + 1} must be a list of [x, y] points")
        total += len(stroke)
        if total > MAX_INPUT_POINTS:
            raise InvalidInput(f"{name} has more than {MAX_INPUT_POINTS:,} points; "
                               "draw fewer or simplify the drawing first")
        if not stroke:
            continue  # an empty stroke (a click with no movement recorded) carries nothing
        try:
            pts = np.array(stroke, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name}: stroke {i + 1} must hold [x, y] number pairs") from None
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise InvalidInput(f"{name}: stroke {i + 1} must hold [x, y] number pairs")
        if not np.all(np.isfinite(pts)):
            raise InvalidInput(f"{name}: stroke {i + 1} has a coordinate that is not a finite number (NaN or infinity)")
        if np.abs(pts).max() > 1e6:
            raise InvalidInput(f"{name}: stroke {i + 1} has a coordinate beyond a million pixels")
        strokes.append(pts)
    if not strokes:
        raise InvalidInput(f"{name} is empty: draw something on the canvas first")
    return Drawing(strokes=strokes, width=width, height=height)


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    return float(value)


def drawing_extent(strokes: Sequence[np.ndarray]) -> float:
    """Largest side of the drawing's bounding box (0 for a single dot)."""
    pts = np.vstack([np.asarray(s).reshape(-1, 2) for s in strokes])
    return float(max(pts.max(axis=0) - pts.min(axis=0)))
