"""Stroke formats (stroke-3/5 round trips), RDP simplification bounds, parsing the creator's JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest

from generators.base import InvalidInput
from generators.sketch_strokes import (parse_drawing, polyline_distance, simplify, stroke3_to_stroke5,
                                       stroke3_to_strokes, stroke5_to_stroke3, strokes_to_stroke3)


def random_strokes(rng: np.random.Generator, n: int = 5) -> list[np.ndarray]:
    sizes = [1] + list(rng.integers(2, 20, size=n - 1))  # include a single-point stroke (a dot)
    return [rng.uniform(-100, 100, size=(int(k), 2)) for k in sizes]


def test_stroke3_round_trip() -> None:
    rng = np.random.default_rng(0)
    strokes = random_strokes(rng)
    s3 = strokes_to_stroke3(strokes, origin=(5.0, -3.0))
    assert s3.shape == (sum(len(s) for s in strokes), 3)
    assert s3[:, 2].sum() == len(strokes)  # one lift per stroke
    back = stroke3_to_strokes(s3, origin=(5.0, -3.0))
    assert len(back) == len(strokes)
    for a, b in zip(strokes, back):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_stroke5_round_trip_and_padding() -> None:
    rng = np.random.default_rng(1)
    s3 = strokes_to_stroke3(random_strokes(rng))
    s5 = stroke3_to_stroke5(s3, max_len=len(s3) + 7)
    assert s5.shape == (len(s3) + 7, 5)
    np.testing.assert_array_equal(s5[:, 2:].sum(axis=1), 1.0)  # pen states are one-hot
    assert s5[len(s3) - 1, 4] == 1 and np.all(s5[len(s3):] == [0, 0, 0, 0, 1])
    back = stroke5_to_stroke3(s5)
    np.testing.assert_array_equal(back, s3)
    with pytest.raises(ValueError):
        stroke3_to_stroke5(s3, max_len=len(s3) - 1)


def test_rdp_keeps_every_point_within_epsilon() -> None:
    rng = np.random.default_rng(2)
    t = np.linspace(0, 2 * np.pi, 400)
    wiggly = np.stack([t * 30, 20 * np.sin(t) + rng.normal(0, 0.3, t.shape)], axis=1)
    for eps in (0.5, 2.0, 8.0):
        (simple,) = simplify([wiggly], eps)
        assert 2 <= len(simple) < len(wiggly)
        np.testing.assert_array_equal(simple[0], wiggly[0])
        np.testing.assert_array_equal(simple[-1], wiggly[-1])
        assert polyline_distance(wiggly, simple).max() <= eps + 1e-9
        # the simplified points are a subset of the original ones
        assert all(np.any(np.all(np.isclose(wiggly, p), axis=1)) for p in simple)
    coarse, fine = simplify([wiggly], 8.0)[0], simplify([wiggly], 0.5)[0]
    assert len(coarse) < len(fine)


def test_rdp_edge_cases() -> None:
    dot = np.array([[3.0, 4.0]])
    repeated = np.array([[1.0, 1.0]] * 5 + [[2.0, 2.0]])
    ring = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], dtype=float)
    out = simplify([dot, repeated, ring], 2.0)
    np.testing.assert_array_equal(out[0], dot)
    np.testing.assert_array_equal(out[1], [[1, 1], [2, 2]])
    assert len(out[2]) == 5  # a square keeps its corners
    unchanged = simplify([ring], 0.0)[0]
    np.testing.assert_array_equal(unchanged, ring)


def test_parse_drawing_forms() -> None:
    d = parse_drawing("[[[1, 2], [3, 4]], [[5, 6]]]")
    assert len(d.strokes) == 2 and d.width is None
    d = parse_drawing(json.dumps({"strokes": [[[1, 2], [3, 4]]], "width": 400, "height": 300}))
    assert (d.width, d.height) == (400.0, 300.0)
    scale, centre = d.frame_transform()
    assert scale == pytest.approx(255 / 400) and list(centre) == [200, 150]
    d = parse_drawing(json.dumps({"format": "studio-sketch/1", "drawings": [{"strokes": [[[0, 0], [1, 1]]]}]}))
    assert d.n_points == 2
    dot = parse_drawing("[[[7, 7]]]")
    scale, centre = dot.frame_transform()  # a single dot has no extent: unit scale, no division by zero
    assert scale == 1.0 and list(centre) == [7, 7]


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("   ", "empty"),
    ("[]", "empty"),
    ("[[], []]", "empty"),
    ("{not json", "not valid stroke JSON"),
    ('{"lines": []}', "list of strokes"),
    ('"hello"', "list of strokes"),
    ("[[1, 2]]", "stroke 1"),
    ('[[["a", 2]]]', "stroke 1"),
    ("[[[1, 2, 3]]]", "stroke 1"),
    ("[[[1, NaN]]]", "NaN"),
    ("[[[1, Infinity]]]", "finite"),
    ("[[[1e300, 2]]]", "million"),
    ('{"strokes": [[[1, 2]]], "width": 100}', "both canvas width and height"),
    ('{"strokes": [[[1, 2]]], "width": 0, "height": 10}', "canvas"),
    ('{"drawings": [{"strokes": [[[1, 2]]]}, {"strokes": [[[1, 2]]]}]}', "2 drawings"),
])
def test_parse_drawing_rejects_bad_input(text: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_drawing(text)


def test_parse_drawing_caps_size() -> None:
    too_many = json.dumps([[[i, i] for i in range(20_001)]])
    with pytest.raises(InvalidInput, match="more than 20,000 points"):
        parse_drawing(too_many)
    with pytest.raises(InvalidInput, match="strokes; the limit"):
        parse_drawing(json.dumps([[[0, 0]]] * 501))
