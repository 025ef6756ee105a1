"""The `sketch` generator (Sketch-RNN) end to end with the tiny debug model, plus two real-weight checks."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generators.base import Cancelled, GeneratorUnavailable, InvalidInput, Progress, Rng
from generators.sketch_rnn import ASSETS, SketchRNN
from generators.sketch_strokes import parse_drawing

SVG = "{http://www.w3.org/2000/svg}"
PARTIAL = [[[20, 30], [60, 32], [100, 35]], [[60, 10], [58.5, 90.25]]]
CANVAS = {"strokes": PARTIAL, "width": 128, "height": 128}


@pytest.fixture(scope="module")
def gen() -> SketchRNN:
    torch.set_num_threads(1)
    g = SketchRNN.debug()
    g.load(torch.device("cpu"))
    return g


def run(g: SketchRNN, seed: int = 123, **params):
    params.setdefault("max_points", 40)  # the untrained debug model rarely stops by itself
    return g.generate(SketchRNN.Params.from_dict(params), rng=Rng(seed), progress=Progress.none())


def by_suffix(result, suffix: str) -> list:
    return [o for o in result.outputs if o.suffix == suffix]


def test_module_imports_no_heavy_libraries() -> None:
    code = ("import sys, generators.sketch_rnn as m; m.SketchRNN.Params.json_schema(); "
            "bad = [x for x in ('torch', 'numpy', 'gradio', 'PIL') if x in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stdout + done.stderr


def test_params_schema_carries_widget_hints() -> None:
    props = SketchRNN.Params.json_schema()["properties"]
    assert props["strokes"]["x-widget"] == "sketch" and props["strokes_b"]["x-widget"] == "sketch"
    assert props["model"]["x-load"] is True
    assert props["mode"]["enum"] == ["draw", "complete", "vary", "interpolate"]


def test_draw_outputs_have_the_expected_structure(gen: SketchRNN) -> None:
    r = run(gen, mode="draw", candidates=3, size=96)
    svgs = by_suffix(r, ".svg")
    assert len(svgs) == 3
    for out, info in zip(svgs, r.data["drawings"]):
        root = ET.fromstring(out.data)
        assert root.tag == SVG + "svg" and len(root.get("viewBox").split()) == 4
        paths = root.findall(f".//{SVG}path")
        assert len(paths) == info["strokes"] >= 1
        assert all(p.get("d").startswith("M") for p in paths)
    (png,) = by_suffix(r, ".png")
    assert png.data.size == (2 * 96, 2 * 96)  # 3 drawings on a 2x2 sheet
    assert "Seed: 123" in png.extra["parameters"]
    (gif,) = by_suffix(r, ".gif")
    anim = Image.open(io.BytesIO(gif.data))
    assert anim.format == "GIF" and anim.n_frames > 1
    (js,) = by_suffix(r, ".json")
    data = json.loads(js.data)
    assert data["format"] == "studio-sketch/1" and len(data["drawings"]) == 3
    (npz,) = by_suffix(r, ".npz")
    with np.load(io.BytesIO(npz.data)) as z:
        s5 = z["stroke5_0"]
        assert s5.shape[1] == 5 and s5[-1, 4] == 1


def test_same_seed_same_bytes_other_seed_differs(gen: SketchRNN) -> None:
    def fingerprint(seed: int) -> list[bytes]:
        r = run(gen, seed=seed, mode="complete", strokes=json.dumps(CANVAS), candidates=4, size=64)
        return [o.data.tobytes() if isinstance(o.data, Image.Image) else
                o.data.encode() if isinstance(o.data, str) else o.data for o in r.outputs]

    a, b, c = fingerprint(5), fingerprint(5), fingerprint(6)
    assert a == b
    assert a != c


def test_completion_keeps_the_users_strokes_unchanged(gen: SketchRNN) -> None:
    r = run(gen, mode="complete", strokes=json.dumps(CANVAS), candidates=5, size=64, animate=False)
    drawings = json.loads(by_suffix(r, ".json")[0].data)["drawings"]
    assert len(drawings) == 5 and not by_suffix(r, ".gif")
    for d in drawings:
        assert d["strokes"][:2] == PARTIAL  # exact values, not re-simplified or rounded
        assert d["user_strokes"] == 2 and (d["width"], d["height"]) == (128, 128)
        assert len(d["strokes"]) >= 3  # the model added something
    root = ET.fromstring(by_suffix(r, ".svg")[0].data)
    assert len(root.find(f"{SVG}g[@id='user']").findall(f"{SVG}path")) == 2


def test_json_output_reloads_as_input(gen: SketchRNN) -> None:
    r = run(gen, mode="complete", strokes=json.dumps(PARTIAL), candidates=1, size=64)
    text = by_suffix(r, ".json")[0].data
    again = parse_drawing(text)
    assert again.strokes[0].tolist() == PARTIAL[0]
    r2 = run(gen, mode="vary", strokes=text, candidates=2, size=64)
    assert len(by_suffix(r2, ".svg")) == 2


def test_vary_and_interpolate(gen: SketchRNN) -> None:
    r = run(gen, mode="vary", strokes=json.dumps(CANVAS), candidates=3, size=64)
    assert len(r.data["drawings"]) == 3
    r = run(gen, mode="interpolate", strokes=json.dumps(PARTIAL), strokes_b="[[[0, 0], [50, 50], [100, 0]]]",
            candidates=4, size=64, temperature=0.1)
    assert len(by_suffix(r, ".svg")) == 4


def test_single_dot_and_dense_input_are_handled(gen: SketchRNN) -> None:
    r = run(gen, mode="complete", strokes="[[[50, 50]]]", candidates=2, size=64)
    assert json.loads(by_suffix(r, ".json")[0].data)["drawings"][0]["strokes"][0] == [[50, 50]]
    t = np.linspace(0, 1, 5000)
    dense = [[[float(100 * x), float(100 * x * x)] for x in t]]  # 5,000 points on one smooth curve
    r = run(gen, mode="complete", strokes=json.dumps(dense), candidates=1, size=64)
    assert json.loads(by_suffix(r, ".json")[0].data)["drawings"][0]["strokes"][0] == dense[0]


@pytest.mark.parametrize("params, match", [
    ({"mode": "complete", "strokes": ""}, "empty"),
    ({"mode": "complete", "strokes": "[]"}, "empty"),
    ({"mode": "complete", "strokes": "[[[1, NaN], [2, 3]]]"}, "NaN"),
    ({"mode": "vary", "strokes": "[[[1, 2]"}, "not valid stroke JSON"),
    ({"mode": "interpolate", "strokes": "[[[1, 2]]]", "strokes_b": ""}, "strokes_b is empty"),
    ({"mode": "interpolate", "strokes": "[[[1, 2]]]", "strokes_b": "[[[1, 2]]]", "candidates": 1}, "at least 2"),
    ({"mode": "complete", "strokes": json.dumps([[[i, (i % 2) * 50] for i in range(400)]]), "simplify": 0},
     "points after simplification"),
    ({"mode": "doodle"}, "mode must be one of"),
    ({"temperature": float("nan")}, "finite"),
    ({"temperature": 3.0}, "between"),
    ({"candidates": 0}, "between"),
])
def test_bad_input_is_a_clear_error(gen: SketchRNN, params: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        run(gen, **params)


def test_decoder_only_model_refuses_vary(tmp_path: Path) -> None:
    from generators.sketch_model import SketchConfig, SketchRNN as Net, save_model

    save_model(Net(SketchConfig(enc_hidden=8, dec_hidden=16, z_dim=0, n_mixtures=2, max_len=40)),
               tmp_path / "model.safetensors")
    g = SketchRNN(model=str(tmp_path))  # a local folder
    g.load(torch.device("cpu"))
    assert g.weights_sha256 and len(g.weights_sha256) == 64
    assert len(run(g, mode="complete", strokes="[[[0, 0], [9, 9]]]", candidates=2, size=64).outputs) >= 4
    with pytest.raises(InvalidInput, match="latent code"):
        run(g, mode="vary", strokes="[[[0, 0], [9, 9]]]")


def test_missing_models_are_unavailable(tmp_path: Path) -> None:
    with pytest.raises(GeneratorUnavailable, match="no sketch model"):
        SketchRNN(model=str(tmp_path / "nope.safetensors")).load(torch.device("cpu"))
    with pytest.raises(GeneratorUnavailable, match="one Sketch-RNN .safetensors"):
        SketchRNN(model=str(tmp_path)).load(torch.device("cpu"))
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(GeneratorUnavailable, match="could not load"):
        SketchRNN(model=str(tmp_path / "bad.safetensors")).load(torch.device("cpu"))
    with pytest.raises(GeneratorUnavailable, match="Hugging Face"):  # HF_HUB_OFFLINE=1 in conftest
        SketchRNN(model="someone/sketch-rnn-cats").load(torch.device("cpu"))
    assert SketchRNN().estimate_bytes() > 0  # works before load


def test_cancel_stops_the_job(gen: SketchRNN) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        gen.generate(SketchRNN.Params(), rng=Rng(1), progress=Progress(cancel=cancel))


def test_the_retired_hershey_model_says_why() -> None:
    with pytest.raises(GeneratorUnavailable, match="retired"):
        SketchRNN(model="hershey").load(torch.device("cpu"))


@pytest.mark.real
@pytest.mark.parametrize("model", ["kanji"])
def test_embedded_models_draw_and_complete(model: str) -> None:
    if not (ASSETS / f"{model}.safetensors").exists():
        pytest.fail(f"embedded weights assets/sketch/{model}.safetensors are missing")
    g = SketchRNN(model=model)
    g.load(torch.device("cpu"))
    r = run(g, mode="complete", strokes=json.dumps(CANVAS), candidates=2, size=64, animate=False)
    drawings = json.loads(by_suffix(r, ".json")[0].data)["drawings"]
    assert all(d["strokes"][:2] == PARTIAL for d in drawings)
    r = run(g, mode="draw", candidates=1, size=64, animate=False)
    pts = np.vstack([np.array(s) for s in json.loads(by_suffix(r, ".json")[0].data)["drawings"][0]["strokes"]])
    assert np.all(np.isfinite(pts)) and len(pts) >= 2
