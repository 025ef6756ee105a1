"""Gradio session state that builds each block's config only when something reads it.

Gradio 6.31's `SessionState.__init__` computes `config_for_block` for every block of the page
(`config_values`), eagerly, for every new session. Those dicts exist for one reader: the
`/gradio_api/deep_link` route, which the studio does not offer; event handling reads or updates
one entry at a time. For the studio's ~1,350 blocks that was ~0.13 CPU-s and ~2.3 MB per session
(measured with tracemalloc over 10 sessions of the real page), which made forty clients arriving
together queue for seconds (issue #12, break 9) and let made-up session ids hold
`state_session_capacity` (10,000) x 2.3 MB. `LazyConfigValues` is the same mapping, filled on
first read; iterating it (the deep-link route) fills every entry, so what it returns is the same
as the eager one (tests/test_lazy_session.py compares the two).

`install()` swaps the class that Gradio's `StateHolder` and `Blocks` make sessions from; it
refuses (and the eager class stays) if Gradio's SessionState no longer has the shape this relies
on, so a Gradio upgrade costs speed, never correctness.
"""
from __future__ import annotations

from typing import Any, Iterator

_INSTALLED: list[type] = []  # the lazy class, once install() swapped it in
_MADE: list[type | None] = []  # lazy_session_class()'s answer, made once


class LazyConfigValues(dict):
    """`{block_id: config_for_block(...)}` computed per key on first access."""

    def __init__(self, blocks_config: Any, blocks: dict[int, Any]) -> None:
        super().__init__()
        self._blocks_config = blocks_config
        self._pending = dict(blocks)  # id -> the block as it was when the session began
        self._order = list(blocks)  # the eager dict's order, which iteration keeps

    def _fill(self, key: Any) -> Any:
        block = self._pending.pop(key)
        value = self._blocks_config.config_for_block(key, [], block)
        dict.__setitem__(self, key, value)
        return value

    def _fill_all(self) -> None:
        if not self._pending:
            return
        for key in list(self._pending):
            self._fill(key)
        filled = dict(dict.items(self))  # in the order things were read: put back the page's order
        dict.clear(self)
        for key in self._order:
            if key in filled:
                dict.__setitem__(self, key, filled.pop(key))
        for key, value in filled.items():  # keys the page did not start with come last, as eagerly
            dict.__setitem__(self, key, value)

    def __missing__(self, key: Any) -> Any:
        if key in self._pending:
            return self._fill(key)
        raise KeyError(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._pending.pop(key, None)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        if self._pending.pop(key, None) is None:
            dict.__delitem__(self, key)
        elif dict.__contains__(self, key):
            dict.__delitem__(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or dict.__contains__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self._pending:
            self._fill(key)
        return dict.pop(self, key, *default)

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._pending)

    def __iter__(self) -> Iterator[Any]:
        self._fill_all()
        return dict.__iter__(self)

    def keys(self):  # type: ignore[override]
        self._fill_all()
        return dict.keys(self)

    def values(self):  # type: ignore[override]
        self._fill_all()
        return dict.values(self)

    def items(self):  # type: ignore[override]
        self._fill_all()
        return dict.items(self)

    def copy(self) -> dict:  # type: ignore[override]
        self._fill_all()
        return dict(dict.items(self))


def lazy_session_class() -> type | None:
    """A subclass of Gradio's SessionState with a lazy `config_values`, or None if Gradio's
    class does not look like the one this was written against."""
    if not _MADE:
        _MADE.append(_make_lazy_class())
    return _MADE[0]


def _make_lazy_class() -> type | None:
    import inspect
    import os
    from copy import copy

    from gradio import state_holder

    eager = state_holder.SessionState
    source = inspect.getsource(eager.__init__)
    if "self.config_values = {" not in source or "config_for_block(k, [], v)" not in source:
        return None

    class LazySessionState(eager):  # type: ignore[misc, valid-type]
        def __init__(self, blocks: Any) -> None:  # noqa: D107 - the parent's, minus the eager dicts
            self.blocks_config = copy(blocks.default_config)
            self.config_values = LazyConfigValues(self.blocks_config, {
                k: v for k, v in self.blocks_config.blocks.items() if k in blocks.blocks})
            self.state_data: dict[int, Any] = {}
            self._state_ttl: dict[int, Any] = {}
            self.is_closed = False
            self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

    # everything else the parent's __init__ sets must be set here too
    probe_attrs = {"blocks_config", "config_values", "state_data", "_state_ttl", "is_closed",
                   "STATE_TTL_WHEN_CLOSED"}
    assigned = {line.split("=")[0].strip().split(":")[0].removeprefix("self.")
                for line in source.splitlines() if line.strip().startswith("self.") and "=" in line
                and not line.strip().startswith("self.config_values[")}
    if not assigned <= probe_attrs:
        return None
    return LazySessionState


def install() -> bool:
    """Make Gradio build sessions lazily in this process; False if it kept the eager class."""
    if _INSTALLED:
        return True
    lazy = lazy_session_class()
    if lazy is None:
        return False
    from gradio import blocks, state_holder

    state_holder.SessionState = lazy  # StateHolder.__getitem__ looks the name up here
    blocks.SessionState = lazy  # and Blocks makes one for a call without a session
    _INSTALLED.append(lazy)
    return True
