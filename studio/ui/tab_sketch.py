"""The Sketch tab: the `sketch` generator (Sketch-RNN). A drawing canvas can hook in through
`studio.ui.form.WIDGETS["sketch"]`; until then stroke JSON goes in a text area."""
from __future__ import annotations

from studio.ui.context import UIContext
from studio.ui.generator_tab import build_generator_tab

GENERATORS = ["sketch"]


def build(ctx: UIContext, tab_id: str = "sketch") -> None:
    build_generator_tab(ctx, tab_id, GENERATORS)
