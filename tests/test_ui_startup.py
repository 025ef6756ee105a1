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
    keeps the first (studio.ui.config_once). What is served equals a fresh build."""
    import gradio.blocks as gb

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
    studio = Studio(Settings(home=tmp_path / "home"), registry=REGISTRY)
    demo = launch(studio, port=free_port(), block=False, quiet=True)
    try:
        assert len(full_builds) == 1
        assert demo.config == demo.get_config_file()  # built afresh now: the same config
        assert len(full_builds) == 2
        assert "get_config" not in vars(demo.default_config)  # nothing left installed
    finally:
        demo.close()
        studio.close()
