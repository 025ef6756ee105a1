"""Pickers instead of numbers: named instruments, style swatches and mixtures, preset checkboxes, models."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio.ui import pickers
from studio.ui.form import Form


def test_mixture_text_round_trip() -> None:
    assert pickers.format_mixture([("starry-blue", 0.6), ("ink-wash", 0.4), (None, 0.5)]) == \
        "starry-blue:0.6, ink-wash:0.4"
    assert pickers.format_mixture([("red-grid", 0.5), ("red-grid", 0.0)]) == "red-grid"  # one style: bare name
    assert pickers.parse_mixture("oneill:0.7, essen:0.3") == {"oneill": 0.7, "essen": 0.3}
    assert pickers.parse_mixture("bach") == {"bach": 1.0}


def test_general_midi_names() -> None:
    names = pickers.gm_names()
    assert len(names) == 128 and names[0] == "Acoustic Grand Piano" and names[73] == "Flute"


def test_forms_use_pickers_and_keep_the_generators_values() -> None:
    from generators.face_anim import FaceParams
    from generators.music import MusicParams
    from generators.style import StyleParams

    with gr.Blocks():
        music = Form(MusicParams.json_schema(), prefix="music")
        style = Form(StyleParams.json_schema(), prefix="style")
        face = Form(FaceParams.json_schema(), prefix="face")
    instrument = music.field("instrument").component
    assert isinstance(instrument, gr.Dropdown) and (" 73 · Flute".strip(), 73) in instrument.choices
    params = music.to_params([f.component.value for f in music.fields])
    assert params["instrument"] == 73 and params["style"] == "oneill"  # the generator's own defaults
    assert isinstance(face.field("presets").component, gr.CheckboxGroup)
    face_params = face.to_params([f.component.value for f in face.fields])
    assert face_params["presets"] == ["blink", "breathe"]
    FaceParams.from_dict({**face_params, "consent": True, "image": "x.png"})  # the generator takes the list
    restored = face.to_values({"presets": ["smile:0.8@1-3"]})[[f.name for f in face.fields].index("presets")]
    assert "smile:0.8@1-3" in restored["choices"] and restored["value"] == ["smile:0.8@1-3"]
    assert style.field("style").component.value == "starry-blue"
    if any(pickers.STYLE_PREVIEWS.glob("*.webp")):
        assert len(list(pickers.STYLE_PREVIEWS.glob("*.webp"))) == 26


def test_installed_pipelines_lists_cached_diffusers_models(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    snap = tmp_path / "models--acme--tiny-sd" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model_index.json").write_text("{}")
    (tmp_path / "models--acme--a-text-model" / "snapshots" / "abc").mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert pickers.installed_pipelines() == ["acme/tiny-sd"]
