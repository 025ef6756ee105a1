"""Event handlers whose studio jobs end with the event: cancel, a closed page, a dropped client.

Gradio cancels an event by cancelling its asyncio task. A plain (sync) generator handler runs in
a worker thread that never hears of it, so the studio job it submitted would run on, holding
its lane. `cancel_with_event(handler)` turns such a handler into an async generator that steps
it in a worker thread; every job the handler submits through `UIContext.submit` is noted (a
context variable carries the list into the thread), and when the event ends for any reason,
the jobs still running are cancelled on behalf of their owners.
"""
from __future__ import annotations

import contextvars
import functools
from typing import Any, AsyncIterator, Callable, Iterator

_STARTED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("studio_ui_started_jobs",
                                                                           default=None)


def note_started(job: Any) -> None:
    """Called by UIContext.submit: the running event (if it is cancellable) owns this job."""
    started = _STARTED.get()
    if started is not None:
        started.append(job)


def cancel_with_event(handler: Callable[..., Iterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """`handler` (a sync generator function) as a cancellable async generator, same signature
    (Gradio reads it through `__wrapped__` to inject `gr.Request`)."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        import anyio

        started: list[Any] = []
        context = contextvars.copy_context()
        context.run(_STARTED.set, started)
        steps = handler(*args, **kwargs)
        done = object()
        try:
            while True:  # one step at a time, so `context` is never entered twice at once
                update = await anyio.to_thread.run_sync(context.run, next, steps, done)
                if update is done:
                    return
                yield update
        finally:  # finished, failed or cancelled: a job still going has lost its listener
            for job in started:
                if not job.done:
                    job.cancel(job.user)
            steps.close()

    return wrapper


async def call_cancellable(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a worker thread; if the event is cancelled meanwhile, the studio jobs `fn`
    submitted through `UIContext.submit` are cancelled at once (the thread, waiting on them,
    then ends by itself) and the cancellation goes on to Gradio."""
    import anyio

    started: list[Any] = []
    context = contextvars.copy_context()
    context.run(_STARTED.set, started)
    try:  # abandon_on_cancel: hear the cancel now, not when the job is done
        return await anyio.to_thread.run_sync(context.run, fn, *args, abandon_on_cancel=True)
    finally:
        for job in started:
            if not job.done:
                job.cancel(job.user)
