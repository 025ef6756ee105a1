"""Upload components that check what a browser sent before Gradio touches it.

Gradio's `gr.Image` opens whatever `path` a request names (a payload without `meta` skips its
upload-folder check), decodes `data:` URLs in full, and with the default `image_mode="RGB"`
converts (fully decodes) any image not already RGB, all before the studio's own 16-megapixel
cap could run. `SafeImage` first requires the path to be a file Gradio saved from an upload,
then reads only the header through `generators.image_io` (size and format caps), and hands the
generator the path undecoded; the generator later loads it with the same safe loader.
"""
from __future__ import annotations

from typing import Any

import gradio as gr


def check_uploaded(path: str | None, what: str) -> None:
    """Refuse a path that is not a file Gradio stored from an upload (or a cached output)."""
    from gradio.exceptions import InvalidPathError
    from gradio.processing_utils import _check_allowed

    try:
        _check_allowed(path or "", check_in_upload_folder=True)
    except InvalidPathError:
        raise gr.Error(f"{what} must be a file uploaded to this studio, not a path on the server") from None


class SafeImage(gr.Image):
    """A filepath `gr.Image` that never decodes before the studio's header check. Build it with
    `type="filepath", image_mode=None` (no RGB conversion in Gradio; the generator converts after
    its own checks). `__init__` is Gradio's: its signature is what the page's config is built from."""

    def get_block_name(self) -> str:
        return "image"  # the browser draws it with Gradio's own Image widget

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        if self.type != "filepath" or self.image_mode is not None:
            raise gr.Error("SafeImage must be built with type='filepath', image_mode=None")
        what = str(self.label or "the picture")
        if payload.url and payload.url.startswith("data:"):
            raise gr.Error(f"{what}: send the picture as an upload, not inline data")
        _check_uploaded_picture(payload.path, what)
        return super().preprocess(payload)


class SafeImageEditor(gr.ImageEditor):
    """A `gr.ImageEditor` whose background, layers and composite are checked like `SafeImage`
    (uploaded files only, header within the studio's caps) before Gradio decodes each of them."""

    def get_block_name(self) -> str:
        return "imageeditor"

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        what = str(self.label or "the editor").split(":")[0]
        parts = [payload.background, payload.composite, *(payload.layers or [])]
        for part in parts:
            if part is None or isinstance(part, (bytes, bytearray, memoryview)):
                continue  # bytes are refused by Gradio's own model; None is an empty layer
            _check_uploaded_picture(part.path, what)
        return super().preprocess(payload)


def _check_uploaded_picture(path: str, what: str) -> None:
    """An upload of this server's (not a path someone typed) whose header is within the caps."""
    from generators.base import InvalidInput
    from generators.image_io import check_image_file

    check_uploaded(path, what)
    try:
        check_image_file(path)
    except InvalidInput as exc:
        raise gr.Error(str(exc)) from None
