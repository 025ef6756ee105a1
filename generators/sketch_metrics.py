"""Does a Sketch-RNN drawing look like the one it should? Measures shared by the benchmark,
the training script (checkpoint choice) and the real-weight tests.

* `ChamferIndex` - symmetric Chamfer distance between a drawing and every drawing of a reference
  set, in a normalised frame (each drawing's bounding box centred and its longer side scaled to
  0.8 of a unit square), so position and size do not count, shape does. Each reference is
  rasterised once into a distance transform (scipy), so one query against hundreds of references
  is a few array look-ups instead of hundreds of point-set comparisons.
* `identifies` - the issue's reconstruction test: a drawing "is" reference i when it is closer
  to i than to the nearest other reference.
* `stacked_duplicates` - a drawing with two near-identical strokes (the pen going over the same
  component twice).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

GRID = 128  # raster side for the distance transforms (1 px = 1/128 of the normalised frame)
STEP = 0.5 / GRID  # resampling step along strokes, in normalised units: every pixel is hit
DUPLICATE_DISTANCE = 0.02  # two strokes closer than this (normalised Chamfer) are the same stroke


def resample(strokes: Sequence[np.ndarray], step: float) -> list[np.ndarray]:
    """Points every `step` along each polyline (a single-point stroke stays a dot)."""
    out = []
    for s in strokes:
        pts = np.asarray(s, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            continue
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        if len(pts) == 1 or seg.sum() == 0:
            out.append(pts[:1])
            continue
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        t = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / step)) + 1))
        out.append(np.stack([np.interp(t, arc, pts[:, 0]), np.interp(t, arc, pts[:, 1])], axis=1))
    return out


def normalise(strokes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Bounding box centred at (0.5, 0.5), longer side 0.8 (a dot or a point set of size 0 stays put)."""
    strokes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes if len(s)]
    if not strokes:
        raise ValueError("a drawing with no points has no shape to compare")
    pts = np.vstack(strokes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = float(max(hi - lo))
    scale = 0.8 / side if side > 0 else 1.0
    centre = (lo + hi) / 2
    return [(s - centre) * scale + 0.5 for s in strokes]


def drawing_points(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """The normalised drawing as dense points (n, 2) in [0.1, 0.9]^2."""
    return np.vstack(resample(normalise(strokes), STEP))


def _pixels(points: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(points * (GRID - 1)), 0, GRID - 1).astype(np.int64)


def distance_field(points: np.ndarray) -> np.ndarray:
    """(GRID, GRID) distance (normalised units) from each cell to the nearest drawn point."""
    from scipy.ndimage import distance_transform_edt

    ink = np.ones((GRID, GRID), dtype=bool)
    px = _pixels(points)
    ink[px[:, 1], px[:, 0]] = False
    return (distance_transform_edt(ink) / (GRID - 1)).astype(np.float32)


class ChamferIndex:
    """Reference drawings, ready for one-against-all normalised Chamfer distances."""

    def __init__(self, references: Sequence[Sequence[np.ndarray]]) -> None:
        if len(references) < 2:
            raise ValueError("the reconstruction test needs at least two reference drawings")
        self.points = [drawing_points(r) for r in references]
        self.fields = np.stack([distance_field(p) for p in self.points])  # (R, G, G)
        pixels = [_pixels(p) for p in self.points]
        self._all_pixels = np.vstack(pixels)  # every reference's points, one array, for one look-up
        self._starts = np.concatenate([[0], np.cumsum([len(p) for p in pixels])[:-1]])
        self._counts = np.array([len(p) for p in pixels], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.points)

    def distances(self, strokes: Sequence[np.ndarray]) -> np.ndarray:
        """Symmetric Chamfer distance from one drawing to every reference: (R,), normalised units.

        Half the mean distance from the drawing's points to each reference, plus half the mean
        distance from each reference's points to the drawing.
        """
        pts = drawing_points(strokes)
        px = _pixels(pts)
        to_refs = self.fields[:, px[:, 1], px[:, 0]].mean(axis=1)
        field = distance_field(pts)
        looked_up = field[self._all_pixels[:, 1], self._all_pixels[:, 0]].astype(np.float64)
        from_refs = np.add.reduceat(looked_up, self._starts) / self._counts
        return 0.5 * (to_refs + from_refs)

    def rank(self, strokes: Sequence[np.ndarray], index: int) -> int:
        """How many other references are at least as close to the drawing as reference `index` (0 = nearest)."""
        d = self.distances(strokes)
        return int((np.delete(d, index) <= d[index]).sum())

    def identifies(self, strokes: Sequence[np.ndarray], index: int) -> bool:
        """True when the drawing is closer to reference `index` than to every other reference."""
        return self.rank(strokes, index) == 0


def stroke_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean nearest-point distance between two point sets."""
    diff = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return 0.5 * float(diff.min(axis=1).mean() + diff.min(axis=0).mean())


def stacked_duplicates(strokes: Sequence[np.ndarray], threshold: float = DUPLICATE_DISTANCE) -> bool:
    """True when two strokes of the drawing lie (nearly) on top of each other, in the normalised frame."""
    strokes = [s for s in strokes if len(s)]
    if len(strokes) < 2:
        return False
    norm = resample(normalise(strokes), 4 * STEP)
    for i in range(len(norm)):
        for j in range(i + 1, len(norm)):
            if stroke_distance(norm[i], norm[j]) < threshold:
                return True
    return False


# --------------------------------------------------------------------------------------------
# Model-side helpers (torch imported lazily): batched encode -> decode of stroke-3 drawings.
# --------------------------------------------------------------------------------------------
def rows_to_strokes(rows: np.ndarray, scale_factor: float) -> list[np.ndarray]:
    """Sampled stroke-5 rows (model units) -> absolute polylines in frame units."""
    from generators.sketch_strokes import stroke3_to_strokes, stroke5_to_stroke3

    s3 = stroke5_to_stroke3(rows).astype(np.float64)
    s3[:, :2] *= scale_factor
    return stroke3_to_strokes(s3)


def encode_mu(net, drawings: Sequence[np.ndarray]):
    """Encoder means (B, z) for stroke-3 drawings in frame units (each ends as a finished drawing)."""
    import torch

    from generators.sketch_strokes import stroke3_to_stroke5

    cfg = net.cfg
    steps = max(len(d) for d in drawings)
    x = np.stack([stroke3_to_stroke5(np.column_stack([d[:, :2] / cfg.scale_factor, d[:, 2]]), steps)
                  for d in drawings])
    with torch.inference_mode():
        mu, _ = net.encode(torch.from_numpy(x), torch.tensor([len(d) for d in drawings]))
    return mu


def reconstruct(net, drawings: Sequence[np.ndarray], temperature: float = 0.1, seed: int = 0,
                batch: int = 128) -> list[list[np.ndarray]]:
    """Encode each stroke-3 drawing (z = the encoder's mean), decode at `temperature`: strokes each."""
    import torch

    out: list[list[np.ndarray]] = []
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, len(drawings), batch):
        chunk = list(drawings[start:start + batch])
        mu = encode_mu(net, chunk)
        rows = net.sample(mu, batch=len(chunk), max_steps=net.cfg.max_len, temperature=temperature, generator=gen)
        out.extend(rows_to_strokes(r, net.cfg.scale_factor) for r in rows)
    return out


def reconstruction_ranks(net, drawings: Sequence[np.ndarray], index: "ChamferIndex | None" = None,
                         temperature: float = 0.1, seed: int = 0) -> list[int]:
    """For each drawing: how many other drawings its low-temperature reconstruction is at least as
    close to (0 = closest to its own input; an empty reconstruction ranks last)."""
    from generators.sketch_strokes import stroke3_to_strokes

    index = index or ChamferIndex([stroke3_to_strokes(d) for d in drawings])
    recon = reconstruct(net, drawings, temperature=temperature, seed=seed)
    return [index.rank(r, i) if len(r) else len(index) - 1 for i, r in enumerate(recon)]


def reconstruction_hits(net, drawings: Sequence[np.ndarray], index: "ChamferIndex | None" = None,
                        temperature: float = 0.1, seed: int = 0) -> list[bool]:
    """For each drawing: is its low-temperature reconstruction closest to it among `drawings`?"""
    return [r == 0 for r in reconstruction_ranks(net, drawings, index, temperature, seed)]


def drop_stacked_strokes(rows: np.ndarray, prefix: np.ndarray | None = None,
                         threshold: float = DUPLICATE_DISTANCE) -> np.ndarray:
    """Sampled stroke-5 rows without the strokes that retrace an earlier stroke (decoding-side fix).

    At low temperature the decoder sometimes draws a component twice, the second time on top of
    the first: invisible on paper, but the pen goes over it again (and the drawing counts a
    stroke it does not show). A new stroke closer than `threshold` (the same normalised measure
    as `stacked_duplicates`) to an earlier stroke, of the prefix or of the new rows, is removed;
    every kept point stays exactly where it was (its pen-up move absorbs the removed stroke's
    offsets) and the end-of-drawing state moves to the last kept row. `prefix`: stroke-5 rows the
    decoder read first (the creator's strokes), which are compared against but never removed.
    """
    rows = np.asarray(rows, dtype=np.float32)
    pre = np.zeros((0, 5), np.float32) if prefix is None else np.asarray(prefix, dtype=np.float32).reshape(-1, 5)
    if len(rows) < 2:
        return rows
    both = np.vstack([pre, rows])
    ends = np.flatnonzero(both[:, 3] + both[:, 4] > 0.5)  # last row of each stroke
    starts = np.concatenate([[0], ends + 1])
    if len(ends) == 0 or ends[-1] != len(both) - 1:  # an unfinished last stroke
        ends = np.append(ends, len(both) - 1)
    spans = [(int(s), int(e)) for s, e in zip(starts, ends) if s <= e]
    points = np.cumsum(both[:, :2].astype(np.float64), axis=0)
    strokes = [points[s:e + 1] for s, e in spans]
    if len(strokes) < 2:
        return rows
    norm = resample(normalise(strokes), 4 * STEP)
    kept: list[int] = []
    drop = np.zeros(len(both), dtype=bool)
    for i, (s, e) in enumerate(spans):
        if s >= len(pre) and any(stroke_distance(norm[i], norm[j]) < threshold for j in kept):
            drop[s:e + 1] = True
        else:
            kept.append(i)
    new_drop = drop[len(pre):]
    if not new_drop.any():
        return rows
    keep = ~new_drop
    out = rows[keep].copy()
    if len(out) == 0:  # every new stroke retraced an old one: nothing new, and the drawing ends
        return np.array([[0, 0, 0, 0, 1]], dtype=np.float32)
    # offsets from the kept points' absolute positions, so nothing kept moves
    origin = points[len(pre) - 1] if len(pre) else np.zeros(2)
    absolute = points[len(pre):][keep]
    out[:, :2] = np.diff(np.vstack([origin[None], absolute]), axis=0)
    if rows[-1, 4] > 0.5 and out[-1, 4] < 0.5:  # the ended drawing's end row was removed
        out[-1, 2:] = (0.0, 0.0, 1.0)
    return out
