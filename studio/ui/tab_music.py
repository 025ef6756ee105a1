"""The Music tab: the `music` generator's panel (form, progress, outputs, feedback)."""
from __future__ import annotations

from studio.ui.context import UIContext
from studio.ui.generator_tab import build_generator_tab

GENERATORS = ["music"]


def build(ctx: UIContext, tab_id: str = "music") -> None:
    build_generator_tab(ctx, tab_id, GENERATORS)
