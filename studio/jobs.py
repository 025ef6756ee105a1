"""Jobs and the fair queue they wait in.

A `Job` is one request: its owner, generator, validated params and concrete seed, its progress
events (replayed to late listeners, so a browser that reconnects misses nothing), and its
outcome. `FairQueue` serves users round-robin, so one user's batch of fifty cannot starve
another user's single job.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Callable, Iterator

from generators.base import Cancelled, Params, ProgressEvent, Result, StudioError

if TYPE_CHECKING:  # pragma: no cover
    from studio.session import SessionManager


class QueueFull(StudioError):
    """The queue is at its cap; the request was refused at once and nothing was queued."""


class PermissionDenied(StudioError):
    """Someone other than a job's owner tried to act on it."""


QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
_ids = itertools.count(1)


class Job:
    def __init__(self, *, generator: str, params: Params, seed: int, user: str, parents: list[str],
                 timeout: float, lane: str, manager: "SessionManager | None" = None,
                 provenance: dict[str, Any] | None = None) -> None:
        self.id = f"job-{next(_ids)}-{int(time.time() * 1000) % 100000:05d}"
        self.generator = generator
        self.params = params
        self.seed = seed
        self.user = user
        self.parents = list(parents)
        self.provenance = dict(provenance or {})  # extra provenance from the caller (e.g. the taste setting)
        self.timeout = timeout
        self.lane = lane
        self.state = QUEUED
        self.submitted = time.monotonic()
        self.started: float | None = None
        self.finished: float | None = None
        self.telemetry: dict[str, Any] = {}
        self.cancel_event = threading.Event()
        self.worker: threading.Thread | None = None  # the lane thread running it (set by the session)
        self._manager = manager
        self._cond = threading.Condition()
        self._events: list[ProgressEvent] = []
        self._result: Result | None = None
        self._error: BaseException | None = None

    # -- observing -----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.state in FINISHED

    @property
    def position(self) -> int | None:
        """Jobs ahead of this one (0 = running or next); None once finished."""
        if self.done:
            return None
        if self.state == RUNNING or self._manager is None:
            return 0
        return self._manager.position_of(self)

    @property
    def eta_s(self) -> float | None:
        """Rough seconds until this job finishes, from recent run times of the jobs ahead."""
        if self.done or self._manager is None:
            return None
        return self._manager.eta_of(self)

    def emit(self, event: ProgressEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def events(self, timeout: float | None = None) -> Iterator[ProgressEvent]:
        """Every event of this job, from the first, until it finishes (or `timeout` passes idle)."""
        index = 0
        while True:
            with self._cond:
                while index >= len(self._events) and not self.done:
                    if not self._cond.wait(timeout=timeout):
                        return
                batch = self._events[index:]
                index = len(self._events)
                finished = self.done
            yield from batch
            if finished and index >= len(self._events):
                return

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the outcome; raise the job's error (InvalidInput, OutOfMemory, Cancelled...)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.done, timeout=timeout):
                raise TimeoutError(f"{self.id} is still {self.state} after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None  # a finished job without error always has a result
        return self._result

    @property
    def error(self) -> BaseException | None:
        return self._error

    # -- acting --------------------------------------------------------------------------
    def cancel(self, user: str | None) -> None:
        """Cancel this job; only its owner may. A running job stops at its next progress step."""
        if (user or "local") != self.user:
            raise PermissionDenied("only the user who started a job can cancel it")
        if self.done:
            return
        self.cancel_event.set()
        if self._manager is not None:
            self._manager.dequeue(self)
        self.finish(error=Cancelled("cancelled by its owner"), state=CANCELLED)

    def finish(self, *, result: Result | None = None, error: BaseException | None = None,
               state: str | None = None) -> bool:
        """Record the outcome once; later calls (a late generator after a timeout) are ignored."""
        with self._cond:
            if self.done:
                return False
            self._result, self._error = result, error
            self.state = state or (DONE if error is None else FAILED)
            self.finished = time.monotonic()
            self._events.append(ProgressEvent(1.0 if error is None else 0.0,
                                              self.state if error is None else f"{self.state}: {error}",
                                              kind="state", data=self.state))
            self._cond.notify_all()
        return True

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "generator": self.generator, "user": self.user, "state": self.state,
                "seed": self.seed, "position": self.position, "telemetry": dict(self.telemetry),
                "error": str(self._error) if self._error else None}


class FairQueue:
    """Round-robin across users; first-in-first-out within a user."""

    def __init__(self) -> None:
        self._by_user: OrderedDict[str, deque[Job]] = OrderedDict()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._by_user.values())

    def push(self, job: Job) -> None:
        with self._cond:
            self._by_user.setdefault(job.user, deque()).append(job)
            self._cond.notify()

    def pop(self, timeout: float | None = None) -> Job | None:
        """The next job in fair order, waiting for one; None when closed or timed out."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or any(self._by_user.values()), timeout=timeout):
                return None
            if self._closed:
                return None
            user, queue = next((u, q) for u, q in self._by_user.items() if q)
            job = queue.popleft()
            del self._by_user[user]  # this user goes to the back of the round
            if queue:
                self._by_user[user] = queue
            return job

    def remove(self, job: Job) -> bool:
        with self._cond:
            queue = self._by_user.get(job.user)
            if queue and job in queue:
                queue.remove(job)
                if not queue:
                    del self._by_user[job.user]
                return True
            return False

    def order(self) -> list[Job]:
        """The order jobs would be served in if nothing else arrived."""
        with self._cond:
            queues = [list(q) for q in self._by_user.values()]
        out: list[Job] = []
        for round_ in itertools.zip_longest(*queues):
            out.extend(j for j in round_ if j is not None)
        return out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self, each: Callable[[Job], None]) -> None:
        with self._cond:
            jobs = [j for q in self._by_user.values() for j in q]
            self._by_user.clear()
        for job in jobs:
            each(job)
