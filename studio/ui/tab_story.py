"""The Story tab: the `story` generator's panel (form, progress, outputs, feedback)."""
from __future__ import annotations

from studio.ui.context import UIContext
from studio.ui.generator_tab import build_generator_tab

GENERATORS = ["story"]


def build(ctx: UIContext, tab_id: str = "story") -> None:
    build_generator_tab(ctx, tab_id, GENERATORS)
