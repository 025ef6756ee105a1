"""Schema-driven forms and output views: one generic builder for every generator tab.

`Form` turns a generator's `Params.json_schema()` into Gradio widgets (slider or number with
the schema's bounds, dropdown for an enum, checkbox, textbox or textarea with its length cap,
image / audio / video / file uploads that hand the generator a file path) and turns the widget
values back into a params dict. Nothing is clamped or cut here: the generator's own validation
gives the creator a sentence when a value is wrong.

`OutputView` shows a result's files by kind (gallery for images and SVG drawings, player for
audio and video, inline SVG for scores, text, downloads) with the provenance record beside them.

Specialised widgets hook in through `WIDGETS`: map an `x-widget` name to a function
`(name, schema, label, info, elem_id) -> Widget` (or a bare component). A `Widget` may carry
`to_param` (widget value -> param value, run on submit) and `to_value` (param -> widget value,
run on restore). Built in: "sketch" (a drawing canvas, `widgets_sketch`) and "mask" (a brush
layer over the starting picture, `widgets_mask`).
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".flac")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov")
TEXT_SUFFIXES = (".txt", ".md", ".fountain", ".abc", ".json", ".csv", ".ly")
FILE_WIDGETS = ("image", "mask", "audio", "video", "midi", "file")  # uploads that reach the generator as a path
GALLERY_SVG_ROLES = ("drawing",)  # SVG outputs of these roles sit in the gallery; others (scores) show full width


@dataclass
class Widget:
    """A specialised widget: its input component and how its value maps to a param and back."""
    component: gr.components.Component
    kind: str = "text"  # how `Form.to_params` treats the converted value (see `Field.kind`)
    to_param: Callable[[Any], Any] | None = None  # widget value -> param value, on submit
    to_value: Callable[[Any], Any] | None = None  # param value -> widget value, on restore
    link: Callable[["Form"], None] | None = None  # wires events to sibling fields once the form is built


WidgetFactory = Callable[[str, dict[str, Any], str, str, "str | None"], "Widget | gr.components.Component"]
WIDGETS: dict[str, WidgetFactory] = {}  # hook: x-widget name -> specialised widget factory


def widgets() -> dict[str, WidgetFactory]:
    """`WIDGETS` with the built-in canvas and mask editor (imported here: they import this module)."""
    from studio.ui import widgets_mask, widgets_sketch

    WIDGETS.setdefault("sketch", widgets_sketch.sketch_widget)
    WIDGETS.setdefault("mask", widgets_mask.mask_widget)
    return WIDGETS


def label_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _inner(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the non-null branch of an `anyOf [X, null]` schema, whether null is allowed)."""
    options = schema.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            merged = {**schema, **rest[0]}
            merged.pop("anyOf", None)
            return merged, True
    return schema, False


def _step(lo: float, hi: float) -> float:
    span = hi - lo
    if span <= 0:
        return 0.01
    return 10 ** (math.floor(math.log10(span)) - 2)


@dataclass
class Field:
    name: str
    schema: dict[str, Any]
    kind: str  # "int" | "float" | "bool" | "enum" | "text" | "json" | "file" | "mask"
    component: gr.components.Component
    nullable: bool = False
    load: bool = False
    to_param: Callable[[Any], Any] | None = None  # a specialised widget's value -> param value
    to_value: Callable[[Any], Any] | None = None  # param value -> that widget's value


