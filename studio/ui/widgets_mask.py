"""The inpainting mask editor: a brush layer painted over the starting picture.

A `gr.ImageEditor` whose background follows the form's starting-picture field (`x-widget:
"image"`); the creator paints the area to repaint. On submit the painted layer(s) become a
mask PNG (mode "L": 255 = repaint, 0 = keep; any painted pixel counts, whatever the brush
colour), written into Gradio's upload folder (the studio's `cache/uploads`, where uploaded files
live and where the API's file checks allow them), and the generator receives its path, as for
any upload. Nothing painted means no mask ("").
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.form import Form, Widget

MAX_MASK_PIXELS = 40_000_000  # a painted layer larger than this is refused, not decoded
MASK_DIR = "masks"  # under Gradio's upload folder


def mask_widget(name: str, schema: dict[str, Any], label: str, info: str, elem_id: str | None) -> Widget:
    """The editor for one mask field, built in the current layout."""
    from studio.ui.safe_inputs import SafeImageEditor  # layers header-checked before Gradio decodes them

    editor = SafeImageEditor(
        label=f"{label}: paint the area to repaint (the starting picture appears here once chosen)",
        type="filepath", image_mode="RGBA", format="png", sources=(), transforms=(), layers=False,
        brush=gr.Brush(colors=["#ff2bd6"], color_mode="fixed"), canvas_size=(512, 512), elem_id=elem_id)
    return Widget(editor, kind="mask", to_param=mask_from_editor, to_value=_no_restore,
                  link=lambda form: _follow_image(form, name))


def mask_from_editor(value: Any, out_dir: str | Path | None = None) -> str:
    """An ImageEditor value -> the path of a mask PNG of its painted pixels, or "" if none are painted."""
    from gradio.utils import get_upload_folder
    from PIL import Image, ImageChops

    if not value:
        return ""
    if not isinstance(value, dict):
        raise gr.Error("The mask editor sent something that is not a painted layer; clear it and paint again.")
    alpha: Image.Image | None = None
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        img = _open(layer)
        try:
            a = img.convert("RGBA").getchannel("A")
        finally:
            img.close()
        if alpha is not None and a.size != alpha.size:
            raise gr.Error(f"The mask layers have different sizes ({alpha.size[0]}x{alpha.size[1]} and "
                           f"{a.size[0]}x{a.size[1]}); clear the mask and paint it again.")
        alpha = a if alpha is None else ImageChops.lighter(alpha, a)
    if alpha is None or alpha.getextrema()[1] == 0:
        return ""  # nothing painted
    mask = alpha.point(lambda v: 255 if v else 0)
    return _save(mask, Path(out_dir) if out_dir is not None else Path(get_upload_folder()) / MASK_DIR)


def _open(src: Any) -> Any:
    from PIL import Image

    if isinstance(src, Image.Image):
        return src.copy()
    path = src.get("path") if isinstance(src, dict) else src
    try:
        img = Image.open(str(path))
    except (OSError, ValueError) as exc:
        raise gr.Error(f"The painted mask layer could not be read ({type(exc).__name__}); paint it again.") from None
    if img.size[0] * img.size[1] > MAX_MASK_PIXELS:
        img.close()
        raise gr.Error(f"The painted mask is {img.size[0]}x{img.size[1]} pixels; at most "
                       f"{MAX_MASK_PIXELS:,} pixels are accepted.")
    return img


def _save(mask: Any, folder: Path) -> str:
    """Write `mask` as PNG named by its content, atomically (never a half-written file)."""
    import io

    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    data = buf.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mask-{hashlib.sha256(data).hexdigest()[:20]}.png"
    if path.is_file():
        return str(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".mask-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


def _no_restore(value: Any) -> None:
    """Restoring settings clears the editor: a mask is painted over the picture, not reloaded from a
    path that a dropped file's metadata names (which could point anywhere on the server)."""
    return None


def _follow_image(form: Form, name: str) -> None:
    """Show the form's starting picture (first `x-widget: "image"` field) as the editor's background."""
    editor = form.field(name)
    image = next((f for f in form.fields if f.schema.get("x-widget") == "image"), None)
    if editor is None or image is None:
        return
    image.component.change(background_for, [image.component], [editor.component], queue=False,
                           api_visibility="private")


def background_for(image_path: Any) -> Any:
    """A new starting picture -> the editor shows it with a fresh, empty paint layer (None clears it)."""
    if not image_path:
        return None
    path = image_path.get("path") if isinstance(image_path, dict) else str(image_path)
    return {"background": path, "layers": [], "composite": path}
