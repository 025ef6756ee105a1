"""The story workspace's adapter drawer: "Train from my ratings" (DPO on a LoRA, studio.adapters),
with progress and cancel, and which of this creator's adapters their story jobs use.

Kept in its own file so the story workspace only places it. Everything goes through the Studio
(`studio.adapters`); the user is the request's user, so a creator sees and uses only their own
adapters, and choosing "base model" (or deleting the adapter) restores the base.
"""
from __future__ import annotations

from typing import Any, Iterator

import gradio as gr

from studio.ui.context import UIContext
from studio.ui.panel import _follow, _outcome, job_progress, progress_html
from studio.ui.ws_common import cancel_job, note

BASE = "Base model (no adapter)"


class AdapterDrawer:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        p = "story-adapter"
        with gr.Accordion("Your adapter (learned from your ratings)", open=False, elem_id=p):
            gr.Markdown("Rate several passages written from the same request (Regenerate or Branch, then rate them, "
                        "or vote A/B), then train: the story model learns which of your passages you prefer "
                        "(DPO on a small LoRA adapter, on this computer). The adapter is named in every output it "
                        "writes; choose the base model to write without it.")
            with gr.Row():
                self.choice = gr.Dropdown([BASE], value=BASE, label="Story jobs use", elem_id=f"{p}-choice")
                self.refresh_btn = gr.Button("Refresh", size="sm", elem_id=f"{p}-refresh")
            with gr.Row():
                self.name = gr.Textbox(value="my taste", label="Adapter name", elem_id=f"{p}-name")
                self.train_btn = gr.Button("Train from my ratings", variant="primary", elem_id=f"{p}-train")
                self.cancel_btn = gr.Button("Cancel training", variant="stop", elem_id=f"{p}-cancel")
            self.progress = job_progress(p)
            self.status = gr.Markdown("", elem_id=f"{p}-status")
        self.job = gr.State("")
        common = dict(api_visibility="private")
        self.refresh_btn.click(self.refresh, None, [self.choice, self.status], queue=False, **common)
        self.choice.input(self.choose, self.choice, [self.choice, self.status], queue=False, **common)
        self.train_btn.click(self.train, self.name, [self.progress, self.job, self.choice, self.status],
                             concurrency_id=ctx.device_group("story"), concurrency_limit=ctx.concurrency_limit,
                             **common)
        self.cancel_btn.click(self.cancel, self.job, self.progress, queue=False, **common)
        self.handlers = {"refresh": self.refresh, "choose": self.choose, "train": self.train, "cancel": self.cancel}

    # -- listing and choosing -----------------------------------------------------------------------
    def refresh(self, request: gr.Request | None = None, message: str = "") -> tuple[Any, str]:
        adapters = self.ctx.studio.adapters
        user = self.ctx.user(request)
        rows = adapters.list(user)
        chosen = adapters.selected(user)
        choices = [(BASE, BASE)] + [(f"{r['name']} · {r.get('pairs') or '?'} pairs · {r['created'] or ''}"[:90]
                                     if r["available"] else f"⚠ {r['name']} (unavailable)", r["path"])
                                    for r in rows]
        broken = [f"- **{note(r['name'])}**: {note(r['reason'])}" for r in rows if not r["available"]]
        lines = [message] if message else []
        lines.append(f"Story jobs use: **{note(self._name(rows, chosen))}**")
        if broken:
            lines += ["Unavailable adapters:", *broken]
        return gr.update(choices=choices, value=chosen or BASE), "\n\n".join(lines)

    @staticmethod
    def _name(rows: list[dict[str, Any]], path: str | None) -> str:
        return next((r["name"] for r in rows if r["path"] == path), BASE) if path else BASE

    def choose(self, value: str | None, request: gr.Request | None = None) -> tuple[Any, str]:
        from generators.base import StudioError

        try:
            self.ctx.studio.adapters.select(self.ctx.user(request), None if value in (None, "", BASE) else value)
        except StudioError as exc:
            return self.refresh(request, f"⚠️ {note(str(exc))}")
        return self.refresh(request)

    # -- training -----------------------------------------------------------------------------------
    def train(self, name: str, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        from generators.base import StudioError

        keep = gr.update()
        try:
            job = self.ctx.studio.train_adapter(user=self.ctx.user(request), name=(name or "").strip() or "my taste")
        except StudioError as exc:
            yield progress_html(0, "not started", "failed"), "", keep, f"⚠️ {note(str(exc))}"
            return
        self.ctx.remember(job)
        yield progress_html(0, "queued", "queued"), job.id, keep, "Training on your preference pairs…"
        try:
            for kind, payload in _follow(job):
                if kind == "progress":
                    frac, msg, state, pos, eta = payload
                    yield progress_html(frac, msg, state, pos, eta), job.id, keep, gr.update()
            try:
                result = _outcome(job)
            except gr.Error as exc:
                yield progress_html(0, f"failed: {exc.message}", "failed"), "", keep, f"⚠️ {note(exc.message)}"
                return
        finally:
            if not job.done:  # the browser went away: the training goes too
                try:
                    job.cancel(self.ctx.user(request))
                except Exception:  # noqa: BLE001
                    pass
        if result is None:
            yield progress_html(0, "cancelled", "cancelled"), "", keep, "Training cancelled; nothing was saved."
            return
        path = str(result.assets[0]) if result.assets else None
        recipe = (result.data or {}).get("adapter") or {}
        message = (f"Trained on {recipe.get('pairs')} pairs in {recipe.get('train_seconds')} s. "
                   "Your story jobs now use it (choose the base model to write without it).")
        if path:
            try:
                self.ctx.studio.adapters.select(self.ctx.user(request), path)
            except StudioError as exc:
                message = f"⚠️ trained, but it cannot be used: {note(str(exc))}"
        choice, status = self.refresh(request, message)
        yield progress_html(1, "adapter ready", "done"), "", choice, status

    def cancel(self, job_id: str, request: gr.Request | None = None) -> str:
        return cancel_job(self.ctx, job_id, request)


def build(ctx: UIContext) -> AdapterDrawer:
    return AdapterDrawer(ctx)
