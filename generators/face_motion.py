"""Landmark motion for portrait animation: expression presets, speech-driven mouth shapes, and
driving-video transfer in first-order-model's relative mode (Siarohin et al., 2019: the source
keypoints move by the driving keypoints' displacement from the driving video's first frame,
scaled by the ratio of the two faces' convex-hull areas).

Presets deform the 468 FaceMesh points (Kartynnik et al., 2019) in a face-aligned frame whose
unit is the distance between the outer eye corners; each preset moves a named set of handle
points and spreads the motion to neighbours inside its own region with a compact kernel, so
that a blink never moves the mouth and a smile never moves the brows.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from generators.base import InvalidInput

# ---- FaceMesh index sets (MediaPipe's canonical topology) ------------------------------------
EYE_R_UPPER = (246, 161, 160, 159, 158, 157, 173)  # image-left eye (the subject's right)
EYE_R_LOWER = (7, 163, 144, 145, 153, 154, 155)
EYE_L_UPPER = (466, 388, 387, 386, 385, 384, 398)
EYE_L_LOWER = (249, 390, 373, 374, 380, 381, 382)
EYE_CORNERS = (33, 133, 362, 263)
BROW_R = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
BROW_L = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291)
NOSE_TIP = 1
CHIN = 152
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

PRESETS = ("blink", "smile", "brows", "nod", "turn", "breathe")
_SPEC = re.compile(r"^\s*(?P<name>[a-z]+)\s*(?::\s*(?P<intensity>[0-9.]+))?\s*"
                   r"(?:@\s*(?P<start>[0-9.]+)\s*(?:-\s*(?P<end>[0-9.]+))?)?\s*$")


@dataclass(frozen=True)
class PresetSpec:
    """One preset in a creator's list: `name[:intensity][@start[-end]]` (seconds)."""

    name: str
    intensity: float = 1.0
    start: float | None = None
    end: float | None = None


def parse_presets(items: tuple[str, ...] | list[str]) -> list[PresetSpec]:
    out = []
    for item in items:
        m = _SPEC.match(item.lower())
        if not m or m["name"] not in PRESETS:
            raise InvalidInput(f"preset {item!r} is not understood: write name[:intensity][@start[-end]] "
                               f"with a name from {', '.join(PRESETS)} (e.g. 'smile:0.8@1-3')")
        try:
            intensity = float(m["intensity"]) if m["intensity"] else 1.0
            start = float(m["start"]) if m["start"] else None
            end = float(m["end"]) if m["end"] else None
        except ValueError:
            raise InvalidInput(f"preset {item!r} has a malformed number") from None
        if not 0.0 <= intensity <= 2.0:
            raise InvalidInput(f"preset {item!r}: intensity must be between 0 and 2")
        if start is not None and end is not None and end <= start:
            raise InvalidInput(f"preset {item!r}: the end time must come after the start time")
        out.append(PresetSpec(m["name"], intensity, start, end))
    return out


# ---- the face-aligned frame --------------------------------------------------------------------
@dataclass(frozen=True)
class FaceFrame:
    """Similarity frame: origin between the outer eye corners, x along the eyes, unit = their distance."""

    origin: np.ndarray  # (2,)
    rot: np.ndarray  # (2, 2) image -> local rotation
    unit: float  # pixels per local unit

    @classmethod
    def of(cls, pts: np.ndarray) -> "FaceFrame":
        a, b = pts[33, :2].astype(np.float64), pts[263, :2].astype(np.float64)
        v = b - a
        unit = float(np.hypot(*v))
        if unit < 1e-6:
            raise InvalidInput("the face is too small to animate")
        c, s = v / unit
        rot = np.array([[c, s], [-s, c]])
        return cls((a + b) / 2, rot, unit)

    def to_local(self, pts: np.ndarray) -> np.ndarray:
        xy = (pts[:, :2] - self.origin) @ self.rot.T / self.unit
        return np.concatenate([xy, pts[:, 2:3] / self.unit], axis=1)

    def to_image(self, local: np.ndarray) -> np.ndarray:
        xy = local[:, :2] * self.unit @ self.rot + self.origin
        return np.concatenate([xy, local[:, 2:3] * self.unit], axis=1)


