"""What the purpose-built workspaces share: running one job with live progress, honest status.

A workspace handler is a Python generator that yields `{component: update}` dicts. `run_job`
submits through `studio.api` (never a model import), streams the progress bar and tokens, and
returns the `Result`, or None with the reason already shown in place (refused, failed, cancelled).
Nothing is raised to Gradio: a raised error puts "Error" badges on every output of the event.
"""
from __future__ import annotations

import html
import time
from typing import Any, Callable, Iterator

import gradio as gr

from studio.ui.context import UIContext
from studio.ui.panel import UPDATE_EVERY_S, _follow, _outcome, error_update, progress_html

class Outcome:
    """Filled by `run_job`: the Result, or why there is none."""

    def __init__(self) -> None:
        self.result: Any = None
        self.error: str | None = None
        self.cancelled = False
        self.text = ""  # every streamed token, kept when the job fails or is cancelled


def run_job(ctx: UIContext, request: gr.Request | None, generator: str, params: dict[str, Any],
            seed: int | None, progress: Any, error: Any, job_state: Any | None, outcome: Outcome,
            on_token: Callable[[str], dict[Any, Any]] | None = None) -> Iterator[dict[Any, Any]]:
    """Submit one job and follow it; the caller reads `outcome` when this generator is spent."""
    from generators.base import StudioError

    user = ctx.user(request)
    try:
        job = ctx.submit(generator, params, seed, request)  # "remote" input: passes studio.gate
    except StudioError as exc:
        outcome.error = str(exc)
        yield {progress: progress_html(0, f"not started: {exc}", "failed"), error: error_update(str(exc))}
        return
    first: dict[Any, Any] = {progress: progress_html(0, "queued", "queued"), error: error_update(None)}
    if job_state is not None:
        first[job_state] = job.id
    yield first
    budget = params.get("max_new_tokens") if isinstance(params.get("max_new_tokens"), int) else None
    budget = budget * int(params.get("alternatives") or 1) if budget else None
    tokens, reported, last = 0, 0.0, 0.0
    try:
        for kind, payload in _follow(job):
            if kind == "token":
                outcome.text += payload
                tokens += 1
                out = on_token(outcome.text) if on_token is not None else {}
                now = time.monotonic()
                if budget and now - last >= UPDATE_EVERY_S:  # the bar moves with the words
                    last = now
                    out[progress] = progress_html(max(reported, min(0.95, tokens / budget)),
                                                  f"writing · {tokens} token(s)", "running")
                if out:
                    yield out
            elif kind == "progress":
                frac, msg, state, pos, eta = payload
                reported = frac
                if budget and tokens and state == "running":
                    frac = max(frac, min(0.95, tokens / budget))
                yield {progress: progress_html(frac, msg, state, pos, eta)}
        try:
            outcome.result = _outcome(job)
        except gr.Error as exc:
            outcome.error = exc.message
            yield {progress: progress_html(0, f"failed: {exc.message}", "failed"), error: error_update(exc.message)}
            return
    finally:
        if not job.done:  # the browser went away: the job goes too
            try:
                job.cancel(user)
            except Exception:  # noqa: BLE001
                pass
    if outcome.result is None:
        outcome.cancelled = True
        yield {progress: progress_html(0, "cancelled", "cancelled")}
        return
    yield {progress: progress_html(1, f"done · seed {outcome.result.seed}", "done")}


def cancel_job(ctx: UIContext, job_id: str, request: gr.Request | None) -> str:
    """Cancel the job this browser session started (another session's job is refused)."""
    job = ctx.job(job_id)
    if job is None or job.done:
        return progress_html(0, "nothing to cancel", "idle")
    try:
        job.cancel(ctx.user(request))
    except Exception as exc:  # noqa: BLE001 - PermissionDenied: not this session's job
        return progress_html(0, f"not cancelled: {exc}", "failed")
    return progress_html(0, "cancelled", "cancelled")


def note(message: str) -> str:
    """A short status line (escaped: it may quote what the creator typed)."""
    return html.escape(message)
