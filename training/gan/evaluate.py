"""Sample-quality and memorisation measures for the glyph GAN (no pretrained network needed).

* `nn_distances`: for each row of A, the L2 distance (pixels in [0, 1]) to its nearest row of B.
  Samples whose nearest training image is much closer than held-out glyphs' nearest training
  image would be copies: the sample-to-train distribution is compared with held-out-to-train.
* `mmd_rbf`: squared maximum mean discrepancy with a Gaussian kernel (Gretton et al., 2012),
  bandwidth from the median heuristic on the pooled set; 0 means the two sets look alike.
  No Inception network is available offline, so this pixel-space kernel two-sample statistic
  stands in for FID; it is reported next to two references (real vs real, baseline vs real).
  It is computed on raw pixels and on HOG descriptors (Dalal & Triggs, 2005, via scikit-image):
  the pixel kernel barely separates per-pixel noise from glyphs, the HOG one does (stroke
  orientations), so HOG-MMD is the headline number.
* `components`: connected ink regions per glyph and isolated specks (regions of at most 2
  pixels) per glyph, after thresholding at half ink (scipy.ndimage.label, 8-connected): broken
  strokes and stray dots show here, which the MMDs average away.
"""
from __future__ import annotations

import numpy as np


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _flat(a), _flat(b)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def nn_distances(a: np.ndarray, b: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Distance from each image of `a` to its nearest image in `b` (both (N, H, W) in [0, 1])."""
    out = [np.sqrt(sq_dists(a[i:i + chunk], b).min(1)) for i in range(0, len(a), chunk)]
    return np.concatenate(out)


def mmd_rbf(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD between two image sets with an RBF kernel."""
    xy = np.concatenate([_flat(x), _flat(y)])
    d = sq_dists(xy, xy)
    if bandwidth is None:
        bandwidth = float(np.sqrt(0.5 * np.median(d[d > 0])))
    k = np.exp(-d / (2.0 * bandwidth**2))
    n = len(x)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    m = len(y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2.0 * kxy.mean())


def hog_features(images: np.ndarray) -> np.ndarray:
    """HOG descriptors (8 orientations, 8x8-pixel cells, 2x2-cell blocks) of (N, H, W) images."""
    from skimage.feature import hog

    return np.stack([hog(im, orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
                     for im in np.asarray(images, dtype=np.float64)])


def pixel_baseline(train: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The simplest generator: each pixel independently Bernoulli(its mean ink over train)."""
    p = train.mean(0)
    return (rng.random((n, *p.shape)) < p).astype(np.float32)


def summary(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    return {"min": float(q[0]), "p05": float(q[1]), "p25": float(q[2]), "median": float(q[3]),
            "p75": float(q[4]), "p95": float(q[5]), "max": float(q[6]), "mean": float(values.mean())}


def components(images: np.ndarray, threshold: float = 0.5, speck_pixels: int = 2) -> dict[str, float]:
    """Mean connected ink regions and isolated specks (<= `speck_pixels` pixels) per (H, W) image in [0, 1]."""
    from scipy.ndimage import label

    eight = np.ones((3, 3), dtype=bool)
    regions, specks = [], []
    for im in np.asarray(images):
        labels, n = label(im >= threshold, structure=eight)
        sizes = np.bincount(labels.ravel())[1:]
        regions.append(n)
        specks.append(int((sizes <= speck_pixels).sum()))
    return {"components_per_glyph": round(float(np.mean(regions)), 3),
            "specks_per_glyph": round(float(np.mean(specks)), 3), "glyphs": len(regions)}