def _spread(local: np.ndarray, handles: np.ndarray, disp: np.ndarray, radius: float,
            region: np.ndarray, pinned: tuple[int, ...] = ()) -> np.ndarray:
    """Displacements for all points: the handles' own, spread to region points within `radius`."""
    out = np.zeros((len(local), 2))
    d = np.linalg.norm(local[:, None, :2] - local[None, handles, :2], axis=2)  # (N, H)
    k = np.clip(1.0 - (d / radius) ** 2, 0.0, None) ** 2
    wsum = k.sum(1, keepdims=True)
    spread = (k @ disp) / np.maximum(wsum, 1.0)
    mask = region.copy()
    mask[list(pinned)] = False
    out[mask] = spread[mask]
    out[handles] = disp
    return out


class Deformer:
    """Per-face precomputation of the preset deformations (all in local units)."""

    def __init__(self, landmarks: np.ndarray) -> None:
        self.frame = FaceFrame.of(landmarks)
        self.local = self.frame.to_local(landmarks.astype(np.float64))
        loc = self.local
        self.eye_line = float(loc[list(EYE_CORNERS), 1].mean())
        self.mouth_y = float(loc[list(MOUTH_CORNERS), 1].mean())
        self.mouth_x = float(loc[list(MOUTH_CORNERS), 0].mean())
        self.lower_lip_y = float(loc[[14, 17], 1].mean())
        self.nose_y = float(loc[2, 1])
        self.centre = loc[list(FACE_OVAL)].mean(0)
        self._cache: dict[str, np.ndarray] = {}

    # each returns (N, 2) local displacements for amount a in [0, 2]; the fields are linear in
    # the amount, so the unit field is computed once and scaled
    def blink(self, a: float) -> np.ndarray:
        return self._unit("blink") * min(a, 1.0)

    def smile(self, a: float) -> np.ndarray:
        return self._unit("smile") * a

    def brows(self, a: float) -> np.ndarray:
        return self._unit("brows") * a

    def _unit(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = getattr(self, "_" + name)()
        return self._cache[name]

    def _blink(self, a: float = 1.0) -> np.ndarray:
        loc = self.local
        handles = np.array(EYE_R_UPPER + EYE_L_UPPER)
        lower = np.array(EYE_R_LOWER + EYE_L_LOWER)
        disp = (loc[lower, :2] - loc[handles, :2]) * min(a, 1.0) * 0.92
        brow_low = float(loc[list(BROW_R + BROW_L), 1].max())
        # between the brows and the eye corners: the upper lids' skin only
        region = (loc[:, 1] < self.eye_line) & (loc[:, 1] > brow_low + 0.01)
        pinned = tuple(EYE_R_LOWER + EYE_L_LOWER + EYE_CORNERS + BROW_R + BROW_L)
        return _spread(loc, handles, disp, 0.22, region, pinned)

    def _smile(self, a: float = 1.0) -> np.ndarray:
        loc = self.local
        lips = np.array(sorted(set(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER + LIPS_INNER_UPPER + LIPS_INNER_LOWER)))
        half = abs(loc[291, 0] - loc[61, 0]) / 2
        rel = (loc[lips, 0] - self.mouth_x) / max(half, 1e-6)  # -1 .. 1 along the mouth
        disp = np.stack([rel * 0.10, -np.abs(rel) ** 2 * 0.08], axis=1) * a
        region = (loc[:, 1] > self.nose_y + 0.05) & (loc[:, 1] < self.lower_lip_y + 0.35)
        return _spread(loc, lips, disp, 0.3, region)

    def _brows(self, a: float = 1.0) -> np.ndarray:
        loc = self.local
        handles = np.array(BROW_R + BROW_L)
        disp = np.tile([0.0, -0.12 * a], (len(handles), 1))
        brow_low = float(loc[handles, 1].max())
        region = loc[:, 1] < brow_low - 0.02  # brows and forehead, not the lids
        return _spread(loc, handles, disp, 0.45, region)

    def jaw(self, open_: float, wide: float = 0.0, round_: float = 0.0) -> np.ndarray:
        """Open the jaw by `open_` local units; `wide` (ee) / `round_` (oo) shape the lips."""
        if "jaw" not in self._cache:
            self._cache["jaw"], self._cache["wide"], self._cache["round"] = self._jaw_fields()
        return self._cache["jaw"] * open_ + self._cache["wide"] * wide + self._cache["round"] * round_

    def _jaw_fields(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        loc = self.local
        jaw = np.zeros((len(loc), 2))
        upper_lip_y = float(loc[13, 1])
        # 0 at the upper lip, 1 from the inner lower lip down: the lower lip, chin and jaw drop
        t = np.clip((loc[:, 1] - upper_lip_y) / max(float(loc[14, 1]) - upper_lip_y, 0.02), 0.0, 1.0)
        t[list(LIPS_INNER_UPPER + LIPS_OUTER_UPPER)] = 0.0
        t[list(MOUTH_CORNERS) + [78, 308]] = 0.5
        side = np.clip(1.0 - ((loc[:, 0] - self.mouth_x) / 0.8) ** 2, 0.0, 1.0)
        below = loc[:, 1] > upper_lip_y - 0.02
        jaw[:, 1] = np.where(below, t * side, 0.0)
        lips = np.array(sorted(set(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER + LIPS_INNER_UPPER + LIPS_INNER_LOWER)))
        half = abs(loc[291, 0] - loc[61, 0]) / 2
        rel = (loc[lips, 0] - self.mouth_x) / max(half, 1e-6)
        wide = np.zeros_like(jaw)
        round_ = np.zeros_like(jaw)
        wide[lips, 0] = rel * 0.05
        round_[lips, 0] = -rel * 0.07
        return jaw, wide, round_

    def apply(self, disp: np.ndarray, pitch: float = 0.0, yaw: float = 0.0, lift: float = 0.0) -> np.ndarray:
        """Image-space landmarks after local displacements, a head rotation and a vertical lift."""
        loc = self.local.copy()
        loc[:, :2] += disp
        if pitch or yaw:
            c = self.centre.copy()
            c[2] = 0.0
            p = loc - c
            p[:, 2] -= 0.6  # pivot behind the face (FaceMesh z grows away from the camera)
            cy, sy = math.cos(yaw), math.sin(yaw)
            cp, sp = math.cos(pitch), math.sin(pitch)
            x = p[:, 0] * cy + p[:, 2] * sy
            z = -p[:, 0] * sy + p[:, 2] * cy
            y = p[:, 1] * cp - z * sp
            z = p[:, 1] * sp + z * cp
            loc = np.stack([x, y, z + 0.6], axis=1) + c
        loc[:, 1] -= lift
        return self.frame.to_image(loc)


# ---- timing ----------------------------------------------------------------------------------------
def _envelope(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    ramp = max(1e-3, min(ramp, (end - start) / 2))
    return np.clip(np.minimum((t - start) / ramp, (end - t) / ramp), 0.0, 1.0)


def _blink_curve(t: np.ndarray, at: float) -> np.ndarray:
    """Close in 0.08 s, hold 0.04 s, open in 0.14 s (human blinks last ~0.1-0.4 s)."""
    x = t - at
    return np.where(x < 0, 0.0, np.where(x < 0.08, x / 0.08, np.where(x < 0.12, 1.0,
                    np.clip(1.0 - (x - 0.12) / 0.14, 0.0, 1.0))))


@dataclass
class Tracks:
    """Per-frame activations (frames,) of every motion channel."""

    blink: np.ndarray
    smile: np.ndarray
    brows: np.ndarray
    pitch: np.ndarray  # radians
    yaw: np.ndarray  # radians
    lift: np.ndarray  # local units
    jaw: np.ndarray  # local units of jaw opening
    wide: np.ndarray
    round: np.ndarray


def preset_tracks(specs: list[PresetSpec], frames: int, fps: float, rng: np.random.Generator,
                  intensity: float = 1.0) -> Tracks:
    t = np.arange(frames) / fps
    dur = frames / fps
    z = np.zeros(frames)
    tr = Tracks(z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy())
    for spec in specs:
        amp = spec.intensity * intensity
        start = spec.start if spec.start is not None else 0.0
        end = spec.end if spec.end is not None else dur
        if spec.start is not None and start >= dur:
            raise InvalidInput(f"preset {spec.name} starts at {start:g} s, after the clip ends ({dur:g} s)")
        if spec.name == "blink":
            if spec.start is not None and spec.end is None:
                times = [start]
            else:
                times, at = [], start + 0.4 + float(rng.uniform(0.0, 0.8))
                while at < end - 0.2:
                    times.append(at)
                    at += float(rng.uniform(2.5, 4.5))  # people blink every few seconds
            curve = np.zeros(frames)
            for at in times:
                curve = np.maximum(curve, _blink_curve(t, at))
            tr.blink = np.maximum(tr.blink, curve * min(amp, 1.0))
        elif spec.name in ("smile", "brows"):
            if spec.start is None:
                start, end = dur * 0.2, dur * 0.85
            env = _envelope(t, start, end, 0.4)
            env = env * env * (3 - 2 * env)  # smoothstep ramps
            cur = getattr(tr, spec.name)
            setattr(tr, spec.name, np.maximum(cur, env * amp))
        elif spec.name == "nod":
            env = _envelope(t, start, end, 0.3)
            tr.pitch += env * math.radians(6.0) * amp * np.sin(2 * math.pi * (t - start) / 1.2)
        elif spec.name == "turn":
            env = _envelope(t, start, end, 0.5)
            tr.yaw += env * math.radians(10.0) * amp * np.sin(2 * math.pi * (t - start) / 4.0)
        elif spec.name == "breathe":
            env = _envelope(t, start, end, 0.5)
            phase = float(rng.uniform(0.0, 2 * math.pi))
            tr.lift += env * 0.02 * amp * (0.5 - 0.5 * np.cos(2 * math.pi * t / 4.0 + phase))
            tr.pitch += env * math.radians(0.8) * amp * np.sin(2 * math.pi * t / 4.0 + phase)
    return tr


def frame_landmarks(deformer: Deformer, tracks: Tracks, i: int) -> np.ndarray:
    """The moved landmarks (468, 3) of frame i in image pixels."""
    disp = np.zeros((len(deformer.local), 2))
    if tracks.blink[i] > 0:
        disp += deformer.blink(float(tracks.blink[i]))
    if tracks.smile[i] > 0:
        disp += deformer.smile(float(tracks.smile[i]))
    if tracks.brows[i] > 0:
        disp += deformer.brows(float(tracks.brows[i]))
    if tracks.jaw[i] > 0 or tracks.wide[i] > 0 or tracks.round[i] > 0:
        disp += deformer.jaw(float(tracks.jaw[i]), float(tracks.wide[i]), float(tracks.round[i]))
    return deformer.apply(disp, float(tracks.pitch[i]), float(tracks.yaw[i]), float(tracks.lift[i]))


# ---- driving video (first-order-model, relative mode) ---------------------------------------------
def hull_area(pts: np.ndarray) -> float:
    import cv2

    hull = cv2.convexHull(pts[:, :2].astype(np.float32))
    return float(cv2.contourArea(hull))


def relative_transfer(source: np.ndarray, driving: np.ndarray, driving_initial: np.ndarray,
                      adapt_scale: bool = True) -> np.ndarray:
    """kp_new = kp_source + (kp_driving - kp_driving_initial) * scale (FOMM's relative mode)."""
    scale = 1.0
    if adapt_scale:
        scale = math.sqrt(hull_area(source) / max(hull_area(driving_initial), 1e-6))
    return source + (driving - driving_initial) * scale
