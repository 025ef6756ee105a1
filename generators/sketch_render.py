"""Rendering pen drawings: SVG (ElementTree), PNG and a pen-replay GIF (Pillow), raw strokes as
JSON and stroke-5 .npz. Drawings are absolute polylines in canvas units; several drawings are
laid out left to right, top to bottom in a grid.
"""
from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from generators.sketch_strokes import strokes_to_stroke3, stroke3_to_stroke5

SVG_NS = "http://www.w3.org/2000/svg"
INK = (17, 17, 17)
USER_INK = (29, 78, 216)  # the creator's own strokes, when told apart
PAPER = (255, 255, 255)


@dataclass
class SketchOut:
    """One drawing to write: polylines in canvas units, the canvas, and how many strokes at the
    start are the creator's own (kept exactly as given)."""

    strokes: list[np.ndarray]
    width: float
    height: float
    user_strokes: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    left: float = 0.0  # canvas rectangle's top-left corner (non-zero when no canvas size was given)
    top: float = 0.0
    canvas_known: bool = True  # False: the canvas was inferred from the drawing's bounding box

    def view_box(self, margin: float = 0.04) -> tuple[float, float, float, float]:
        """The canvas, grown to hold every point, plus a margin: (x, y, w, h), square."""
        lo = np.array([self.left, self.top])
        hi = lo + np.array([self.width, self.height])
        if self.strokes:
            pts = np.vstack(self.strokes)
            lo, hi = np.minimum(lo, pts.min(axis=0)), np.maximum(hi, pts.max(axis=0))
        side = float(max(hi - lo)) * (1 + 2 * margin) or 1.0
        centre = (lo + hi) / 2
        return float(centre[0] - side / 2), float(centre[1] - side / 2), side, side


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


def _path_d(stroke: np.ndarray) -> str:
    pts = np.asarray(stroke).reshape(-1, 2)
    if len(pts) == 1:  # a dot: a zero-length segment that round caps make visible
        x, y = pts[0]
        return f"M{_fmt(x)} {_fmt(y)}h0.01"
    return "M" + " L".join(f"{_fmt(x)} {_fmt(y)}" for x, y in pts)


def to_svg(drawing: SketchOut, stroke_width: float, title: str = "") -> str:
    """One drawing as a standalone SVG: a <g> of <path>s, one per stroke, in drawing order."""
    ET.register_namespace("", SVG_NS)
    x, y, w, h = drawing.view_box()
    svg = ET.Element(f"{{{SVG_NS}}}svg", {"viewBox": f"{_fmt(x)} {_fmt(y)} {_fmt(w)} {_fmt(h)}",
                                          "width": "512", "height": "512"})
    if title:
        ET.SubElement(svg, f"{{{SVG_NS}}}title").text = title
    ET.SubElement(svg, f"{{{SVG_NS}}}rect", {"x": _fmt(x), "y": _fmt(y), "width": _fmt(w), "height": _fmt(h),
                                              "fill": "#ffffff"})
    common = {"fill": "none", "stroke-width": _fmt(stroke_width), "stroke-linecap": "round",
              "stroke-linejoin": "round"}
    groups = []
    if drawing.user_strokes:
        groups.append(("user", drawing.strokes[:drawing.user_strokes], USER_INK))
    groups.append(("model", drawing.strokes[drawing.user_strokes:], INK))
    for gid, strokes, ink in groups:
        g = ET.SubElement(svg, f"{{{SVG_NS}}}g", {"id": gid, "stroke": "#%02x%02x%02x" % ink, **common})
        for stroke in strokes:
            ET.SubElement(g, f"{{{SVG_NS}}}path", {"d": _path_d(stroke)})
    return ET.tostring(svg, encoding="unicode", xml_declaration=False)


def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def _draw_cell(draw: Any, drawing: SketchOut, ox: int, oy: int, cell: int, width_px: float) -> None:
    x0, y0, side, _ = drawing.view_box()
    k = cell / side
    for i, stroke in enumerate(drawing.strokes):
        pts = np.asarray(stroke)
        ink = USER_INK if i < drawing.user_strokes else INK
        xy = [(ox + (px - x0) * k, oy + (py - y0) * k) for px, py in pts]
        r = max(width_px / 2, 0.5)
        if len(xy) == 1:
            draw.ellipse([xy[0][0] - r, xy[0][1] - r, xy[0][0] + r, xy[0][1] + r], fill=ink)
            continue
        draw.line(xy, fill=ink, width=max(1, round(width_px)), joint="curve")
        for px, py in (xy[0], xy[-1]):  # round caps
            draw.ellipse([px - r, py - r, px + r, py + r], fill=ink)


