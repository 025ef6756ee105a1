"""Rendering moved face landmarks: a piecewise-affine warp over a Delaunay mesh of the FaceMesh
points (the warp pose-animator and Character Animator-style puppets use), plus a plausible
closed lid, a mouth interior when the jaw opens, and the visible "AI-generated" mark.

The warp is backward mapping: each output pixel inside a moved triangle is mapped by that
triangle's affine transform back into the portrait and sampled with `cv2.remap`. A ring of
fixed anchor points around the face and the image border keep the background still; only the
triangles with a moved corner are rasterised, so a blink costs a few eye triangles.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from generators.face_motion import EYE_L_UPPER, EYE_R_UPPER, FACE_OVAL, LIPS_INNER_LOWER, LIPS_INNER_UPPER

RING_SCALE = 1.7  # anchor ring radius / face-oval radius: motion fades to zero there
MARK_TEXT = "AI-generated"


class MeshWarper:
    """Warp one portrait (H, W, 3 uint8) by moving its 468 landmarks."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, step: int = 2) -> None:
        self.src = np.ascontiguousarray(image)
        self.step = step  # warp-map grid spacing in pixels (1 = exact per pixel)
        h, w = image.shape[:2]
        self.h, self.w = h, w
        face = landmarks[:, :2].astype(np.float64)
        self.n_face = len(face)
        oval = face[list(FACE_OVAL)]
        centre = oval.mean(0)
        ring = centre + RING_SCALE * (oval - centre)
        # a denser ring: midpoints too, so the fade region has no long thin triangles
        ring = np.concatenate([ring, (ring + np.roll(ring, -1, axis=0)) / 2])
        ring[:, 0] = np.clip(ring[:, 0], 0, w - 1)
        ring[:, 1] = np.clip(ring[:, 1], 0, h - 1)
        xs = np.linspace(0, w - 1, 5)
        ys = np.linspace(0, h - 1, 5)
        border = np.array([(x, 0) for x in xs] + [(x, h - 1) for x in xs]
                          + [(0, y) for y in ys[1:-1]] + [(w - 1, y) for y in ys[1:-1]], np.float64)
        self.pts0 = np.concatenate([face, ring, border])
        self.tri = Delaunay(self.pts0).simplices.astype(np.int64)
        face_tri = (self.tri < self.n_face).any(1)
        self.face_tri = self.tri[face_tri]  # only these can move

    def warp(self, moved: np.ndarray) -> np.ndarray:
        """The portrait with its landmarks moved to `moved` (468, 2+) image pixels."""
        pts = self.pts0.copy()
        pts[: self.n_face] = moved[:, :2]
        delta = np.abs(pts - self.pts0).max(1) > 0.01
        tri = self.face_tri[delta[self.face_tri].any(1)]
        out = self.src.copy()
        if len(tri) == 0:
            return out
        if moved.shape[1] > 2:
            # painter's order: far triangles first, so where a turning head folds the mesh
            # (the far cheek behind the nose) the nearer surface wins; the background ring is farthest
            z = np.full(len(pts), float(moved[:, 2].max()) + 1.0)
            z[: self.n_face] = moved[:, 2]
            tri = tri[np.argsort(-z[tri].mean(1), kind="stable")]
        dst = pts[tri]  # (T, 3, 2)
        src = self.pts0[tri]
        area = ((dst[:, 1, 0] - dst[:, 0, 0]) * (dst[:, 2, 1] - dst[:, 0, 1])
                - (dst[:, 2, 0] - dst[:, 0, 0]) * (dst[:, 1, 1] - dst[:, 0, 1]))
        ok = np.abs(area) > 1e-3
        dst, src = dst[ok], src[ok]
        if len(dst) == 0:
            return out
        dh = np.concatenate([dst, np.ones((len(dst), 3, 1))], axis=2)  # (T, 3, 3)
        aff = np.linalg.solve(dh, src)  # (T, 3, 2): [x y 1] @ aff = source point
        aff = np.concatenate([aff, [[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]]).astype(np.float32)  # + identity
        lo = np.floor(np.minimum(dst.min((0, 1)), src.min((0, 1)))).astype(int) - 2
        hi = np.ceil(np.maximum(dst.max((0, 1)), src.max((0, 1)))).astype(int) + 3
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], self.w), min(hi[1], self.h)
        if x1 <= x0 or y1 <= y0:
            return out
        # The map is piecewise affine and continuous, so it is computed on a grid `step` pixels
        # apart (coarse pixel i <-> full pixel x0 + i*step + (step-1)/2) and resized bilinearly.
        step = self.step
        cw, ch = -(-(x1 - x0) // step), -(-(y1 - y0) // step)
        ids = np.full((ch, cw), len(aff) - 1, np.int32)
        off = np.array([x0, y0]) + (step - 1) / 2
        poly = np.round((dst - off) / step * 16).astype(np.int32)  # 4 fractional bits
        for k in range(len(poly)):
            cv2.fillConvexPoly(ids, poly[k], k, lineType=cv2.LINE_8, shift=4)
        gx = (x0 + (step - 1) / 2 + step * np.arange(cw)).astype(np.float32)[None, :]
        gy = (y0 + (step - 1) / 2 + step * np.arange(ch)).astype(np.float32)[:, None]
        mx = aff[:, 0, 0][ids] * gx + aff[:, 1, 0][ids] * gy + aff[:, 2, 0][ids]
        my = aff[:, 0, 1][ids] * gx + aff[:, 1, 1][ids] * gy + aff[:, 2, 1][ids]
        if step > 1:
            mx = cv2.resize(mx, (cw * step, ch * step), interpolation=cv2.INTER_LINEAR)[: y1 - y0, : x1 - x0]
            my = cv2.resize(my, (cw * step, ch * step), interpolation=cv2.INTER_LINEAR)[: y1 - y0, : x1 - x0]
        out[y0:y1, x0:x1] = cv2.remap(self.src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out


def _inner_mouth(pts: np.ndarray) -> np.ndarray:
    return np.concatenate([pts[list(LIPS_INNER_UPPER), :2], pts[list(LIPS_INNER_LOWER[::-1][1:-1]), :2]])


class FaceDetails:
    """Lids and mouth interior painted over the warped frame."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, unit: float) -> None:
        self.src = image
        self.lm0 = landmarks[:, :2].astype(np.float64)
        self.unit = unit  # pixels between the outer eye corners
        self.gap0 = float(np.linalg.norm(self.lm0[13] - self.lm0[14]))
        mouth0 = _inner_mouth(self.lm0)
        self.src_mouth = np.zeros(image.shape[:2], np.uint8)
        if self.gap0 > 0.02 * unit:  # the portrait's mouth is already open: keep its teeth
            cv2.fillPoly(self.src_mouth, [np.round(mouth0 * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        lid = np.concatenate([self.lm0[list(EYE_R_UPPER)], self.lm0[list(EYE_L_UPPER)]])
        above = lid - [0, 0.04 * unit]
        xy = np.clip(np.round(above).astype(int), 0, [image.shape[1] - 1, image.shape[0] - 1])
        self.lash = (image[xy[:, 1], xy[:, 0]].astype(np.float32).mean(0) * 0.35)  # darkened lid skin

    def paint(self, frame: np.ndarray, moved: np.ndarray, blink: float) -> np.ndarray:
        pts = moved[:, :2].astype(np.float64)
        gap = float(np.linalg.norm(pts[13] - pts[14]))
        if gap > self.gap0 + 0.5:
            self._mouth(frame, pts, gap)
        if blink > 0.6:
            alpha = min(1.0, (blink - 0.6) / 0.4) * 0.75
            layer = frame.copy()
            thick = max(1, int(round(self.unit * 0.018)))
            for idx in ((33,) + EYE_R_UPPER + (133,), (362,) + EYE_L_UPPER[::-1] + (263,)):
                line = np.round(pts[list(idx)] * 16).astype(np.int32)
                cv2.polylines(layer, [line], False, self.lash.tolist(), thick, cv2.LINE_AA, shift=4)
            cv2.addWeighted(layer, alpha, frame, 1 - alpha, 0, dst=frame)
        return frame

    def _mouth(self, frame: np.ndarray, pts: np.ndarray, gap: float) -> None:
        poly = _inner_mouth(pts)
        x0, y0 = np.floor(poly.min(0)).astype(int) - 2
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, frame.shape[1]), min(y1, frame.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        h, w = y1 - y0, x1 - x0
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        # interior: dark at the top (the palate's shadow), a warmer tongue tone lower down
        ty = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        top = np.array([38, 16, 20], np.float32)
        tongue = np.array([120, 52, 58], np.float32)
        interior = np.broadcast_to(top + (tongue - top) * np.clip((ty - 0.55) / 0.45, 0, 1), (h, w, 3)).copy()
        if self.gap0 <= 0.02 * self.unit:  # closed in the portrait: suggest the upper teeth
            band = min(0.09 * self.unit, 0.3 * gap)
            upper = pts[list(LIPS_INNER_UPPER), :2] - [x0, y0]
            teeth = np.concatenate([upper, (upper + [0, band])[::-1]])
            tmask = np.zeros((h, w), np.uint8)
            cv2.fillPoly(tmask, [np.round(teeth * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
            tm = (tmask.astype(np.float32) / 255.0)[..., None]
            interior = interior * (1 - tm) + np.array([214, 208, 196], np.float32) * tm
        a = (mask.astype(np.float32) / 255.0)[..., None]
        keep = (self.src_mouth[y0:y1, x0:x1].astype(np.float32) / 255.0)[..., None]
        region = frame[y0:y1, x0:x1].astype(np.float32)
        src = self.src[y0:y1, x0:x1].astype(np.float32)
        filled = interior * (1 - keep) + src * keep  # the portrait's own teeth stay where they were
        frame[y0:y1, x0:x1] = np.clip(region * (1 - a) + filled * a, 0, 255).astype(np.uint8)


class Mark:
    """The visible "AI-generated" label, rendered once per frame size and blended on each frame."""

    def __init__(self, width: int, height: int, text: str = MARK_TEXT) -> None:
        scale = max(0.3, min(width, height) / 640)
        thick = max(1, int(round(scale * 1.6)))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        pad = max(2, int(4 * scale))
        bw, bh = min(tw + 2 * pad, width), min(th + base + 2 * pad, height)
        self.x0, self.y0 = width - bw - pad, height - bh - pad
        self.x0, self.y0 = max(self.x0, 0), max(self.y0, 0)
        label = np.zeros((bh, bw, 3), np.uint8)
        cv2.putText(label, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thick, cv2.LINE_AA)
        self.text = label.astype(np.float32) / 255.0
        self.h, self.w = bh, bw

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        roi = frame[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w].astype(np.float32)
        roi = roi * 0.45  # a dark box ...
        roi = roi * (1 - self.text) + 255.0 * self.text  # ... with white text
        frame[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w] = roi.astype(np.uint8)
        return frame


def draw_preview(image: np.ndarray, faces: list, chosen: int | None, crop: tuple[int, int, int, int] | None,
                 max_side: int = 768) -> np.ndarray:
    """The portrait with every detected face numbered, the chosen one's landmarks and the crop."""
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    vis = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) \
        if s < 1.0 else image.copy()
    lw = max(1, round(max(vis.shape[:2]) / 300))
    for i, face in enumerate(faces):
        box = np.round(face.box * s).astype(int)
        color = (0, 220, 0) if i == chosen else (255, 200, 0)
        cv2.rectangle(vis, tuple(box[:2]), tuple(box[2:]), color, lw, cv2.LINE_AA)
        cv2.putText(vis, str(i), (int(box[0]), max(12, int(box[1]) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 + lw * 0.2, color, lw, cv2.LINE_AA)
        if i == chosen:
            for x, y in face.landmarks[:, :2] * s:
                cv2.circle(vis, (int(round(x)), int(round(y))), max(1, lw - 1), (0, 255, 255), -1)
    if crop is not None:
        x0, y0, x1, y1 = (np.array(crop) * s).round().astype(int)
        cv2.rectangle(vis, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), (255, 60, 60), lw, cv2.LINE_AA)
    return Mark(vis.shape[1], vis.shape[0], "AI landmarks preview")(vis)
