"""A tab that shows one or more generators (several become sub-tabs), each as a GeneratorPanel.

A generator with a purpose-built workspace (`WORKSPACES`) shows that first; its schema form
stays below in an "Every setting" drawer, built only when a session opens it (and is what
plug-in generators get on their own).
"""
from __future__ import annotations

import importlib
from typing import Any

import gradio as gr

from studio.ui.context import UIContext
from studio.ui.panel import GeneratorPanel

# generator name -> module with `build(ctx)`; imported only when that generator can run here
WORKSPACES = {"breeder": "studio.ui.ws_breeder", "gan": "studio.ui.ws_gan", "story": "studio.ui.ws_story"}


def _panel(ctx: UIContext, name: str, open_on: list[Any]) -> None:
    module = WORKSPACES.get(name)
    info = ctx.info.get(name) or {}
    if module is None or not info.get("available", False) or ctx.describe(name) is None:
        GeneratorPanel(ctx, name, open_on=open_on)  # built when its tab opens, if `open_on`
        return
    mod = importlib.import_module(module)
    ctx.workspaces[name] = mod.build(ctx)
    # Built when first opened, per session (GeneratorPanel's `drawer`): most visits never open it.
    with gr.Accordion("Every setting (the full form)", open=False, elem_id=f"{name}-advanced") as drawer:
        GeneratorPanel(ctx, name, open_on=[drawer.expand], drawer=drawer)


def build_generator_tab(ctx: UIContext, tab_id: str, names: list[str]) -> None:
    """Call inside `gr.Tab(...)`. A generator that has not landed or cannot run says so plainly.

    In a tab of `ctx.lazy_tabs` a plain panel is built when its tab (or sub-tab) is first opened;
    the first sub-tab's panel also when the outer tab opens (it is what shows then)."""
    outer = ctx.lazy_tabs.get(tab_id)
    if len(names) == 1:
        ctx.tab_of[names[0]] = (tab_id, None)
        _panel(ctx, names[0], [outer.select] if outer is not None else [])
        return
    with gr.Tabs() as inner:
        ctx.sub_tabs[tab_id] = inner
        for i, name in enumerate(names):
            sub_id = f"{tab_id}-{name}"
            title = (ctx.info.get(name) or {}).get("title") or name
            with gr.Tab(title, id=sub_id, elem_id=f"tab-{sub_id}") as sub:
                ctx.tab_of[name] = (tab_id, sub_id)
                opens = [] if outer is None else [*([outer.select] if i == 0 else []), sub.select]
                _panel(ctx, name, opens)