def to_png(drawings: Sequence[SketchOut], size: int, stroke_width: float) -> Any:
    """A PIL image: each drawing in a `size` x `size` cell (drawn at 2x, then downsampled)."""
    from PIL import Image, ImageDraw

    cols, rows = _grid(len(drawings))
    ss = 2
    cell = size * ss
    img = Image.new("RGB", (cols * cell, rows * cell), PAPER)
    draw = ImageDraw.Draw(img)
    for i, d in enumerate(drawings):
        width_px = stroke_width * cell / d.view_box()[2]
        _draw_cell(draw, d, (i % cols) * cell, (i // cols) * cell, cell, width_px)
    return img.reduce(ss)  # box-filter downsampling: antialiased lines, fast


def _pen_ops(drawing: SketchOut, ox: int, oy: int, cell: int) -> list[tuple[int, list[tuple[float, float]]]]:
    """One drawing op per point, in pen order: (ink index, [point] for a stroke's first point,
    or [previous, point] for a segment), in pixel coordinates of its grid cell."""
    x0, y0, side, _ = drawing.view_box()
    k = cell / side
    ops = []
    for i, stroke in enumerate(drawing.strokes):
        ink = 2 if i < drawing.user_strokes else 1
        xy = [(ox + (px - x0) * k, oy + (py - y0) * k) for px, py in np.asarray(stroke)]
        ops.append((ink, [xy[0]]))
        ops.extend((ink, [xy[j - 1], xy[j]]) for j in range(1, len(xy)))
    return ops


def to_gif(drawings: Sequence[SketchOut], size: int, stroke_width: float, frames: int = 40,
           frame_ms: int = 60, hold_ms: int = 1500) -> bytes:
    """An animated GIF replaying the pen: every drawing grows point by point, side by side.

    Frames are drawn incrementally (each adds only the new segments) on a 3-colour palette.
    """
    from PIL import Image, ImageDraw

    cols, rows = _grid(len(drawings))
    ops = [_pen_ops(d, (i % cols) * size, (i // cols) * size, size) for i, d in enumerate(drawings)]
    widths = [max(1.0, stroke_width * size / d.view_box()[2]) for d in drawings]
    frames = max(1, min(frames, max(len(o) for o in ops)))
    img = Image.new("P", (cols * size, rows * size), 0)
    img.putpalette([*PAPER, *INK, *USER_INK])
    draw = ImageDraw.Draw(img)
    done = [0] * len(drawings)
    images = []
    for f in range(1, frames + 1):
        for i, d_ops in enumerate(ops):
            upto = math.ceil(len(d_ops) * f / frames)
            r = widths[i] / 2
            for ink, pts in d_ops[done[i]:upto]:
                if len(pts) == 2:
                    draw.line(pts, fill=ink, width=max(1, round(widths[i])))
                px, py = pts[-1]
                if widths[i] >= 3:  # round joints and caps, where a line is wide enough to need them
                    draw.ellipse([px - r, py - r, px + r, py + r], fill=ink)
                elif len(pts) == 1:  # a stroke's first point: visible even if the stroke is a dot
                    draw.point((px, py), fill=ink)
            done[i] = upto
        images.append(img.copy())
    buf = io.BytesIO()
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations,
                   loop=0, optimize=False)
    return buf.getvalue()


def _points(stroke: np.ndarray, exact: bool) -> list[list[float]]:
    if exact:
        return [[float(x), float(y)] for x, y in stroke]
    return [[round(float(x), 2), round(float(y), 2)] for x, y in stroke]


def to_json(drawings: Sequence[SketchOut], meta: dict[str, Any]) -> str:
    """Raw strokes, reloadable: keep one entry of "drawings" (or its "strokes") as input."""
    out = {"format": "studio-sketch/1", **meta, "drawings": []}
    for d in drawings:
        canvas = {"width": d.width, "height": d.height} if d.canvas_known else {}
        out["drawings"].append({
            **canvas, "user_strokes": d.user_strokes, **d.info,
            "strokes": [_points(s, i < d.user_strokes) for i, s in enumerate(d.strokes)]})
    return json.dumps(out, separators=(",", ":"))


def to_npz(drawings: Sequence[SketchOut], scale_factor: float) -> bytes:
    """stroke-5 arrays in canvas units (offsets from the canvas's top-left corner), one per drawing."""
    arrays: dict[str, np.ndarray] = {}
    for i, d in enumerate(drawings):
        arrays[f"stroke5_{i}"] = stroke3_to_stroke5(strokes_to_stroke3(d.strokes, origin=(0.0, 0.0)))
        arrays[f"canvas_{i}"] = np.array([d.width, d.height], dtype=np.float32)
        arrays[f"user_strokes_{i}"] = np.array(d.user_strokes, dtype=np.int64)
    arrays["model_scale_factor"] = np.array(scale_factor, dtype=np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
