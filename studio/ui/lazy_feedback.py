"""The feedback store, opened on first use instead of before the first paint.

Opening `studio.feedback.FeedbackStore` imports SQLAlchemy and Alembic and runs the schema
migrations: about half a CPU-second that the page does not need to be drawn. `LazyFeedback`
stands in for the store (every attribute is the real store's) and opens it the first time
anything asks, or in a background thread once a browser has drawn the page (`warm`).
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class LazyFeedback:
    def __init__(self, open_store: Callable[[], Any]) -> None:
        self._open = open_store
        self._store: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The real store (opened now if it is not yet; an opening error is raised to the caller)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._open()
        return self._store

    def warm(self) -> None:
        """Open the store in the background (after the first paint); errors wait for a real use."""
        def run() -> None:
            try:
                self.get()
            except Exception:  # noqa: BLE001 - the first rating or search reports it in place
                pass

        threading.Thread(target=run, name="studio-feedback-open", daemon=True).start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)
