"""Pickers instead of numbers and free text, for fields whose choices the studio knows.

`picker(generator, field, ...)` returns a `form.Widget` (or None for the plain schema widget):
- style.style: a gallery of the 26 built-in styles with preview swatches (click to pick) and
  mixture sliders ("starry-blue:0.6, ink-wash:0.4"), writing the same style text the generator takes;
- music.instrument: the 128 General MIDI programs by name;
- music.style: one slider per corpus style (a DeepJ-style mixture);
- face.presets: one checkbox per expression preset (timed presets from a restore stay listed);
- image.model: a dropdown of the embedded model(s) and the diffusers pipelines installed in the
  Hugging Face cache (any folder or id can still be typed).
The choices come from the generator's schema or from data files; no model is imported.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from generators.resources import assets_dir  # checkout or installed `studio_assets`
STYLE_PREVIEWS = assets_dir("style", "previews")  # made by scripts/make_style_previews.py
FACE_PRESETS = ("blink", "breathe", "smile", "brows", "nod", "turn")  # generators/face_motion.py's names
MIX_SLOTS = 3  # style mixture rows shown


def _widget() -> Any:
    from studio.ui.form import Widget  # form imports this module

    return Widget


# -- General MIDI ---------------------------------------------------------------------------------
def gm_names() -> list[str]:
    """The 128 General MIDI program names (pretty_midi's table; ~50 ms once gradio is loaded)."""
    from pretty_midi.constants import INSTRUMENT_MAP

    return list(INSTRUMENT_MAP)


def instrument_widget(name: str, schema: dict[str, Any], label: str, info: str, elem_id: str | None) -> Any:
    choices = [(f"{i} · {n}", i) for i, n in enumerate(gm_names())]
    comp = gr.Dropdown(choices=choices, value=schema.get("default", 0), label="Instrument",
                       info="General MIDI instrument of the MIDI file and audio", elem_id=elem_id)
    return _widget()(comp, kind="int", to_param=lambda v: int(v) if v not in (None, "") else None)


# -- mixtures (style transfer and music styles) ----------------------------------------------------
def parse_mixture(text: str) -> dict[str, float]:
    """'a:0.6, b:0.4' or 'a' -> {name: weight}; unparsable parts are left to the generator to explain."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in str(text or "").split(",")):
        if not part:
            continue
        key, sep, amount = part.partition(":")
        try:
            out[key.strip()] = float(amount) if sep else 1.0
        except ValueError:
            return {}
    return out


def format_mixture(pairs: list[tuple[str | None, float]]) -> str:
    """[(name, weight)] -> the generators' mixture text; a single full-weight name stays bare."""
    kept = [(n, float(w)) for n, w in pairs if n and w and w > 0]
    merged: dict[str, float] = {}
    for n, w in kept:
        merged[n] = merged.get(n, 0.0) + w
    if len(merged) == 1:
        return next(iter(merged))
    return ", ".join(f"{n}:{w:g}" for n, w in merged.items())


def _style_names(schema: dict[str, Any]) -> list[str]:
    """The built-in styles, named in the field's description (the schema is the contract)."""
    from_files = sorted(p.stem for p in STYLE_PREVIEWS.glob("*.webp"))
    return from_files or re.findall(r"'([a-z]+(?:-[a-z]+)+)'", schema.get("description", ""))


def style_widget(name: str, schema: dict[str, Any], label: str, info: str, elem_id: str | None) -> Any:
    """Gallery of style swatches (click = that style alone) and mixture rows writing the style text."""
    names = _style_names(schema)
    previews = [(str(STYLE_PREVIEWS / f"{n}.webp"), n) for n in names if (STYLE_PREVIEWS / f"{n}.webp").is_file()]
    text = gr.Textbox(value=schema.get("default", ""), label="Style (a name, or a mixture name:weight, ...)",
                      elem_id=elem_id)
    gallery = gr.Gallery(previews, label="Built-in styles (click one to use it)", columns=9, height=260,
                         allow_preview=False, object_fit="cover", elem_id=f"{elem_id}-gallery" if elem_id else None,
                         visible=bool(previews))
    rows: list[tuple[Any, Any]] = []
    with gr.Accordion("Mix styles", open=False):
        for i in range(MIX_SLOTS):
            with gr.Row():
                pick = gr.Dropdown(names, value=None, label=f"Style {i + 1}", scale=2,
                                   elem_id=f"{elem_id}-mix{i}" if elem_id else None)
                weight = gr.Slider(0, 1, value=0.5 if i < 2 else 0.0, step=0.05, label="Weight", scale=2,
                                   elem_id=f"{elem_id}-mix{i}-weight" if elem_id else None)
            rows.append((pick, weight))

    def clicked(evt: gr.SelectData) -> str:
        return names[int(evt.index)] if 0 <= int(evt.index) < len(names) else gr.update()

    def mixed(*values: Any) -> str:
        return format_mixture([(values[2 * i], values[2 * i + 1]) for i in range(MIX_SLOTS)])

    flat = [c for row in rows for c in row]
    gallery.select(clicked, None, text, queue=False, api_visibility="private")
    for comp in flat:
        comp.input(mixed, flat, text, queue=False, api_visibility="private")
    return _widget()(text, kind="text")


def music_style_widget(name: str, schema: dict[str, Any], label: str, info: str, elem_id: str | None) -> Any:
    """One slider per corpus style; the text box shows (and still takes) the mixture text."""
    styles = re.findall(r"styles: (.*)$", schema.get("description", ""))
    names = [s.strip() for s in styles[0].split(",")] if styles else []
    text = gr.Textbox(value=schema.get("default", ""), label="Style mixture", elem_id=elem_id,
                      info="set by the sliders below, or typed as name:weight, ...")
    default = parse_mixture(schema.get("default", ""))
    sliders = []
    with gr.Row():
        for n in names:
            sliders.append(gr.Slider(0, 1, value=default.get(n, 0.0), step=0.05, label=n, min_width=110,
                                     elem_id=f"{elem_id}-{n}" if elem_id else None))

    def mixed(*weights: float) -> str:
        return format_mixture(list(zip(names, weights)))

    for s in sliders:
        s.input(mixed, sliders, text, queue=False, api_visibility="private")
    return _widget()(text, kind="text")


def presets_widget(name: str, schema: dict[str, Any], label: str, info: str, elem_id: str | None) -> Any:
    default = list(schema.get("default") or [])
    comp = gr.CheckboxGroup(list(dict.fromkeys([*FACE_PRESETS, *default])), value=default,
                            label="Expression presets", elem_id=elem_id,
                            info="timed presets (e.g. smile:0.8@1-3) can be restored from an output")

    def to_value(value: Any) -> Any:
        items = [str(v) for v in (value or [])]
        return gr.update(choices=list(dict.fromkeys([*FACE_PRESETS, *items])), value=items)

    return _widget()(comp, kind="json", to_param=lambda v: list(v or []), to_value=to_value)


# -- diffusion models -----------------------------------------------------------------------------
def installed_pipelines() -> list[str]:
    """Hugging Face ids of diffusers pipelines in the local hub cache (a folder scan, no network)."""
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE)
    found = []
    for repo in sorted(cache.glob("models--*")) if cache.is_dir() else []:
        if any(repo.glob("snapshots/*/model_index.json")):
            found.append(repo.name[len("models--"):].replace("--", "/"))
    return found


def model_widget(name: str, schema: dict[str, Any], label: str, info: str, elem_id: str | None) -> Any:
    from generators.image import DEFAULT_MODEL, EMBEDDED  # names and folders only: no torch

    installed = installed_pipelines()
    embedded = [(f"{n} (embedded, trained here)", n) for n, folder in EMBEDDED.items()
                if (folder / "model_index.json").is_file()]
    note = (f"{len(installed)} installed in the Hugging Face cache; a local folder can be typed too"
            if installed else "none in the Hugging Face cache yet; type a local diffusers folder, or fetch one "
                              "first (see the README)")
    comp = gr.Dropdown(choices=[(f"(default: {DEFAULT_MODEL})", ""), *embedded, *installed],
                       value=schema.get("default", ""),
                       allow_custom_value=True, label="Model", info=note, elem_id=elem_id)
    return _widget()(comp, kind="text", to_param=lambda v: v or "")


PICKERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("style", "style"): style_widget,
    ("music", "instrument"): instrument_widget,
    ("music", "style"): music_style_widget,
    ("face", "presets"): presets_widget,
    ("image", "model"): model_widget,
}


def picker(generator: str, field: str) -> Callable[..., Any] | None:
    return PICKERS.get((generator, field))
