"""Build Gradio's FastAPI app once, in `launch()`, not four times while the page is built.

Use: `with served_app_only(): with gr.Blocks() as demo: ...` (studio.ui.app.create_app).

Gradio 6.31 calls `routes.App.create_app(blocks)` (a FastAPI app with ~80 routes; FastAPI
inspects every route's signature and builds pydantic models for it) from `Blocks.__init__`
(which calls `queue()`), from every later `queue()`, from `Blocks.__exit__`, and from
`launch()`. Only the last one is ever served: `launch()` makes a fresh app and starts uvicorn
on it. The three before it cost ~0.15-0.2 CPU-s each on a 2-core machine (cProfile: 4 builds,
328 `add_api_route` calls) before the first request can be answered.

Inside `served_app_only()` those calls, made by this thread, leave `demo.app` as None instead;
`launch()` (outside the block) builds and serves the real one as usual, so `demo.app` is the
served app afterwards. Calls from other threads (another server's `gr.render` in tests, say)
and calls that pass an existing FastAPI `app` (`gr.mount_gradio_app`) go to Gradio untouched.
Nothing in Gradio 6.31 reads `Blocks.app` between `__exit__` and `launch()` (checked:
blocks.py, queueing.py, routes.py); tests/test_ui_startup.py checks the count and that the
served app answers. If a later Gradio renames the attribute this patches, nothing changes but
the time.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

_lock = threading.Lock()


@contextlib.contextmanager
def served_app_only() -> Iterator[None]:
    import gradio.blocks as gradio_blocks

    app_class = getattr(gradio_blocks, "App", None)
    if app_class is None or not hasattr(app_class, "create_app"):
        yield  # a Gradio without this layout: build as it likes
        return
    owner = threading.get_ident()
    real = app_class.create_app

    class _LaterApp(app_class):  # type: ignore[misc,valid-type]  # only its create_app differs
        @staticmethod
        def create_app(blocks: Any, app: Any = None, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == owner and app is None:
                return None  # launch() builds the one that is served
            return real(blocks, app, *args, **kwargs)

    with _lock:  # two builds at once (threads) take turns; other threads' calls pass through (owner)
        gradio_blocks.App = _LaterApp
        try:
            yield
        finally:
            gradio_blocks.App = app_class
