"""The Ray actor that holds one loaded model and runs its jobs (this code runs in the Ray worker).

One actor = one replica of one (generator, load options) pair: it loads the model once and
runs jobs on it, like an entry of the front's model cache. It is a threaded actor, so while
`run` executes a job, `events` (long-poll for progress, tokens, previews) and `cancel` can be
served on other threads. Errors come back as descriptions, not pickled exceptions: the front
rebuilds the same exception types so its messages match a local run word for word.

No `ray` import here: the front wraps the class with `ray.remote` (studio.backends.ray_lane).
"""
from __future__ import annotations

import builtins
import threading
import time
from typing import Any

import generators.base as base
from generators.base import Generator, Progress, ProgressEvent, Rng, StudioError


def describe_error(exc: BaseException) -> dict[str, Any]:
    """What the front needs to raise the same error: the studio's own class, or the type name."""
    from studio import devices

    studio_cls = next((c for c in type(exc).__mro__ if c.__module__ == base.__name__
                       and issubclass(c, StudioError)), None)
    if studio_cls is not None:
        kind = "studio"
        type_name = studio_cls.__name__
    else:
        kind = "oom" if devices.is_out_of_memory(exc) else "other"
        type_name = type(exc).__name__
    return {"kind": kind, "type": type_name, "message": str(exc)}


def rebuild_error(info: dict[str, Any]) -> BaseException:
    """The exception `describe_error` described, as the front's error handling expects it."""
    name, message = info["type"], info["message"]
    if info["kind"] == "studio":
        return getattr(base, name, StudioError)(message)
    if info["kind"] == "oom":  # studio.devices.is_out_of_memory() accepts any MemoryError
        return type(name, (MemoryError,), {})(message)
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            return builtin(message)
        except Exception:  # noqa: BLE001 - a builtin with a different constructor
            pass
    return type(name, (RuntimeError,), {})(message)  # same name in "X failed: Name: message"


class _JobState:
    """Events of one job on this actor, waiting for the front's next long-poll."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[ProgressEvent] = []
        self.cancel = threading.Event()
        self.finished = False

    def emit(self, event: ProgressEvent) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.finished = True
            self.cond.notify_all()


class ModelWorker:
    def __init__(self, generator: Generator, settings: Any) -> None:
        self.generator = generator
        self.settings = settings
        self.device: Any = None
        self._jobs: dict[str, _JobState] = {}
        self._lock = threading.Lock()

    def ping(self) -> bool:
        return True

    def load(self) -> dict[str, Any]:
        """Load on this worker's best device; {"error": ...} instead of raising (see module doc)."""
        from studio import devices

        started = time.perf_counter()
        try:
            import torch  # noqa: F401  (so the global RNG can be preserved around the load)

            cls = type(self.generator)
            self.device = devices.choose_device(self.settings.device, tuple(cls.devices))
            dtype = devices.choose_dtype(self.settings.dtype, self.device)
            with devices.preserve_global_rng(self.device):
                self.generator.load(self.device, dtype)
        except BaseException as exc:  # noqa: BLE001 - described to the front, which decides
            try:
                self.generator.unload()
            except Exception:  # noqa: BLE001 - half-loaded state; its memory goes with the actor
                pass
            return {"error": describe_error(exc)}
        return {"weights_sha256": self.generator.weights_sha256, "device": str(self.device),
                "load_s": time.perf_counter() - started}

    def _job(self, job_id: str) -> _JobState:
        with self._lock:
            return self._jobs.setdefault(job_id, _JobState())

    def run(self, job_id: str, params: Any, seed: int, time_left: float | None) -> dict[str, Any]:
        """Run one job; the Result (outputs still in memory) travels back through the object store."""
        from studio import devices

        state = self._job(job_id)
        deadline = None if time_left is None else time.monotonic() + time_left
        progress = Progress(sink=state.emit, cancel=state.cancel, deadline=deadline)
        try:
            progress.check()
            self._set_threads()
            started = time.perf_counter()
            with devices.preserve_global_rng(self.device):
                result = self.generator.generate(params, rng=Rng(seed, self.device), progress=progress)
            progress.check()
            return {"result": result, "run_s": time.perf_counter() - started, "pid": _pid()}
        except BaseException as exc:  # noqa: BLE001
            return {"error": describe_error(exc)}
        finally:
            state.finish()

    def events(self, job_id: str, timeout: float) -> tuple[list[ProgressEvent], bool]:
        """New events of a job (waiting up to `timeout` for one) and whether it has finished."""
        state = self._job(job_id)
        with state.cond:
            state.cond.wait_for(lambda: state.events or state.finished, timeout=timeout)
            events, state.events = state.events, []
            finished = state.finished
        if finished:
            with self._lock:
                self._jobs.pop(job_id, None)
        return events, finished

    def cancel(self, job_id: str) -> None:
        """The job stops at its next progress step, as a local one does."""
        self._job(job_id).cancel.set()

    def _set_threads(self) -> None:
        import sys

        if self.device is None or self.device.type != "cpu" or "torch" not in sys.modules:
            return
        torch = sys.modules["torch"]
        wanted = self.settings.torch_threads or self.generator.cpu_threads
        if wanted and torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)


def _pid() -> int:
    import os

    return os.getpid()

