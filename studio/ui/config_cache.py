"""Gradio's page config and API description, built once per caller's address, not per request.

Gradio 6.31 answers every `GET /config` (what each `gradio_client.Client` fetches first) by
deep-copying the whole Blocks config and walking it to rewrite file URLs: about 0.35 s of
pure-Python CPU for the studio's 1.6 MB config, all of it holding the GIL. Forty clients starting
together queued some 14 s of that, past gradio_client's 5 s read timeout, and every later
request (queue/join included) waited behind it (issue #12, break 9). Gradio's own compression
skips the route too (it compresses only paths with a file extension), so 1.6 MB went out raw.

The answer depends only on the Blocks config (fixed once the app is launched: the studio
renders no dynamic blocks) and on what Gradio reads from the request to build the root URL
(scheme, host and the forwarding headers, the mount path, the query) and the signed-in user.
`GET /gradio_api/info` (the API description every Client fetches next) is Gradio-cached, but
FastAPI re-encodes its 0.1 MB dict in pure Python on every request; it depends on no more.
So this middleware keeps Gradio's finished bytes per such key, plus one gzip copy for clients
that accept it (httpx, hence gradio_client, and browsers do): 1.6 MB becomes ~0.1 MB on the
wire and ~0 CPU per request. Requests that carry a sign-in cookie are passed through untouched
(their config names the user, and Gradio's login check must see each of them); only 200
answers are kept, so a refused or failed request is never replayed. A changed config object
(a relaunch) empties the cache.
"""
from __future__ import annotations

import asyncio
import gzip
from collections import OrderedDict
from typing import Any, Awaitable, Callable

CONFIG_PATHS = ("/config", "/config/", "/gradio_api/info", "/gradio_api/info/")
KEY_HEADERS = (b"host", b"x-forwarded-host", b"x-forwarded-proto", b"x-gradio-server")
QUERY_KEYS = ("deep_link", "page", "all_endpoints")  # all that /config and /info read (Gradio 6.31)
MAX_ENTRIES = 32  # distinct host names / queries remembered (oldest dropped first)
GZIP_LEVEL = 6

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Entry:
    def __init__(self, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"set-cookie")]
        self.body = body
        self.gzipped = gzip.compress(body, GZIP_LEVEL, mtime=0)


class ConfigCache:
    def __init__(self, app: Any, *, max_entries: int = MAX_ENTRIES) -> None:
        self.app = app
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._config_id: int | None = None
        self._build_lock: asyncio.Lock | None = None  # made on the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") not in CONFIG_PATHS
                or _signed_in(scope)):
            await self.app(scope, receive, send)
            return
        self._forget_if_relaunched(scope)
        key = _key(scope)
        entry = self._entries.get(key)
        if entry is None:
            if self._build_lock is None:
                self._build_lock = asyncio.Lock()
            async with self._build_lock:  # many clients at once: the first builds, the rest reuse it
                entry = self._entries.get(key)
                if entry is None:
                    entry = await self._build(scope, receive, send)
                    if entry is None:
                        return  # not a 200: already passed through as Gradio answered it
                    self._entries[key] = entry
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
        await _serve(entry, scope, send)

    def _forget_if_relaunched(self, scope: Scope) -> None:
        app = scope.get("app")
        blocks = app.get_blocks() if hasattr(app, "get_blocks") else None
        config_id = id(getattr(blocks, "config", None))
        if config_id != self._config_id:
            self._entries.clear()
            self._config_id = config_id

    async def _build(self, scope: Scope, receive: Receive, send: Send) -> _Entry | None:
        messages: list[dict[str, Any]] = []

        async def capture(message: dict[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None or start["status"] != 200:
            for message in messages:
                await send(message)
            return None
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return _Entry(list(start.get("headers", [])), body)


def _signed_in(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization" or (name == b"cookie" and b"access-token" in value):
            return True
    return False


def _key(scope: Scope) -> tuple:
    from urllib.parse import parse_qsl

    headers = tuple(v for k, v in scope.get("headers", []) if k in KEY_HEADERS)
    # only the query parameters the two routes read: made-up ones cannot force a rebuild each
    query = tuple(sorted((k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
                         if k in QUERY_KEYS))
    return (scope.get("scheme"), scope.get("server"), scope.get("root_path"), scope.get("path"), query, headers)


async def _serve(entry: _Entry, scope: Scope, send: Send) -> None:
    accepts = b",".join(v for k, v in scope.get("headers", []) if k == b"accept-encoding").lower()
    use_gzip = b"gzip" in accepts
    body = entry.gzipped if use_gzip else entry.body
    headers = [*entry.headers, (b"content-length", str(len(body)).encode()), (b"vary", b"Accept-Encoding")]
    if use_gzip:
        headers.append((b"content-encoding", b"gzip"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
