"""A new Gradio session's state, built in a worker thread instead of on the event loop.

Gradio 6.31 makes a session's state (`gradio.state_holder.SessionState`: a config dict for every
block of the page) the first time a session hash reaches `queue/join` or `run/predict`, both
async routes, so the work runs on the server's only event loop. For the studio's ~1,300 blocks
that is ~0.13 s of CPU (and ~2.3 MB) per session, during which nothing else is served: no
heartbeat, no event stream, no other join. Forty gradio_clients starting together stalled the
loop for seconds and 15 of 40 `queue/join` requests passed gradio_client's 5 s timeout (issue #12,
break 9; a py-spy profile of the server put 87% of its samples in that dict comprehension).

`studio.ui.lazy_session` now makes that state ~100x cheaper (configs are built when read); this
middleware still keeps whatever a session costs off the loop and answers "busy" when it must.

This middleware sees the first request of a session, builds its state through Gradio's own
`state_holder[session_hash]` in a worker thread, one session at a time (first come, first
ready; the loop stays free meanwhile), and then passes the request on: Gradio finds the state
made. A new session's `queue/join` that would not have its state within `busy_after_s` (its
wait so far plus the measured build time, which grows with the machine's load; checked on
arrival and again when its turn comes) is answered with 503 and a sentence instead
(gradio_client raises "Queue is full! Please try again."), never left to time out; a browser's
page opens its session through `run/predict` and just waits its turn. It sits behind
`studio.ui.guard` (refused requests never get here) and, when the studio has sign-in, builds
only for a signed-in request (Gradio's login check would refuse the others before building
anything, and so must this).
"""
from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable

SESSION_PATHS = ("/queue/join", "/run/predict")
MAX_BODY = 1 << 20  # bodies read to find the session hash; a larger one is passed on unread
BUSY_AFTER_S = 3.0  # a new session's state ready within this (gradio_client gives queue/join 5 s)
FIRST_GUESS_S = 0.25  # a session build before any was measured (0.13 s measured on an idle 2-core box)
BUSY = "The studio is busy opening {n} other sessions; try again in a few seconds."

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SessionWarmup:
    def __init__(self, app: Any, *, busy_after_s: float = BUSY_AFTER_S) -> None:
        self.app = app
        self.busy_after_s = busy_after_s
        self._limiter: Any = None  # anyio.CapacityLimiter(1), made on the server's loop
        self._waiting = 0  # builds asked for and not finished (only the loop thread changes it)
        self._build_s = FIRST_GUESS_S  # recent build time (moving average)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope.get("method") == "POST"
                and scope.get("path", "").rstrip("/").endswith(SESSION_PATHS)):
            app = scope.get("app")
            holder = getattr(app, "state_holder", None)
            if holder is not None and _signed_in_or_open(app, scope):
                body, receive = await _peek_body(receive, MAX_BODY)
                session_hash = _session_hash(body)
                if session_hash is not None and session_hash not in holder:
                    joining = scope["path"].rstrip("/").endswith("/queue/join")
                    # refused at once when the builds ahead and its own would outlast the time allowed;
                    # the first in line is always let in, so a slow estimate is measured again
                    if joining and self._waiting and (self._waiting + 1) * self._build_s > self.busy_after_s:
                        await _busy(send, self._waiting)
                        return
                    first = self._waiting == 0
                    if not await self._build(holder, session_hash, give_up_after_s=(
                            self.busy_after_s if joining and not first else None)):
                        await _busy(send, self._waiting)
                        return
        await self.app(scope, receive, send)

    async def _build(self, holder: Any, session_hash: str, give_up_after_s: float | None) -> bool:
        """Build the session's state in turn; False if, when its turn came, it could not be ready
        within `give_up_after_s` of asking (the machine got busier), so the caller hears at once."""
        import time

        import anyio

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        asked = time.monotonic()

        def build() -> float | None:
            start = time.monotonic()
            if give_up_after_s is not None and start - asked + self._build_s > give_up_after_s:
                return None  # it would be ready too late: say so now
            _ = holder[session_hash]  # Gradio's StateHolder makes the session's state on first access
            return time.monotonic() - start

        self._waiting += 1
        try:
            took = await anyio.to_thread.run_sync(build, limiter=self._limiter)
        finally:
            self._waiting -= 1
        if took is None:
            return False
        self._build_s = 0.7 * self._build_s + 0.3 * took
        return True


async def _busy(send: Send, waiting: int) -> None:
    text = BUSY.format(n=waiting)
    body = json.dumps({"detail": text, "error": text}).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5")]})
    await send({"type": "http.response.body", "body": body})


def _session_hash(body: bytes | None) -> str | None:
    if not body:
        return None
    try:
        value = json.loads(body).get("session_hash")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def _signed_in_or_open(app: Any, scope: Scope) -> bool:
    """What Gradio's login check would let through (no sign-in, or a valid sign-in cookie)."""
    if getattr(app, "auth_dependency", None) is not None:
        return False  # a custom check we cannot replay: leave the session to Gradio
    if getattr(app, "auth", None) is None:
        return True
    cookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header: no sign-in
                return False
    cookie_id = getattr(app, "cookie_id", "")
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        if name in cookie and cookie[name].value in getattr(app, "tokens", {}):
            return True
    return False


async def _peek_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The body (None if over `limit`: then only its first part was read) and a `receive` that
    replays everything read to the app behind, then goes on with the rest."""
    read: list[dict[str, Any]] = []
    size = 0
    complete = False
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break
        if size > limit:
            break

    async def replay() -> dict[str, Any]:
        return read.pop(0) if read else await receive()

    body = b"".join(m.get("body", b"") for m in read if m["type"] == "http.request")
    return (body if complete and size <= limit else None), replay
