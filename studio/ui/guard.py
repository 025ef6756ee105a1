"""The studio's front door: one ASGI middleware in front of Gradio's routes.

What Gradio 6.31 does not do for us (checked in its source: `routes.py`, `route_utils.py`):
- **Host check** (DNS rebinding): Gradio answers any `Host`. Here a loopback-bound studio
  answers only loopback names (plus the share link's host when there is one, or the operator's
  `allowed_hosts`).
- **Origin / CSRF**: Gradio's CORS middleware reflects any localhost `Origin` (another port's
  page could read responses) and nothing stops a cross-site POST. Here a request whose `Origin`
  is not the studio's own, or that a browser marks `Sec-Fetch-Site: cross-site`, is refused.
  Clients that are not browsers send neither header and pass (they cannot ride a victim's
  cookies).
- **Browser identity**: without auth the only per-visitor id was Gradio's session hash, which
  the page sends in the clear and anyone may reuse. Each browser gets an unguessable token in
  an HttpOnly, SameSite=Strict cookie (`COOKIE`); `UIContext.user` reads it. A Gradio session
  hash is bound to the first token that used it, so another browser cannot read its event
  stream or cancel its events by reusing the hash.
- **Login attempts**: at most `login_attempts` failed logins per client address per window.
- **Upload size per request**: Gradio caps each file; here the whole request body is capped too.
- **Served files**: the outputs index and provenance sidecars are never served (they name
  every output and its settings); the files themselves are.

The guard must be the outermost layer: Gradio inserts its CORS middleware in front of every
middleware it is given, and that layer put `access-control-allow-origin: <the caller's origin>`
(with credentials) on the guard's own refusals and answered a foreign page's CORS preflight
itself. `put_first(app)` moves the guard in front once the app is built (see its docstring).
"""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict, deque
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

COOKIE = "studio_browser"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
LOGIN_WINDOW_S = 600.0
MAX_SESSIONS = 100_000  # session-hash bindings remembered (oldest forgotten first)
MAX_JSON_BODY = 1 << 20  # queue/join and cancel bodies read to find the session hash
SIDECAR_SUFFIX = ".json"  # studio.assets.SIDECAR_SUFFIX (not imported: keep this module light)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def token_user(token: str) -> str:
    """The user id a browser token stands for (a hash: the token itself is never stored)."""
    return "browser:" + hashlib.sha256(token.encode()).hexdigest()[:24]


