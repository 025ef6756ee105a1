"""Where jobs run. "local" (the default) runs them on the session manager's own worker threads;
"ray" and "ray://host:port" run each loaded model in Ray actors (studio/backends/ray_lane.py).

Everything above the model stays in the front either way: validation, the fair per-user
queue, cancel and timeouts, the model cache's bookkeeping, provenance and the asset store.
The backend only changes what the cache holds: a generator (local) or a handle to actors that
hold it (Ray). Importing this package imports no ray.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from studio.backends.ray_lane import RayBackend
    from studio.session import SessionManager


def start(manager: "SessionManager") -> "RayBackend | None":
    """The backend the manager's settings ask for; None means local threads."""
    if manager.settings.backend == "local":
        return None
    from studio.backends.ray_lane import RayBackend

    return RayBackend(manager)
