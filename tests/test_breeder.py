"""Breeder (CPPN + NEAT interactive evolution): grids, breeding, lineage, genomes, bad input."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from generators.base import InvalidInput, Progress, Rng
from generators.breeder import Breeder, BreederParams
from generators import cppn


@pytest.fixture(scope="module")
def gen() -> Breeder:
    g = Breeder.debug()
    g.load("cpu")
    return g


def run(gen: Breeder, seed: int = 7, **params):
    return gen.generate(BreederParams.from_dict(params), rng=Rng(seed), progress=Progress.none())


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_import_is_light() -> None:
    code = ("import sys, generators.breeder\n"
            "print([m for m in ('torch', 'numpy', 'gradio', 'PIL') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_random_grid_shapes_and_outputs(gen: Breeder) -> None:
    r = run(gen, mode="random", rows=2, cols=3, width=40, height=24)
    grid, *cands = r.outputs
    assert grid.role == "grid" and grid.data.size == (3 * 40, 2 * 24)
    assert len(cands) == 6 and all(o.role == "image" and o.suffix == ".png" for o in cands)
    assert all(o.data.size == (40, 24) and o.data.mode == "RGB" for o in cands)
    assert len(r.data["genomes"]) == 6 and r.data["grid"] == {"rows": 2, "cols": 3}
    # the grid tiles are the candidates themselves
    arr = np.asarray(grid.data)
    assert np.array_equal(arr[24:48, 40:80], np.asarray(cands[4].data))
    # candidates differ from each other
    assert len({png_bytes(o.data) for o in cands}) == 6
    params = cands[0].extra["parameters"]
    assert "Seed: 7" in params and "Size: 40x24" in params and r.data["ids"][0] in params


def test_same_seed_same_bytes(gen: Breeder) -> None:
    a = run(gen, seed=11, width=32, height=32)
    b = run(gen, seed=11, width=32, height=32)
    c = run(gen, seed=12, width=32, height=32)
    assert [png_bytes(o.data) for o in a.outputs] == [png_bytes(o.data) for o in b.outputs]
    assert a.data == b.data
    assert a.data["ids"] != c.data["ids"]


def test_breed_offspring_differ_and_keep_lineage(gen: Breeder) -> None:
    first = run(gen, seed=3, width=32, height=32)
    picked = [first.data["genomes"][1], first.data["genomes"][5]]
    picked_ids = {g["id"] for g in picked}
    r = run(gen, seed=4, mode="breed", genomes=json.dumps(picked), width=32, height=32, rows=3, cols=3)
    assert sorted(r.parents) == sorted(picked_ids)
    assert r.data["parent_ids"] == [g["id"] for g in picked]
    parent_imgs = {png_bytes(Image.fromarray(cppn.render(g, 32, 32))) for g in picked}
    for child, out in zip(r.data["genomes"], r.outputs[1:]):
        assert child["id"] not in picked_ids
        assert child["parents"] and set(child["parents"]) <= picked_ids
        assert child["generation"] == 1
        assert r.data["lineage"][child["id"]] == child["parents"]
        assert png_bytes(out.data) not in parent_imgs
    # with two parents and crossover 1.0 every child has both parents
    r2 = run(gen, seed=5, mode="breed", genomes=picked, crossover=1.0, width=16, height=16)
    assert all(len(c["parents"]) == 2 for c in r2.data["genomes"])
    # a third generation counts up
    r3 = run(gen, seed=6, mode="breed", genomes=[r2.data["genomes"][0]], width=16, height=16)
    assert {c["generation"] for c in r3.data["genomes"]} == {2}


def test_ratings_weight_parents(gen: Breeder) -> None:
    first = run(gen, seed=3, width=16, height=16)
    a, b = first.data["genomes"][:2]
    r = run(gen, seed=9, mode="breed", genomes=[a, b], ratings=[1.0, 0.0], crossover=0.0, rows=4, cols=4,
            width=16, height=16)
    assert all(c["parents"] == [a["id"]] for c in r.data["genomes"])


def test_genome_json_round_trip() -> None:
    rng = np.random.default_rng(0)
    g = cppn.random_genome(rng, complexity=6)
    text = json.dumps(g)
    back = cppn.normalise(json.loads(text))
    assert back == g
    assert cppn.to_json(back) == cppn.to_json(g)
    kid = cppn.breed([g], 1, rng)[0]
    assert cppn.normalise(json.loads(json.dumps(kid))) == kid
    assert np.array_equal(cppn.render(back, 20, 20), cppn.render(g, 20, 20))


def test_resolution_independent() -> None:
    """Rendering at 3x puts each 3x3 block's centre pixel on the small image's pixel."""
    g = cppn.random_genome(np.random.default_rng(5), complexity=5)
    for sym in ("none", "radial-6"):
        small = cppn.render(g, 30, 20, symmetry=sym).astype(int)
        big = cppn.render(g, 90, 60, symmetry=sym).astype(int)
        assert np.abs(big[1::3, 1::3] - small).max() <= 1  # equal up to float rounding


def test_render_mode_and_banding(gen: Breeder, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(gen, seed=3, width=16, height=16)
    g = first.data["genomes"][0]
    r = run(gen, mode="render", genomes=[g], width=200, height=120, symmetry="mirror-x", color="gray")
    assert len(r.outputs) == 1 and r.outputs[0].data.size == (200, 120)
    assert r.parents == [g["id"]]
    arr = np.asarray(r.outputs[0].data)
    assert np.array_equal(arr[:, :100], arr[:, ::-1][:, :100])  # mirror-x: symmetric about the centre
    assert np.array_equal(arr[..., 0], arr[..., 1])  # gray
    monkeypatch.setattr(cppn, "ROW_BAND_PIXELS", 1000)  # many bands: same picture
    banded = run(gen, mode="render", genomes=[g], width=200, height=120, symmetry="mirror-x", color="gray")
    assert np.array_equal(np.asarray(banded.outputs[0].data), arr)


@pytest.mark.parametrize("params, match", [
    ({"mode": "breed"}, "at least one picked genome"),
    ({"mode": "breed", "genomes": []}, "at least one picked genome"),
    ({"mode": "render"}, "exactly one genome"),
    ({"width": 0}, "width"),
    ({"width": 100000}, "width"),
    ({"rows": 6, "cols": 6, "width": 2048, "height": 2048}, "megapixels"),
    ({"mode": "render", "genomes": [{}], "width": 8192, "height": 8192}, "megapixels"),
    ({"mode": "breed", "genomes": "[not json"}, "not a valid JSON list"),
    ({"mode": "breed", "genomes": ["hello"]}, "not a valid JSON object"),
    ({"mode": "breed", "genomes": [3]}, "must be an object"),
    ({"color": "purple"}, "color must be one of"),
    ({"mode": "wander"}, "mode must be one of"),
    ({"mode": "breed", "genomes": [{}, {}], "ratings": [1.0]}, "one rating per"),
    ({"mode": "breed", "genomes": [{}], "ratings": [0.0]}, "at least one above zero"),
])
def test_bad_params(params: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        BreederParams.from_dict(params)


def _valid() -> dict:
    return cppn.random_genome(np.random.default_rng(1), complexity=2)


def _cycle(g: dict) -> dict:
    hidden = [n["id"] for n in g["nodes"] if n["kind"] == "hidden"]
    g["connections"] = [c for c in g["connections"] if not (c["src"] == hidden[1] and c["dst"] == hidden[0])]
    g["connections"] += [{"src": hidden[0], "dst": hidden[1], "w": 1.0, "on": True},
                         {"src": hidden[1], "dst": hidden[0], "w": 1.0, "on": True}]
    return g


@pytest.mark.parametrize("mangle, match", [
    (lambda g: {"nodes": "x", "connections": []}, "needs a 'nodes' list"),
    (lambda g: {**g, "format": "neat-v9"}, "unknown genome format"),
    (lambda g: {**g, "nodes": g["nodes"][1:]}, "exactly the input nodes"),
    (lambda g: {**g, "nodes": [n for n in g["nodes"] if n["id"] != 5]}, "node that does not exist|output nodes"),
    (lambda g: {**g, "connections": g["connections"] + [{"src": 0, "dst": 99, "w": 1}]}, "does not exist"),
    (lambda g: {**g, "connections": g["connections"] + [{"src": 4, "dst": 5, "w": 1}]}, "leaves an output"),
    (lambda g: {**g, "connections": [dict(c, w=float("nan")) for c in g["connections"]]}, "finite"),
    (lambda g: {**g, "connections": [dict(c, w="big") for c in g["connections"]]}, "must be a number"),
    (lambda g: {**g, "nodes": [dict(n, act="relu6") if n["kind"] == "hidden" else n for n in g["nodes"]]},
     "activation"),
    (_cycle, "cycle"),
])
def test_malformed_genomes(gen: Breeder, mangle, match: str) -> None:
    bad = mangle(json.loads(json.dumps(_valid())))
    with pytest.raises(InvalidInput, match=match):
        run(gen, mode="breed", genomes=[_valid(), bad], width=16, height=16)
