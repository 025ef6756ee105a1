"""What every tab shares: the Studio, the feedback store, panels, tabs and the job table."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:  # pragma: no cover
    from studio.feedback import FeedbackStore
    from studio.ui.panel import GeneratorPanel


@dataclass
class UIContext:
    studio: Any  # studio.api.Studio (or anything with its methods)
    feedback: "FeedbackStore"
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> Studio.generators() row
    panels: dict[str, "GeneratorPanel"] = field(default_factory=dict)
    tab_of: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (tab id, sub-tab id)
    tabs: gr.Tabs | None = None
    sub_tabs: dict[str, gr.Tabs] = field(default_factory=dict)  # tab id -> its inner Tabs
    lazy_tabs: dict[str, gr.Tab] = field(default_factory=dict)  # tab id -> Tab whose panels build when opened
    claimed: set[str] = field(default_factory=set)  # generators some tab shows
    workspaces: dict[str, Any] = field(default_factory=dict)  # generator -> its purpose-built workspace
    handlers: dict[str, Any] = field(default_factory=dict)  # app-level event functions (tests, embedding)
    upload_dir: str | None = None  # where this server's uploads land (set by launch)
    after_first_paint: list[Any] = field(default_factory=list)  # run once, when a browser first shows the page
    _painted: bool = False
    _describe: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _device: str | None = None
    _jobs: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- start-up ---------------------------------------------------------------------------
    def first_paint(self) -> None:
        """The page's load event: start what was waiting for the first paint (model warm-up)."""
        with self._lock:
            if self._painted:
                return
            self._painted = True
            hooks, self.after_first_paint = list(self.after_first_paint), []
        for hook in hooks:
            hook()

    def when_painted(self, hook: Any) -> None:
        """Run `hook` after the first page load (at once if that has happened already)."""
        with self._lock:
            if not self._painted:
                self.after_first_paint.append(hook)
                return
        hook()

    # -- identity ---------------------------------------------------------------------------
    @staticmethod
    def user(request: gr.Request | None) -> str:
        """The logged-in user when auth is on, else this browser session."""
        if request is None:
            return "local"
        if getattr(request, "username", None):
            return str(request.username)
        from studio.ui.guard import COOKIE, token_user

        try:  # the HttpOnly per-browser token the guard middleware sets (studio.ui.guard)
            token = (getattr(request, "cookies", None) or {}).get(COOKIE)
        except Exception:  # noqa: BLE001 - a request object without cookies (handler tests)
            token = None
        if token:
            return token_user(token)
        # Only without the guard (handlers called directly): the public session hash.
        return f"session:{getattr(request, 'session_hash', None) or 'anonymous'}"

    def viewer(self, request: gr.Request | None) -> str | None:
        """Whose outputs this request may list: its own user, or None (everyone's) when the
        studio is set up as shared (settings.shared)."""
        settings = getattr(self.studio, "settings", None)
        if getattr(settings, "shared", "private") == "shared" or request is None:
            return None
        return self.user(request)

    @staticmethod
    def session(request: gr.Request | None) -> str:
        return str(getattr(request, "session_hash", "") or "")

    # -- the one way the UI starts a job ----------------------------------------------------------
    def submit(self, name: str, params: Any, seed: int | None, request: gr.Request | None) -> Any:
        """Queue a job for this browser: everything it sent is "remote" input for the gate
        (studio.gate), whichever button sent it. Raises the studio's own errors."""
        job = self.studio.submit(name, params, seed=seed, user=self.user(request), origin="remote")
        self.remember(job)
        from studio.ui.cancellable import note_started

        note_started(job)  # a cancellable event (studio.ui.cancellable) cancels it when it ends
        return job

    # -- generators -------------------------------------------------------------------------
    def describe(self, name: str) -> dict[str, Any] | None:
        """The generator's schema, or None if it cannot even be described (import failed)."""
        if name not in self._describe:
            try:
                self._describe[name] = self.studio.describe(name)
            except Exception as exc:  # noqa: BLE001 - shown to the creator as the reason
                self._describe[name] = None
                self.info.setdefault(name, {}).update(available=False, reason=str(exc))
        return self._describe[name]

    def device_group(self, name: str) -> str:
        """The Gradio concurrency group of the device this generator runs on (one per device).

        Read from the settings, not from `Studio.status()`: resolving "auto" imports torch,
        which would hold up first paint. Generators that run only on CPU share "device-cpu".
        """
        if self._device is None:
            settings = getattr(self.studio, "settings", None)
            self._device = str(getattr(settings, "device", "auto") or "auto")
        described = self.describe(name) or {}
        kinds = described.get("devices") or ["cpu"]
        kind = self._device.split(":")[0]
        if list(kinds) == ["cpu"] or kind == "cpu" or (kind != "auto" and kind not in kinds):
            return "device-cpu"
        return f"device-{self._device}"

    @property
    def concurrency_limit(self) -> int:
        """Jobs one device group lets through to the session manager, whose fair queue orders them."""
        settings = getattr(self.studio, "settings", None)
        return int(getattr(settings, "max_queue", 64)) + int(getattr(settings, "workers", 1))

    # -- jobs -------------------------------------------------------------------------------
    def remember(self, job: Any) -> None:
        """Keep a job findable for its owner's Cancel button while it can still be cancelled.

        Finished jobs are dropped at once: a finished job cannot be cancelled, and its Result
        (images, audio) should not stay in memory on the UI's account.
        """
        with self._lock:
            for jid in [j for j, v in self._jobs.items() if v.state in ("done", "failed", "cancelled")]:
                del self._jobs[jid]
            self._jobs[job.id] = job

    def job(self, job_id: str | None) -> Any:
        with self._lock:
            return self._jobs.get(job_id or "")
