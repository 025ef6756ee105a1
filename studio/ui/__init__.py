"""The browser studio (Gradio). The only package in the project that imports gradio.

Importing it turns Gradio's analytics and version check off (no DNS calls at start) unless the
environment already says otherwise; the tabs receive the `studio.api.Studio` and never import a
model themselves.
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from studio.ui.gradio_stubs_off import install as _skip_gradio_stub_writer

_skip_gradio_stub_writer()  # ~1.8 CPU-s off `import gradio` (see studio/ui/gradio_stubs_off.py)
