"""Gradio sessions built lazily (studio.ui.lazy_session) hold what Gradio's eager ones hold."""
from __future__ import annotations

import gradio as gr
import pytest
from gradio import state_holder

from studio.ui import lazy_session


@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    with gr.Blocks() as demo:
        text = gr.Textbox(value="hello", label="Prompt")
        number = gr.Number(value=3, label="Steps")
        state = gr.State({"picked": []})
        out = gr.Textbox()
        with gr.Accordion("More", open=False):
            gr.Slider(0, 10, value=5, label="Strength")
        gr.Button("Go").click(lambda t, n, s: f"{t} {n}", [text, number, state], out)
    return demo


def _eager_class() -> type:
    return lazy_session.lazy_session_class().__mro__[1]  # Gradio's own, whatever is installed


def test_lazy_session_holds_the_same_configs_as_gradio_eager_one(demo: gr.Blocks) -> None:
    lazy_class = lazy_session.lazy_session_class()
    assert lazy_class is not None, "Gradio's SessionState changed shape: re-check studio/ui/lazy_session.py"
    eager, lazy = _eager_class()(demo), lazy_class(demo)
    assert isinstance(lazy.config_values, lazy_session.LazyConfigValues)
    assert dict.__len__(lazy.config_values) == 0  # nothing built up front
    assert len(lazy.config_values) == len(eager.config_values)
    # what the deep-link route reads: every block's config, identical
    assert list(lazy.components) == list(eager.components)


def test_lazy_session_updates_like_the_eager_one(demo: gr.Blocks) -> None:
    lazy_class = lazy_session.lazy_session_class()
    eager, lazy = _eager_class()(demo), lazy_class(demo)
    ids = [k for k, b in demo.blocks.items() if isinstance(b, gr.Textbox)]
    state_id = next(k for k, b in demo.blocks.items() if isinstance(b, gr.State))
    for session in (eager, lazy):
        session._update_value_in_config(ids[0], "changed")  # what an event's input does
        session[state_id] = {"picked": [1]}  # a gr.State written by an event
        session[ids[1]] = gr.Textbox(value="replaced")  # a component returned as an update
    assert lazy.config_values[ids[0]] == eager.config_values[ids[0]]
    assert lazy.config_values[ids[0]]["props"]["value"] == "changed"
    assert lazy[state_id] == eager[state_id] == {"picked": [1]}
    assert lazy.config_values[ids[1]] == eager.config_values[ids[1]]
    assert list(lazy.components) == list(eager.components)


def test_install_makes_gradio_build_lazy_sessions(demo: gr.Blocks) -> None:
    assert lazy_session.install()
    holder = state_holder.StateHolder()
    holder.set_blocks(demo)
    session = holder["some-session"]
    assert isinstance(session.config_values, lazy_session.LazyConfigValues)
    # a stateful value reads as the block's default, copied per session
    state_id = next(k for k, b in demo.blocks.items() if isinstance(b, gr.State))
    session[state_id]["picked"].append(9)
    assert holder["other-session"][state_id] == {"picked": []}
