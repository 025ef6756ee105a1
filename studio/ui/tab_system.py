"""The System tab: device, memory budgets, loaded models, queue, and which generators can run."""
from __future__ import annotations

from typing import Any

import gradio as gr

from studio.ui.context import UIContext


def build(ctx: UIContext) -> tuple[Any, list[Any], list[Any]]:
    refresh = gr.Button("Refresh", elem_id="system-refresh")
    table = gr.Dataframe(headers=["generator", "title", "available", "loaded", "reason"], interactive=False,
                         elem_id="system-generators")
    status = gr.JSON(label="Session manager status", elem_id="system-status")

    def refresh_all() -> tuple[Any, Any]:
        rows = [[g["name"], g.get("title", ""), "yes" if g.get("available") else "no",
                 "yes" if g.get("loaded") else "no", g.get("reason") or ""] for g in ctx.studio.generators()]
        return rows or None, ctx.studio.status()

    refresh.click(refresh_all, None, [table, status], api_visibility="private")
    return refresh_all, [], [table, status]
