"""studio.ui.cancellable: a workspace handler's jobs end when its Gradio event ends."""
from __future__ import annotations

import inspect
import time
from types import SimpleNamespace
from typing import Any, Iterator

import anyio
import pytest

from studio.api import Settings, Studio
from tests.ui_fixtures import REGISTRY


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory):
    from studio.ui.app import create_app

    studio = Studio(Settings(home=tmp_path_factory.mktemp("cancellable-home")), registry=REGISTRY)
    yield create_app(studio).studio_context
    studio.close()


def test_a_cancelled_event_cancels_the_jobs_its_handler_started(ctx) -> None:
    from studio.ui.cancellable import cancel_with_event

    jobs: list[Any] = []

    def handler(prompt: str, request: Any) -> Iterator[str]:
        """Like a workspace's breed: submit a slow job, then report until it ends."""
        job = ctx.submit("echo", {"prompt": prompt, "repeat": 5, "delay": 2.0}, 1, request)
        jobs.append(job)
        while not job.done:
            yield "running"
            time.sleep(0.05)
        yield "finished"

    wrapped = cancel_with_event(handler)
    assert inspect.isasyncgenfunction(wrapped)  # what Gradio needs to cancel it
    assert list(inspect.signature(wrapped).parameters) == ["prompt", "request"]  # gr.Request still injected

    async def first_update_then_cancel() -> str:
        steps = wrapped("slow", SimpleNamespace(session_hash="tab-1", username=None))
        first = await steps.__anext__()
        await steps.aclose()  # what Gradio's cancel (or a closed page) does to the event
        return first

    assert anyio.run(first_update_then_cancel) == "running"
    [job] = jobs
    deadline = time.monotonic() + 30
    while not job.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.done and job.state == "cancelled", job.state


def test_an_event_that_finishes_leaves_its_job_alone(ctx) -> None:
    from studio.ui.cancellable import cancel_with_event

    def handler(request: Any) -> Iterator[Any]:
        job = ctx.submit("echo", {"prompt": "quick", "repeat": 1}, 2, request)
        yield job.result()

    async def drain() -> list[Any]:
        return [u async for u in cancel_with_event(handler)(SimpleNamespace(session_hash="tab-2", username=None))]

    [result] = anyio.run(drain)
    assert result.assets and result.assets[0].is_file()