class StudioGuard:
    def __init__(self, app: Any, *, allowed_hosts: Iterable[str] = (), check_host: bool = True,
                 login_attempts: int = 10, max_body_bytes: int = 50 << 20) -> None:
        self.app = app
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.check_host = check_host
        self.login_attempts = login_attempts
        self.max_body_bytes = max_body_bytes
        self._failures: dict[str, deque[float]] = {}
        self._sessions: OrderedDict[str, str] = OrderedDict()  # gradio session hash -> browser token
        self._lock = threading.Lock()

    # -- checks ------------------------------------------------------------------------------
    def _host_ok(self, host: str) -> bool:
        if not self.check_host:
            return True
        name = host.lower()
        name = name.rsplit(":", 1)[0] if not name.endswith("]") and name.count(":") == 1 else name
        if name.startswith("[") and "]" in name:
            name = name[: name.index("]") + 1]
        if name in LOOPBACK_NAMES or name in self.allowed_hosts:
            return True
        return any(a.startswith("*.") and name.endswith(a[1:]) for a in self.allowed_hosts)

    @staticmethod
    def _same_origin(origin: str, host: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()

    def _login_blocked(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            q = self._failures.get(client)
            while q and now - q[0] > LOGIN_WINDOW_S:
                q.popleft()
            return bool(q) and len(q) >= self.login_attempts

    def _login_failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, deque()).append(time.monotonic())

    def _bind(self, session_hash: str, token: str) -> bool:
        """True if `session_hash` is this browser's (binding it on first use)."""
        with self._lock:
            owner = self._sessions.get(session_hash)
            if owner is None:
                self._sessions[session_hash] = token
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
                return True
            return secrets.compare_digest(owner, token)

    # -- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        if not self._host_ok(host):
            await _refuse(send, 421, "This studio does not answer to that host name.")
            return
        origin = headers.get("origin")
        if origin is not None and origin != "null" and not self._same_origin(origin, host):
            await _refuse(send, 403, "Requests from other sites are refused.")
            return
        if origin == "null" or headers.get("sec-fetch-site") == "cross-site":
            await _refuse(send, 403, "Requests from other sites are refused.")
            return
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header: treat as none
            cookie = SimpleCookie()
        token = cookie[COOKIE].value if COOKIE in cookie and len(cookie[COOKIE].value) >= 32 else None
        new_token = None
        if token is None:  # first visit: mint one, and let this very request carry it already
            token = new_token = secrets.token_urlsafe(32)
            raw = [(k, v) for k, v in scope["headers"] if k.lower() != b"cookie"]
            others = headers.get("cookie", "")
            raw.append((b"cookie", (f"{others}; " if others else "").encode("latin-1")
                        + f"{COOKIE}={token}".encode("latin-1")))
            scope = {**scope, "headers": raw}
        # Session hashes bind to the cookie the request came with. A client that keeps no cookies
        # (gradio_client, curl) is "" here: its hashes are usable by other cookie-less clients
        # (it chose them at random and never published them), never by or from a browser.
        binder = "" if new_token is not None else token
        client = (scope.get("client") or ("?", 0))[0]
        is_login = method == "POST" and path.rstrip("/").endswith("/login")
        if is_login and self._login_blocked(client):
            await _refuse(send, 429, "Too many failed sign-ins from this address; wait ten minutes.")
            return
        if path.startswith("/gradio_api/file=") or path.startswith("/file="):
            name = unquote(path.split("=", 1)[1]).rsplit("/", 1)[-1]
            if name == "index.jsonl" or (name.endswith(SIDECAR_SUFFIX) and name.count(".") >= 2):
                await _refuse(send, 404, "Not found.")
                return
        # Session hashes: bound to the browser that first used them.
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "/heartbeat/" in path:  # /gradio_api/heartbeat/<session_hash>
            query.setdefault("session_hash", [path.rstrip("/").rsplit("/", 1)[-1]])
        if "session_hash" in query and not self._bind(query["session_hash"][0], binder):
            await _refuse(send, 403, "That session belongs to another browser.")
            return
        if method == "POST" and (path.endswith("/queue/join") or path.endswith("/cancel")):
            body, receive = await _read_body(receive, MAX_JSON_BODY)
            if body is None:
                await _refuse(send, 413, "Request too large.")
                return
            try:
                session_hash = json.loads(body or b"{}").get("session_hash")
            except (ValueError, AttributeError):
                session_hash = None
            if isinstance(session_hash, str) and not self._bind(session_hash, binder):
                await _refuse(send, 403, "That session belongs to another browser.")
                return
        if method in ("POST", "PUT", "PATCH"):
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _refuse(send, 413, f"Request larger than {self.max_body_bytes >> 20} MB.")
                return
            receive = _capped(receive, self.max_body_bytes)

        status_box: dict[str, int] = {}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                if new_token is not None:
                    message = {**message, "headers": [*message.get("headers", []), (
                        b"set-cookie", f"{COOKIE}={new_token}; HttpOnly; SameSite=Strict; Path=/".encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except _TooLarge:
            if "status" not in status_box:
                await _refuse(send, 413, f"Request larger than {self.max_body_bytes >> 20} MB.")
        if is_login and status_box.get("status", 200) >= 400:
            self._login_failed(client)


def put_first(app: Any) -> None:
    """Make `StudioGuard` the outermost of a launched Starlette/FastAPI app's own middleware.

    Gradio's `launch()` builds the app, adds its CORS and compression layers in front of ours
    (`add_middleware` inserts at the front) and starts serving, with no step in between; the
    server's start-up already built the middleware chain. So this reorders the list and builds
    the chain again; requests in flight finish on the old chain, every later one (the first
    page load included: this runs before launch returns) passes the guard first, so a refusal
    leaves with no CORS header and a foreign preflight is refused, not answered."""
    stack = list(getattr(app, "user_middleware", []))
    guards = [m for m in stack if m.cls is StudioGuard]
    if not guards or stack[: len(guards)] == guards:
        return
    app.user_middleware = guards + [m for m in stack if m.cls is not StudioGuard]
    app.middleware_stack = app.build_middleware_stack()


class _TooLarge(Exception):
    pass


def _capped(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge()
        return message
    return wrapped


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The whole body (None if over `limit`) and a `receive` that replays it downstream."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return body, replay


async def _refuse(send: Send, status: int, text: str) -> None:
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
