"""Describe each Gradio data model once per page build, not once per component.

Use: `with api_info_per_model(): ...` around a build whose config is made (studio.ui.app).

Gradio 6.31 gives every file-like component (File, Gallery, Audio, Video, Image: ~60 on the
studio's page) an API description from `self.data_model.model_json_schema()`, computed per
component instance (`Component.api_info`, cached on the instance only). Pydantic regenerates the
JSON schema from scratch on every call: 2-6 ms each on a 2-core machine (11 ms for
GalleryData), ~0.2 CPU-s of the start-up for descriptions that differ only by data model class.

Inside `api_info_per_model()` the base `Component.api_info` keeps one schema per data model
class and gives each component its own deep copy (so no two components share a dict anyone
might edit). Components whose class has its own `api_info` (Number, Dropdown, ...) are not
touched, and neither is anything outside the block. If a later Gradio renames the method or
the attributes it reads, the block changes nothing but the time.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any, Iterator

_lock = threading.Lock()


@contextlib.contextmanager
def api_info_per_model() -> Iterator[None]:
    from gradio.components.base import Component

    real = Component.__dict__.get("api_info")
    if real is None:
        yield
        return
    schemas: dict[Any, dict[str, Any]] = {}

    def api_info(self: Any) -> dict[str, Any]:
        model = getattr(self, "data_model", None)
        if getattr(self, "_api_info_cache", None) is not None or model is None:
            return real(self)  # Gradio's own answer: its instance cache, or its error
        if model not in schemas:
            schemas[model] = real(self)  # the same code computes it once per class
        self._api_info_cache = copy.deepcopy(schemas[model])
        return self._api_info_cache

    with _lock:  # builds in two threads take turns (the studio builds once, at start)
        Component.api_info = api_info  # type: ignore[method-assign]
        try:
            yield
        finally:
            Component.api_info = real  # type: ignore[method-assign]
