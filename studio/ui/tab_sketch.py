"""The Sketch tab: the `sketch` generator (Sketch-RNN). Stroke fields get the drawing canvas of
`studio.ui.widgets_sketch` (through `studio.ui.form.WIDGETS["sketch"]`)."""
from __future__ import annotations

from studio.ui.context import UIContext
from studio.ui.generator_tab import build_generator_tab

GENERATORS = ["sketch"]


def build(ctx: UIContext, tab_id: str = "sketch") -> None:
    build_generator_tab(ctx, tab_id, GENERATORS)
