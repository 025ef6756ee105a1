"""A tab that shows one or more generators (several become sub-tabs), each as a GeneratorPanel."""
from __future__ import annotations

import gradio as gr

from studio.ui.context import UIContext
from studio.ui.panel import GeneratorPanel


def build_generator_tab(ctx: UIContext, tab_id: str, names: list[str]) -> None:
    """Call inside `gr.Tab(...)`. A generator that has not landed or cannot run says so plainly."""
    if len(names) == 1:
        ctx.tab_of[names[0]] = (tab_id, None)
        GeneratorPanel(ctx, names[0])
        return
    with gr.Tabs() as inner:
        ctx.sub_tabs[tab_id] = inner
        for name in names:
            sub_id = f"{tab_id}-{name}"
            title = (ctx.info.get(name) or {}).get("title") or name
            with gr.Tab(title, id=sub_id, elem_id=f"tab-{sub_id}"):
                ctx.tab_of[name] = (tab_id, sub_id)
                GeneratorPanel(ctx, name)
