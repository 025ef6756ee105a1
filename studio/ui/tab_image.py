"""The Image tab: diffusion, style transfer, the glyph GAN and the breeder, as sub-tabs."""
from __future__ import annotations

from studio.ui.context import UIContext
from studio.ui.generator_tab import build_generator_tab

GENERATORS = ["image", "style", "gan", "breeder"]


def build(ctx: UIContext, tab_id: str = "image") -> None:
    build_generator_tab(ctx, tab_id, GENERATORS)
