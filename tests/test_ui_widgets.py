"""The specialised form widgets: the sketch canvas (stroke JSON) and the inpainting mask editor.

The canvas's drawing itself runs in the browser (tests/test_browser.py draws on it); here: how
the forms are built and wired, and the editor-layer -> mask PNG conversion the run handler does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")

from generators.base import Params, param  # noqa: E402
from studio.ui.form import Form  # noqa: E402
from studio.ui.widgets_mask import background_for, mask_from_editor  # noqa: E402
from tests.ui_fixtures import PenParams  # noqa: E402


@dataclass(frozen=True)
class InpaintParams(Params):
    prompt: str = param("", "what to paint")
    init_image: str = param("", "the starting picture", widget="image")
    mask: str = param("", "white = repaint", widget="mask")


def _layer(tmp_path: Path, name: str, size: tuple[int, int], box: tuple[int, int, int, int] | None,
           alpha: int = 255, color: tuple[int, int, int] = (255, 43, 214)) -> str:
    """A brush layer like the editor uploads: transparent, with an optional painted rectangle."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", size, (0, 0, 0, 0))
    if box is not None:
        ImageDraw.Draw(img).rectangle(box, fill=(*color, alpha))
    path = tmp_path / name
    img.save(path)
    return str(path)


def _dependencies(blocks: gr.Blocks, target: gr.components.Component) -> list[dict]:
    return [d for d in blocks.config["dependencies"] if [target._id, "change"] in [list(t) for t in d["targets"]]]


# -- sketch canvas ------------------------------------------------------------------------------
def test_sketch_field_is_a_canvas_writing_into_its_strokes_box() -> None:
    with gr.Blocks() as demo:
        form = Form(PenParams.json_schema(), prefix="pen")
    field = form.field("strokes")
    assert field.kind == "text" and isinstance(field.component, gr.Textbox)
    assert field.component.elem_id == "pen-strokes"
    [canvas] = [b for b in demo.blocks.values() if isinstance(b, gr.HTML) and b.elem_id == "pen-strokes-canvas"]
    assert 'data-target="pen-strokes"' in canvas.html_template and "<canvas" in canvas.html_template
    for needed in ("pointerdown", "pointerup", "setPointerCapture", "studio-sketch-undo", "studio-sketch-clear",
                   "dispatchEvent(new Event('input'"):
        assert needed in canvas.js_on_load
    assert "<script" not in canvas.html_template and "http" not in canvas.js_on_load  # no CDN, works offline
    # Typing or restoring into the box redraws the canvas: a browser-only (js) change handler.
    [dep] = _dependencies(demo, field.component)
    assert dep["backend_fn"] is False and "#pen-strokes-canvas .studio-sketch" in dep["js"]
    # What the canvas writes goes to the generator unchanged.
    drawn = json.dumps({"strokes": [[[10.5, 20], [30, 40.5]]], "width": 384, "height": 384})
    params = form.to_params([drawn, 3.0])
    assert params == {"strokes": drawn, "line": 3.0}
    assert PenParams.from_dict(params).strokes == drawn


def test_canvas_json_is_what_the_sketch_generator_reads() -> None:
    from generators.sketch_rnn import SketchParams
    from generators.sketch_strokes import parse_drawing

    with gr.Blocks() as demo:
        form = Form(SketchParams.json_schema(), prefix="sketch")
    ids = {b.elem_id for b in demo.blocks.values() if isinstance(b, gr.HTML) and b.elem_id}
    assert {"sketch-strokes-canvas", "sketch-strokes_b-canvas"} <= ids  # one canvas per drawing field
    drawn = json.dumps({"strokes": [[[10, 10], [200, 30], [300, 300]], [[50, 300]]], "width": 384, "height": 384})
    values = [drawn if f.name == "strokes" else f.schema.get("default") for f in form.fields]
    drawing = parse_drawing(form.to_params(values)["strokes"])
    assert [len(s) for s in drawing.strokes] == [3, 1] and (drawing.width, drawing.height) == (384, 384)


def test_canvas_ids_stay_unique_without_a_prefix() -> None:
    with gr.Blocks() as demo:
        Form(PenParams.json_schema())
        Form(PenParams.json_schema())
    targets = [b.elem_id for b in demo.blocks.values() if isinstance(b, gr.HTML) and b.elem_id]
    assert len(targets) == 2 and len(set(targets)) == 2


