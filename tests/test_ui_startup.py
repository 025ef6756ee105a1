"""What the UI start-up skips or defers: Gradio's stub writer, the feedback store until it is used."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_ui_turns_gradios_stub_writer_off() -> None:
    code = ("import studio.ui.app, gradio.component_meta as m, gradio as gr\n"
            "print(m.create_or_modify_pyi.__name__, gr.Textbox.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["_no_stub", "Textbox"]  # skipped, and the components still defined


def test_feedback_store_opens_on_first_use_or_in_the_background() -> None:
    from studio.ui.lazy_feedback import LazyFeedback

    opened: list[int] = []

    class Store:
        def count(self) -> int:
            return 7

    def open_store() -> Store:
        opened.append(1)
        return Store()

    lazy = LazyFeedback(open_store)
    assert opened == []  # nothing opened by creating it
    assert lazy.count() == 7 and lazy.count() == 7 and opened == [1]  # opened once, on first use
    warm = LazyFeedback(open_store)
    warm.warm()
    deadline = time.monotonic() + 30
    while warm._store is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert warm._store is not None and len(opened) == 2


def test_an_opening_error_reaches_the_first_real_use() -> None:
    import pytest

    from studio.ui.lazy_feedback import LazyFeedback

    def broken() -> None:
        raise RuntimeError("database is locked")

    lazy = LazyFeedback(broken)
    lazy.warm()  # swallowed in the background thread
    for t in threading.enumerate():
        if t.name == "studio-feedback-open":
            t.join(timeout=30)
    with pytest.raises(RuntimeError, match="database is locked"):
        lazy.count()


def test_launch_builds_the_component_config_once_and_serves_the_same(tmp_path, monkeypatch) -> None:
    """Gradio builds the page's components config four times on the way to serving it; the studio
    keeps the first (studio.ui.config_once). What is served equals a fresh build. Gradio's FastAPI
    app, also built four times, is built once: the one launch() serves (studio.ui.app_once)."""
    import urllib.request

    import gradio.blocks as gb
    import gradio.routes as gradio_routes

    from studio.api import Studio
    from studio.config import Settings
    from studio.ui.app import launch
    from tests.test_ui import free_port
    from tests.ui_fixtures import REGISTRY

    full_builds: list[int] = []
    build = gb.BlocksConfig.get_config

    def counted(self, renderable=None):  # noqa: ANN001
        if renderable is None and len(self.blocks) > 20:  # not the empty page queue() configures
            full_builds.append(len(self.blocks))
        return build(self, renderable)

    monkeypatch.setattr(gb.BlocksConfig, "get_config", counted)
    apps: list[object] = []
    create_app = gradio_routes.App.create_app

    def counted_app(*args, **kwargs):  # noqa: ANN002, ANN003
        apps.append(create_app(*args, **kwargs))
        return apps[-1]

    monkeypatch.setattr(gradio_routes.App, "create_app", staticmethod(counted_app))
    studio = Studio(Settings(home=tmp_path / "home"), registry=REGISTRY)
    demo = launch(studio, port=free_port(), block=False, quiet=True)
    try:
        assert len(apps) == 1 and demo.app is apps[0] and demo.server_app is apps[0]
        assert gb.App is gradio_routes.App  # the name is Gradio's own again
        with urllib.request.urlopen(demo.local_url + "gradio_api/info", timeout=30) as r:
            assert r.status == 200 and "/generators" in r.read().decode()
        assert len(full_builds) == 1
        assert demo.config == demo.get_config_file()  # built afresh now: the same config
        assert len(full_builds) == 2
        assert "get_config" not in vars(demo.default_config)  # nothing left installed
    finally:
        demo.close()
        studio.close()


def test_each_data_model_is_described_once_and_every_component_gets_gradios_description(tmp_path) -> None:
    """studio.ui.api_info_once: one pydantic schema per data model class while the page is built;
    every file-like component still carries exactly the description Gradio itself computes, as
    its own copy, and Gradio's method is back in place afterwards."""
    from gradio.components.base import Component

    from studio.api import Studio
    from studio.config import Settings
    from studio.ui.app import create_app
    from tests.ui_fixtures import REGISTRY

    gradios_own = Component.__dict__["api_info"]
    studio = Studio(Settings(home=tmp_path / "home"), registry=REGISTRY)
    try:
        demo = create_app(studio)
    finally:
        studio.close()
    assert Component.__dict__["api_info"] is gradios_own
    described = [b for b in demo.blocks.values()
                 if getattr(b, "data_model", None) is not None and "api_info" not in type(b).__dict__]
    assert len({b.data_model for b in described}) < len(described)  # models shared, so the memo mattered
    seen: set[int] = set()
    for block in described:
        mine = block._api_info_cache
        assert mine is not None and id(mine) not in seen  # filled while building, never shared
        seen.add(id(mine))
        block._api_info_cache = None
        assert block.api_info() == mine  # what Gradio computes afresh for this component
