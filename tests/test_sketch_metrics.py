"""The shape measures behind the Sketch-RNN benchmark, and the training augmentations."""
from __future__ import annotations

import numpy as np
import torch

from generators.sketch_metrics import ChamferIndex, drop_stacked_strokes, normalise, stacked_duplicates
from generators.sketch_model import SketchConfig, SketchRNN
from generators.sketch_strokes import stroke3_to_stroke5, stroke3_to_strokes, stroke5_to_stroke3, strokes_to_stroke3
from training.sketch.train import drop_points, first_strokes

SQUARE = [np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], float)]
CROSS = [np.array([[0, 0], [10, 10]], float), np.array([[10, 0], [0, 10]], float)]
BARS = [np.array([[0, y], [10, y]], float) for y in (0, 5, 10)]
TRIANGLE = [np.array([[0, 10], [5, 0], [10, 10], [0, 10]], float)]


def test_chamfer_ignores_position_and_size_but_not_shape() -> None:
    index = ChamferIndex([SQUARE, CROSS, BARS, TRIANGLE])
    moved = [s * 3.0 + 40.0 for s in CROSS]  # the cross, bigger and elsewhere
    d = index.distances(moved)
    assert d[1] < 0.01 and d.argmin() == 1
    assert index.identifies(moved, 1) and not index.identifies(moved, 0)
    for i, ref in enumerate([SQUARE, CROSS, BARS, TRIANGLE]):
        assert index.identifies(ref, i)
    pts = np.vstack(normalise(moved))
    assert np.allclose(pts.min(axis=0), 0.1) and np.allclose(pts.max(axis=0), 0.9)


def test_stacked_duplicates_finds_a_stroke_drawn_twice() -> None:
    assert stacked_duplicates(CROSS + [CROSS[0] + 0.05]) is True
    assert stacked_duplicates(CROSS) is False and stacked_duplicates(BARS) is False
    assert stacked_duplicates(SQUARE) is False  # one stroke


def _absolute(rows: np.ndarray, origin=(0.0, 0.0)) -> list[np.ndarray]:
    return stroke3_to_strokes(stroke5_to_stroke3(rows), origin=origin)


def test_a_retraced_stroke_is_dropped_and_nothing_else_moves() -> None:
    drawing = [CROSS[0], CROSS[1], CROSS[0] + 0.05, BARS[0] + [0.0, 20.0]]
    rows = stroke3_to_stroke5(strokes_to_stroke3(drawing))
    out = drop_stacked_strokes(rows)
    kept = _absolute(out)
    assert len(kept) == 3 and not stacked_duplicates(kept)
    for got, want in zip(kept, [CROSS[0], CROSS[1], BARS[0] + [0.0, 20.0]]):
        assert np.allclose(got, want, atol=1e-4)
    assert out[-1, 4] == 1 and not out[:-1, 4].any()  # still one end-of-drawing row, at the end
    assert np.array_equal(drop_stacked_strokes(stroke3_to_stroke5(strokes_to_stroke3(CROSS))),
                          stroke3_to_stroke5(strokes_to_stroke3(CROSS)))  # nothing to drop: unchanged
    # the retraced stroke was the last one: the end moves to the last kept row
    last = drop_stacked_strokes(stroke3_to_stroke5(strokes_to_stroke3(CROSS + [CROSS[1] + 0.05])))
    assert len(_absolute(last)) == 2 and last[-1, 4] == 1


def test_a_new_stroke_retracing_the_creators_is_dropped_but_theirs_stay() -> None:
    prefix = stroke3_to_stroke5(strokes_to_stroke3(CROSS))
    prefix[-1, 2:] = (0.0, 1.0, 0.0)  # a partial drawing: the pen lifts, it does not end
    new = strokes_to_stroke3([CROSS[1] + 0.05, BARS[1]], origin=CROSS[1][-1])
    out = drop_stacked_strokes(stroke3_to_stroke5(new), prefix)
    kept = _absolute(out, origin=CROSS[1][-1])
    assert len(kept) == 1 and np.allclose(kept[0], BARS[1], atol=1e-4)


def test_point_dropping_keeps_the_drawing_in_place() -> None:
    rng = np.random.default_rng(0)
    zigzag = [np.array([[i * 4.0, (i % 2) * 8.0] for i in range(12)]), np.array([[0.0, 30.0], [20.0, 30.0]])]
    s3 = strokes_to_stroke3(zigzag)
    dropped = drop_points(s3, 0.5, rng)
    assert 2 + 2 + 2 <= len(dropped) < len(s3)
    # every kept point is where it was: absolute positions of the kept rows are unchanged
    kept_abs = np.cumsum(dropped[:, :2], axis=0)
    all_abs = np.cumsum(s3[:, :2], axis=0)
    assert all(any(np.allclose(p, q) for q in all_abs) for p in kept_abs)
    assert dropped[:, 2].sum() == s3[:, 2].sum()  # no stroke lost
    assert np.allclose(kept_abs[-1], all_abs[-1])


def test_first_strokes_is_a_prefix_of_whole_strokes() -> None:
    s3 = strokes_to_stroke3(BARS)
    rng = np.random.default_rng(1)
    for _ in range(10):
        part = first_strokes(s3, rng)
        assert 1 <= part[:, 2].sum() <= 2 and part[-1, 2] == 1
        assert np.array_equal(part, s3[:len(part)])
    one = strokes_to_stroke3(SQUARE)
    assert np.array_equal(first_strokes(one, rng), one)


def test_loss_reads_the_encoder_input_it_is_given() -> None:
    torch.manual_seed(0)
    model = SketchRNN(SketchConfig(enc_hidden=8, dec_hidden=16, z_dim=4, n_mixtures=2, max_len=16,
                                   scale_factor=10.0)).eval()
    full = strokes_to_stroke3(BARS)
    full[:, :2] /= 10.0
    part = full[:2]
    x = torch.from_numpy(stroke3_to_stroke5(full, 16))[None]
    xp = torch.from_numpy(stroke3_to_stroke5(part, 16))[None]
    with torch.no_grad():
        a = model.loss(x, torch.tensor([len(full)]), sample_z=False)
        b = model.loss(x, torch.tensor([len(full)]), sample_z=False, enc_x=xp, enc_lengths=torch.tensor([2]))
        c = model.loss(x, torch.tensor([len(full)]), sample_z=False, input_dropout=0.5)
    assert float(a["l_kl"]) != float(b["l_kl"])
    assert all(np.isfinite(float(v)) for v in (*a.values(), *b.values(), *c.values()))