class Form:
    """Widgets for one generator's params, built inside the current Gradio layout context."""

    def __init__(self, schema: dict[str, Any], *, prefix: str = "", values: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.prefix = prefix
        self._values = values or {}  # params to start from instead of the defaults (a restored output)
        self.fields: list[Field] = []
        props: dict[str, dict[str, Any]] = schema.get("properties", {})
        main = [(n, s) for n, s in props.items() if not s.get("x-load")]
        load = [(n, s) for n, s in props.items() if s.get("x-load")]
        self._links: list[Callable[[Form], None]] = []
        for name, prop in main:
            self.fields.append(self._field(name, prop))
        if load:
            with gr.Accordion("Model (load-time options)", open=False):
                for name, prop in load:
                    self.fields.append(self._field(name, prop, load=True))
        for link in self._links:
            link(self)

    @property
    def components(self) -> list[gr.components.Component]:
        return [f.component for f in self.fields]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def file_fields(self) -> list[Field]:
        return [f for f in self.fields if f.kind == "file"]

    # -- building -----------------------------------------------------------------------
    def _field(self, name: str, prop: dict[str, Any], load: bool = False) -> Field:
        if name in self._values:  # every widget below starts from the schema's default
            prop = {**prop, "default": self._values[name]}
        schema, nullable = _inner(prop)
        label = label_of(name)
        info = schema.get("description", "")
        default = schema.get("default")
        widget = schema.get("x-widget")
        elem_id = f"{self.prefix}-{name}" if self.prefix else None
        kw: dict[str, Any] = {"label": label, "info": info or None, "elem_id": elem_id}
        factories = widgets()
        from studio.ui.pickers import picker

        chosen = picker(self.prefix, name) or factories.get(widget)  # a named picker beats the plain widget
        if chosen is not None:
            made = chosen(name, schema, label, info, elem_id)
            if not isinstance(made, Widget):
                made = Widget(made)
            if made.link is not None:
                self._links.append(made.link)
            return Field(name, schema, made.kind, made.component, nullable, load, made.to_param, made.to_value)
        if widget in FILE_WIDGETS:
            kw.pop("info")
            start = self._values.get(name)
            if start and Path(str(start)).is_file():  # as `to_values` restores it
                kw["value"] = str(start)
            kw["label"] = f"{label}: {info}" if info else label
            if widget in ("image", "mask"):  # "mask": a plain upload only if WIDGETS["mask"] is removed
                from studio.ui.safe_inputs import SafeImage  # header-checked before any decode

                comp = SafeImage(type="filepath", image_mode=None, sources=["upload", "clipboard"], **kw)
            elif widget == "audio":
                comp = gr.Audio(type="filepath", sources=["upload"], **kw)
            elif widget == "video":
                comp = gr.Video(sources=["upload"], **kw)
            else:
                types = [".mid", ".midi"] if widget == "midi" else None
                comp = gr.File(type="filepath", file_types=types, **kw)
            return Field(name, schema, "file", comp, nullable, load)
        if "enum" in schema:
            choices = list(schema["enum"])
            comp = gr.Dropdown(choices=choices, value=default if default in choices else None, **kw)
            return Field(name, schema, "enum", comp, nullable, load)
        kind = schema.get("type")
        if kind == "boolean":
            return Field(name, schema, "bool", gr.Checkbox(value=bool(default), **kw), nullable, load)
        if kind in ("integer", "number"):
            lo, hi = schema.get("minimum"), schema.get("maximum")
            is_int = kind == "integer"
            if lo is not None and hi is not None and default is not None:
                step = 1 if is_int else _step(float(lo), float(hi))
                comp = gr.Slider(minimum=lo, maximum=hi, step=step, value=default, **kw)
            else:
                comp = gr.Number(value=default, minimum=lo, maximum=hi, precision=0 if is_int else None, **kw)
            return Field(name, schema, "int" if is_int else "float", comp, nullable, load)
        if kind == "string" or kind is None and isinstance(default, str):
            lines = 6 if widget in ("textarea", "sketch") else 1
            if schema.get("maxLength"):  # told, not enforced by the browser (which would cut pastes)
                kw["info"] = f"{info} (at most {schema['maxLength']} characters)".strip()
            comp = gr.Textbox(value=default if default is not None else "", lines=lines,
                              max_lines=30 if lines > 1 else 1, **kw)
            return Field(name, schema, "text", comp, nullable, load)
        # arrays, objects and anything else: JSON text, parsed on submit
        hint = "JSON" if kind in ("array", "object") else "value"
        comp = gr.Textbox(value=json.dumps(default) if default is not None else "", lines=2,
                          placeholder=hint, **kw)
        return Field(name, schema, "json", comp, nullable, load)

    # -- values <-> params ----------------------------------------------------------------
    def to_params(self, values: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
        """Widget values -> a params dict for `Studio.submit` (type checks are the generator's)."""
        params: dict[str, Any] = {}
        for f, value in zip(self.fields, values):
            if f.to_param is not None:
                value = f.to_param(value)
            if f.kind == "file":
                value = _file_path(value)
                if value is None:
                    value = None if f.nullable else f.schema.get("default", "")
            elif f.kind == "int" and isinstance(value, float) and value.is_integer():
                value = int(value)
            elif f.kind == "json" and isinstance(value, str):
                text = value.strip()
                if not text:
                    value = None if f.nullable else f.schema.get("default")
                else:
                    try:
                        value = json.loads(text)
                    except json.JSONDecodeError:
                        value = text  # the generator's coercion explains what is wrong
            elif f.kind in ("int", "float") and value is None and not f.nullable:
                value = f.schema.get("default")
            params[f.name] = value
        return params

    def coerce(self, name: str, text: Any) -> Any:
        """A typed-in value for field `name` (e.g. an A/B variant's), in the field's type."""
        f = self.field(name)
        if f is None:
            raise gr.Error(f"there is no setting called {name!r}")
        raw = "" if text is None else str(text).strip()
        label = label_of(name)
        if f.kind in ("int", "float"):
            try:
                number = float(raw)
            except ValueError:
                raise gr.Error(f"{label} must be a number; got {raw!r}.") from None
            if f.kind == "int":
                if not number.is_integer():
                    raise gr.Error(f"{label} must be a whole number; got {raw!r}.")
                return int(number)
            return number
        if f.kind == "bool":
            words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False,
                     "0": False}
            if raw.lower() not in words:
                raise gr.Error(f"{label} is on or off: write true or false; got {raw!r}.")
            return words[raw.lower()]
        if f.kind == "enum":
            choices = [str(c) for c in f.schema.get("enum", [])]
            if raw not in choices:
                raise gr.Error(f"{label} must be one of {', '.join(choices)}; got {raw!r}.")
            return f.schema["enum"][choices.index(raw)]
        if f.kind == "json":
            try:
                return json.loads(raw) if raw else None
            except json.JSONDecodeError:
                return [s.strip() for s in raw.split(",") if s.strip()]  # a plain word list
        return raw

    def to_values(self, params: dict[str, Any]) -> list[Any]:
        """Params (e.g. restored from a studio output) -> widget updates, in field order."""
        out: list[Any] = []
        for f in self.fields:
            if f.name not in params:
                out.append(gr.update())
                continue
            value = params[f.name]
            if f.to_value is not None:
                shown = f.to_value(value)
                # a picker may return a whole update (e.g. new choices along with the value)
                is_update = isinstance(shown, dict) and shown.get("__type__") == "update"
                out.append(shown if is_update else gr.update(value=shown))
                continue
            if f.kind == "json":
                value = "" if value is None else json.dumps(value)
            elif f.kind == "file":
                value = value if value and Path(str(value)).is_file() else None
            out.append(gr.update(value=value))
        return out


def _file_path(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # a FileData-like dict
        return value.get("path") or value.get("name")
    path = getattr(value, "path", None) or getattr(value, "name", None)
    return str(path) if path else None


# --------------------------------------------------------------------------------------------
# Output view.
# --------------------------------------------------------------------------------------------
def file_url(path: str | Path) -> str:
    """The URL Gradio serves an output file at (only the outputs folder is allowed).

    Relative, so it still works when the studio is mounted under a path behind a proxy.
    """
    return f"gradio_api/file={Path(path)}"


# Zoom for score SVGs: one listener on the component (its HTML is re-rendered with each result).
# The zoom is a multiple of the SVG's own width; "fit" fills the column.
SVG_ZOOM_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-zoom]');
  if (!button) return;
  const box = button.closest('.studio-svg-box');
  const img = box && box.querySelector('img.studio-svg');
  if (!img || !img.naturalWidth) return;
  const wrap = box.querySelector('.studio-svg-wrap');
  let zoom = parseFloat(img.dataset.zoom || '1');
  const how = button.dataset.zoom;
  if (how === 'in') zoom = Math.min(8, zoom * 1.25);
  else if (how === 'out') zoom = Math.max(0.1, zoom / 1.25);
  else if (how === 'fit') zoom = wrap.clientWidth / img.naturalWidth;
  else zoom = 1;
  img.dataset.zoom = String(zoom);
  img.style.width = Math.round(img.naturalWidth * zoom) + 'px';
  box.querySelector('.studio-zoom-level').textContent = Math.round(zoom * 100) + '%';
});
"""


class OutputView:
    """Shows one result: images, audio, video, SVG, text, downloads and provenance."""

    def __init__(self, *, prefix: str = "", label: str = "Output", provenance: bool = True) -> None:
        p = f"{prefix}-" if prefix else ""
        # "contain": a wide piano roll, GAN strip or contact sheet is shown whole, never cropped square.
        self.gallery = gr.Gallery(label=f"{label}: images", visible=False, columns=2, height="auto",
                                  object_fit="contain", elem_id=f"{p}gallery" if prefix else None)
        # Audio plays over its waveform (seek by clicking it); video in the browser's player.
        self.audio = gr.Audio(label=f"{label}: audio", visible=False, type="filepath", interactive=False,
                              waveform_options=gr.WaveformOptions(show_recording_waveform=True),
                              elem_id=f"{p}result-audio" if prefix else None)
        self.video = gr.Video(label=f"{label}: video", visible=False, interactive=False,
                              elem_id=f"{p}result-video" if prefix else None)
        # Scores (SVG) with zoom buttons: a 1280 px score is unreadable shrunk to the column.
        self.svg = gr.HTML(visible=False, js_on_load=SVG_ZOOM_JS, elem_id=f"{p}result-svg" if prefix else None)
        self.text = gr.Textbox(label=f"{label}: text", visible=False, lines=8, max_lines=40, interactive=False,
                               elem_id=f"{p}text" if prefix else None)
        self.files = gr.File(label=f"{label}: downloads", visible=False, file_count="multiple",
                             interactive=False, elem_id=f"{p}files" if prefix else None)
        self.provenance = gr.JSON(label="Provenance", visible=False) if provenance else None

    @property
    def components(self) -> list[gr.components.Component]:
        out = [self.gallery, self.audio, self.video, self.svg, self.text, self.files]
        return out + ([self.provenance] if self.provenance is not None else [])

    def clear(self) -> list[Any]:
        return [gr.update(visible=False, value=None) for _ in self.components]

    def show(self, paths: list[str | Path], provenance: dict[str, Any] | None = None,
             hide_provenance: bool = False) -> list[Any]:
        paths = [Path(p) for p in paths]
        drawings = [str(p) for p in paths if p.suffix.lower() == ".svg" and _role(p) in GALLERY_SVG_ROLES]
        images = drawings + [str(p) for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
        audio = next((str(p) for p in paths if p.suffix.lower() in AUDIO_SUFFIXES), None)
        video = next((str(p) for p in paths if p.suffix.lower() in VIDEO_SUFFIXES), None)
        svgs = [p for p in paths if p.suffix.lower() == ".svg" and str(p) not in drawings]
        texts = [p for p in paths if p.suffix.lower() in TEXT_SUFFIXES]
        text = "\n\n".join(_read_text(p) for p in texts)
        # Scores are drawn at their own size in a scrolling strip, with zoom buttons (SVG_ZOOM_JS)
        # and a link to open it full size.
        svg_html = "".join(
            f'<div class="studio-svg-box"><div class="studio-zoom">'
            f'<button type="button" data-zoom="out" title="Zoom out">−</button>'
            f'<button type="button" data-zoom="fit" title="Fit the width">fit</button>'
            f'<button type="button" data-zoom="one" title="Actual size">100%</button>'
            f'<button type="button" data-zoom="in" title="Zoom in">+</button>'
            f' <span class="studio-zoom-level">100%</span></div>'
            f'<div class="studio-svg-wrap" style="overflow:auto;max-width:100%;max-height:70vh">'
            f'<img class="studio-svg" src="{html.escape(file_url(p))}" alt="{html.escape(p.name)}" '
            f'style="max-width:none;height:auto;background:white"></div>'
            f'<a href="{html.escape(file_url(p))}" target="_blank" rel="noopener">'
            f'open {html.escape(p.name)} full size</a></div>' for p in svgs)
        out = [gr.update(visible=bool(images), value=images or None),
               gr.update(visible=audio is not None, value=audio),
               gr.update(visible=video is not None, value=video),
               gr.update(visible=bool(svgs), value=svg_html),
               gr.update(visible=bool(texts), value=text),
               gr.update(visible=bool(paths), value=[str(p) for p in paths] or None)]
        if self.provenance is not None:
            out.append(gr.update(visible=bool(provenance) and not hide_provenance, value=provenance))
        return out


def _role(path: Path) -> str:
    """An output's role, from the name `studio.assets` gives it: `<generator>-<id>-<role><suffix>`."""
    return path.stem.rsplit("-", 1)[-1].lower()


def _read_text(path: Path, limit: int = 200_000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError as exc:
        return f"(cannot read {path.name}: {exc.strerror})"