# -- mask editor --------------------------------------------------------------------------------
def test_painted_layer_becomes_a_mask_the_image_generator_accepts(tmp_path: Path) -> None:
    from PIL import Image

    from generators.image_io import load_mask

    layer = _layer(tmp_path, "layer.png", (40, 30), (5, 6, 14, 19), alpha=128)  # a half-transparent brush
    value = {"background": None, "layers": [layer], "composite": None}
    path = mask_from_editor(value, out_dir=tmp_path / "masks")
    assert Path(path).parent == tmp_path / "masks" and Path(path).suffix == ".png"
    with Image.open(path) as img:
        assert img.mode == "L" and img.size == (40, 30)
        assert img.getpixel((10, 10)) == 255 and img.getpixel((30, 25)) == 0  # painted = repaint, whatever alpha
        assert sorted(v for _, v in img.getcolors()) == [0, 255]
        assert img.histogram()[255] == 10 * 14
    mask = load_mask(path, size=(40, 30))
    assert mask.getpixel((10, 10)) == 255 and mask.getpixel((0, 0)) == 0
    assert mask_from_editor(value, out_dir=tmp_path / "masks") == path  # named by content, written once
    assert [p.name for p in (tmp_path / "masks").iterdir()] == [Path(path).name]  # no temp file left


def test_layers_combine_and_nothing_painted_means_no_mask(tmp_path: Path) -> None:
    from PIL import Image

    a = _layer(tmp_path, "a.png", (20, 20), (0, 0, 4, 4))
    b = _layer(tmp_path, "b.png", (20, 20), (15, 15, 19, 19), color=(0, 0, 0))
    empty = _layer(tmp_path, "empty.png", (20, 20), None)
    with Image.open(mask_from_editor({"background": None, "layers": [a, b, empty], "composite": None},
                                     out_dir=tmp_path)) as img:
        assert img.getpixel((2, 2)) == img.getpixel((17, 17)) == 255 and img.getpixel((10, 10)) == 0
    assert mask_from_editor({"background": a, "layers": [empty], "composite": a}, out_dir=tmp_path) == ""
    assert mask_from_editor({"background": a, "layers": [], "composite": a}, out_dir=tmp_path) == ""
    assert mask_from_editor(None, out_dir=tmp_path) == ""


def test_bad_layers_get_a_sentence_not_a_crash(tmp_path: Path) -> None:
    small = _layer(tmp_path, "small.png", (10, 10), (0, 0, 3, 3))
    big = _layer(tmp_path, "big.png", (12, 10), (0, 0, 3, 3))
    with pytest.raises(gr.Error, match="different sizes"):
        mask_from_editor({"background": None, "layers": [small, big], "composite": None}, out_dir=tmp_path)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture")
    with pytest.raises(gr.Error, match="could not be read"):
        mask_from_editor({"background": None, "layers": [str(junk)], "composite": None}, out_dir=tmp_path)
    with pytest.raises(gr.Error, match="not a painted layer"):
        mask_from_editor("/etc/passwd", out_dir=tmp_path)
    assert not list(tmp_path.glob("mask-*.png"))  # nothing half-written


def test_mask_field_is_an_editor_over_the_starting_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))  # where the server's uploads land
    with gr.Blocks() as demo:
        form = Form(InpaintParams.json_schema(), prefix="inpaint")
    mask, image = form.field("mask"), form.field("init_image")
    assert mask.kind == "mask" and isinstance(mask.component, gr.ImageEditor)
    assert mask.component.type == "filepath" and mask.component.format == "png"
    assert [f.name for f in form.file_fields()] == ["init_image"]  # "Send to" targets the picture, not the mask
    # A new starting picture becomes the editor's background, with a fresh paint layer.
    [dep] = _dependencies(demo, image.component)
    assert dep["backend_fn"] and dep["outputs"] == [mask.component._id]
    assert background_for("/x/pic.png") == {"background": "/x/pic.png", "layers": [], "composite": "/x/pic.png"}
    assert background_for(None) is None
    # Submit: the painted layer is turned into a mask file in the upload folder.
    layer = _layer(tmp_path, "layer.png", (16, 16), (2, 2, 5, 5))
    params = form.to_params(["fill it", "/uploads/pic.png", {"background": "/uploads/pic.png", "layers": [layer],
                                                               "composite": None}])
    assert Path(params["mask"]).is_relative_to(tmp_path / "uploads") and Path(params["mask"]).is_file()
    assert form.to_params(["fill it", "", None])["mask"] == ""
    # Restoring settings never loads a mask from a path: the editor is cleared.
    restored = form.to_values({"prompt": "again", "init_image": "", "mask": "/etc/passwd"})
    assert restored[2]["value"] is None


# -- output view --------------------------------------------------------------------------------
def test_drawings_go_to_the_gallery_and_scores_stay_full_width(tmp_path: Path) -> None:
    from studio.ui.form import OutputView

    names = ("sketch-ab12-0-0-drawing.svg", "sketch-ab12-0-1-drawing.svg", "sketch-ab12-0-2-image.png",
             "sketch-ab12-0-3-animation.gif", "music-cd34-0-1-score.svg")
    files = [tmp_path / n for n in names]
    for f in files:
        f.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    with gr.Blocks():
        view = OutputView(prefix="t")
    gallery, _, _, svg, *_ = view.show(files, None)
    assert gallery["value"] == [str(f) for f in files[:4]] and gallery["visible"]  # the candidates first
    assert "music-cd34-0-1-score.svg" in svg["value"] and "drawing.svg" not in svg["value"]
