"""Build the page's component config once while the studio starts, not four times.

Use: `reuse_component_config(demo)` around the end of `with gr.Blocks()`, and
`keep_component_config(demo)` ... `release_component_config(demo)` around `demo.launch()`.

Gradio 6.31 builds the whole Blocks config (every component's props and API description, every
event) at the end of `with gr.Blocks()`, again in the `App.create_app` it calls right there
(`setup_mcp_server` refreshes it even with MCP off), again in `launch()`, and once more in the
`create_app` that `launch()` calls: four builds of the same components and events, ~0.25 CPU-s
each for the studio's page on a 2-core machine, before the first request can be answered.

Only the header of that config (title, css, theme, launch options) changes between those calls;
the components and events part (`BlocksConfig.get_config()`) does not, because nothing adds,
removes or edits a component between the end of the `with` block and the end of `launch()`.
`reuse_component_config(demo)` keeps that part from its first build and hands it back while
the number of blocks and events is unchanged (a safety net: any addition rebuilds it). It is
installed only around those two steps, so renders (`gr.render`) and later calls build afresh.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

MEMO_ATTR = "_studio_component_config"


@contextlib.contextmanager
def reuse_component_config(demo: Any) -> Iterator[None]:
    blocks_config = demo.default_config
    build = type(blocks_config).get_config

    def get_config(renderable: Any = None) -> Any:
        if renderable is not None:  # a gr.render's own part: always fresh
            return build(blocks_config, renderable)
        key = (len(blocks_config.blocks), len(blocks_config.fns), blocks_config.fn_id)
        memo = getattr(demo, MEMO_ATTR, None)
        if memo is None or memo[0] != key:
            memo = (key, build(blocks_config))
            setattr(demo, MEMO_ATTR, memo)
        return memo[1]

    blocks_config.get_config = get_config  # this Blocks' own config only (an instance attribute)
    try:
        yield
    finally:
        del blocks_config.get_config


def forget(demo: Any) -> None:
    """Drop the kept part once the app is served (it would only hold memory)."""
    if hasattr(demo, MEMO_ATTR):
        delattr(demo, MEMO_ATTR)


def keep_component_config(demo: Any) -> None:
    """`reuse_component_config` from here until `release_component_config(demo)` (around launch())."""
    cm = reuse_component_config(demo)
    cm.__enter__()
    demo._studio_component_config_cm = cm


def release_component_config(demo: Any) -> None:
    cm = getattr(demo, "_studio_component_config_cm", None)
    if cm is not None:
        del demo._studio_component_config_cm
        cm.__exit__(None, None, None)
    forget(demo)
