"""A tab that shows one or more generators (several become sub-tabs), each as a GeneratorPanel.

A generator with a purpose-built workspace (`WORKSPACES`) shows that first; its schema form
stays below in an "Every setting" drawer, built only when a session opens it (and is what
plug-in generators get on their own).
"""
from __future__ import annotations

import importlib

import gradio as gr

from studio.ui.context import UIContext
from studio.ui.panel import GeneratorPanel

# generator name -> module with `build(ctx)`; imported only when that generator can run here
WORKSPACES = {"breeder": "studio.ui.ws_breeder", "gan": "studio.ui.ws_gan", "story": "studio.ui.ws_story"}


def _panel(ctx: UIContext, name: str) -> None:
    module = WORKSPACES.get(name)
    info = ctx.info.get(name) or {}
    if module is None or not info.get("available", False) or ctx.describe(name) is None:
        GeneratorPanel(ctx, name)
        return
    mod = importlib.import_module(module)
    ctx.workspaces[name] = mod.build(ctx)
    # Built when first opened, per session (GeneratorPanel's `drawer`): most visits never open it.
    with gr.Accordion("Every setting (the full form)", open=False, elem_id=f"{name}-advanced") as drawer:
        GeneratorPanel(ctx, name, drawer=drawer)


def build_generator_tab(ctx: UIContext, tab_id: str, names: list[str]) -> None:
    """Call inside `gr.Tab(...)`. A generator that has not landed or cannot run says so plainly."""
    if len(names) == 1:
        ctx.tab_of[names[0]] = (tab_id, None)
        _panel(ctx, names[0])
        return
    with gr.Tabs() as inner:
        ctx.sub_tabs[tab_id] = inner
        for name in names:
            sub_id = f"{tab_id}-{name}"
            title = (ctx.info.get(name) or {}).get("title") or name
            with gr.Tab(title, id=sub_id, elem_id=f"tab-{sub_id}"):
                ctx.tab_of[name] = (tab_id, sub_id)
                _panel(ctx, name)
