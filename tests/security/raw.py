"""A raw client for a launched studio: what an attacker with curl does, no gradio_client help.

`Browser` keeps one cookie jar and one Gradio session hash, finds an event by the elem_id of
the button that triggers it (private events included: they are reachable by raw HTTP), and
runs it through `/gradio_api/queue/join` + the SSE stream, returning the final message.
"""
from __future__ import annotations

import json
import secrets
from typing import Any

import httpx


class Browser:
    def __init__(self, base_url: str, *, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=timeout, headers=headers or {})
        self.session_hash = secrets.token_hex(6)
        self._config: dict[str, Any] | None = None

    def close(self) -> None:
        self.http.close()

    # -- the page ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        if self._config is None:
            r = self.http.get("/config")
            r.raise_for_status()
            self._config = r.json()
        return self._config

    def component_id(self, elem_id: str) -> int:
        for comp in self.config()["components"]:
            if comp.get("props", {}).get("elem_id") == elem_id:
                return comp["id"]
        raise KeyError(elem_id)

    def fn_index(self, elem_id: str, trigger: str = "click") -> int:
        target = self.component_id(elem_id)
        for i, dep in enumerate(self.config()["dependencies"]):
            if [target, trigger] in [list(t) for t in dep.get("targets", [])]:
                return dep.get("id", i)
        raise KeyError(f"{elem_id}.{trigger}")

    def dependency(self, fn_index: int) -> dict[str, Any]:
        return next(d for i, d in enumerate(self.config()["dependencies"]) if d.get("id", i) == fn_index)

    def upload(self, name: str, data: bytes) -> str:
        r = self.http.post("/gradio_api/upload", files={"files": (name, data)})
        r.raise_for_status()
        return r.json()[0]

    # -- events -----------------------------------------------------------------------------
    def join(self, fn_index: int, data: list[Any]) -> str:
        r = self.http.post("/gradio_api/queue/join", json={
            "data": data, "fn_index": fn_index, "session_hash": self.session_hash, "event_data": None,
            "trigger_id": None})
        r.raise_for_status()
        return r.json()["event_id"]

    def messages(self, max_messages: int = 2000):
        """Messages of this session's SSE stream (bounded), until the stream closes."""
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session_hash}) as r:
            count = 0
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                yield msg
                count += 1
                if count >= max_messages or msg.get("msg") == "close_stream":
                    return

    def call(self, fn_index: int, data: list[Any]) -> dict[str, Any]:
        """Run one event to its end; the `process_completed` message (check `success`)."""
        event_id = self.join(fn_index, data)
        for msg in self.messages():
            if msg.get("event_id") == event_id and msg.get("msg") == "process_completed":
                return msg
        raise AssertionError("the event never completed")

    def predict(self, fn_index: int, data: list[Any]) -> httpx.Response:
        """Run a `queue=False` event directly (POST /gradio_api/run/predict), as the page does."""
        return self.http.post("/gradio_api/run/predict", json={
            "data": data, "fn_index": fn_index, "session_hash": self.session_hash})

    def inputs_for(self, fn_index: int, **by_elem_id: Any) -> list[Any]:
        """The event's input list with defaults from the page, some replaced by elem_id."""
        comps = {c["id"]: c for c in self.config()["components"]}
        out = []
        for cid in self.dependency(fn_index)["inputs"]:
            props = comps[cid].get("props", {})
            out.append(by_elem_id.get(props.get("elem_id"), props.get("value")))
        return out


def error_text(msg: dict[str, Any]) -> str:
    out = msg.get("output") or {}
    return str(out.get("error") or out.get("title") or msg)
