"""The session manager: every generation in the studio goes through here.

It owns devices, memory and seeds. Jobs wait in one fair queue per compute device ("lane"),
so GPU jobs from every tab share one queue while a CPU-only generator never waits behind
them. Models stay resident in a budgeted LRU cache. Failures stay inside their job: an
out-of-memory error evicts idle models and empties caches before the next job runs; a model
that fails to load marks its generator unavailable with the reason, and the next request for
it tries again, so fixing the cause needs no restart.
"""
from __future__ import annotations

import heapq
import logging
import secrets
import sys
import threading
import time
from collections import deque
from typing import Any, Hashable, Mapping

import generators as registry_module
from generators.base import (Cancelled, Generator, GeneratorUnavailable, InvalidInput, OutOfMemory,
                             Params, Progress, Result, Rng, StudioError, TimedOut)
from studio import devices
from studio.assets import AssetStore
from studio.cache import CacheEntry, ModelCache
from studio.config import Settings
from studio.gate import LOCAL, Gate
from studio.jobs import (CANCELLED, FAILED, RUNNING, FairQueue, Job, PermissionDenied, QueueFull)

log = logging.getLogger("studio.session")

__all__ = ["SessionManager", "QueueFull", "PermissionDenied", "MAX_SEED"]

MAX_SEED = 2**32 - 1  # seeds fit every RNG we hand out (numpy, torch, python)
_DEFAULT_RUN_S = 5.0  # ETA guess for a generator that has not run yet
STUCK_GRACE_S = 1.0  # after a timeout, how long a generator may take to notice before the lane moves on


class Watchdog:
    """One thread that fails jobs past their deadline (a thread per job would cost ~0.1 ms each)."""

    def __init__(self, on_expire) -> None:
        self._on_expire = on_expire
        self._heap: list[tuple[float, int, Job]] = []
        self._live: set[int] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, job: Job, deadline: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline, id(job), job))
            self._live.add(id(job))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="studio-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def forget(self, job: Job) -> None:
        with self._cond:
            self._live.discard(id(job))

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and id(self._heap[0][2]) not in self._live:
                    heapq.heappop(self._heap)  # finished in time
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cond.wait(timeout=wait)
                    continue
                _, _, job = heapq.heappop(self._heap)
                self._live.discard(id(job))
            self._on_expire(job)


class Lane:
    """One compute device's queue and its worker threads.

    A job that runs past its time limit is failed at once, but Python cannot stop a thread: a
    generator that never calls `progress` (a long parse, a stuck library call) keeps its worker
    until it returns. So the lane then starts a stand-in worker (at most `workers` of them) and
    the stuck worker retires when its call finally ends, keeping the lane at its size.
    """

    def __init__(self, name: str, manager: "SessionManager", workers: int) -> None:
        self.name = name
        self.queue = FairQueue()
        self.running: list[Job] = []
        self.size = workers
        self.retiring: set[threading.Thread] = set()  # stuck workers: they stop when their job returns
        self._manager = manager
        self._count = 0
        self.threads: list[threading.Thread] = []
        for _ in range(workers):
            self.add_worker()

    def add_worker(self) -> threading.Thread:
        thread = threading.Thread(target=self._manager._work, args=(self,), name=f"studio-{self.name}-{self._count}",
                                  daemon=True)
        self._count += 1
        self.threads.append(thread)
        thread.start()
        return thread


class SessionManager:
    def __init__(self, settings: Settings | None = None, *,
                 registry: Mapping[str, str | type[Generator]] | None = None,
                 assets: AssetStore | None = None) -> None:
        self.settings = settings or Settings.load()
        self.registry: dict[str, str | type[Generator]] = dict(registry_module.REGISTRY if registry is None
                                                                else registry)
        for spec in self.settings.extra_generators:
            name, _, ref = spec.partition("=")
            if not ref:
                raise InvalidInput(f"extra generator must look like name=module:Class, got {spec!r}")
            self.registry[name.strip()] = ref.strip()
        self.assets = assets or AssetStore(self.settings.outputs_dir)
        self.gate = Gate(self.settings, self.assets.root)  # every submit passes it (studio.gate)
        self.cache = ModelCache(lambda pool: devices.default_budget(pool, self.settings))
        self.unavailable: dict[str, str] = {}  # generator name -> why its last load failed
        self._lanes: dict[str, Lane] = {}
        self._lock = threading.RLock()
        self._run_times: dict[str, float] = {}  # generator -> recent mean run seconds (for ETAs)
        # Summaries of finished jobs, not the jobs: a Result can hold large in-memory outputs.
        self.recent: deque[dict[str, Any]] = deque(maxlen=self.settings.history_size)
        self._watchdog = Watchdog(self._time_out)
        self._closed = False
        from studio import backends  # "local" = None: models load and run on this process's threads

        self.backend = backends.start(self)

    # -- generators ----------------------------------------------------------------------
    def generator_class(self, name: str) -> type[Generator]:
        ref = self.registry.get(name)
        if ref is None:
            raise InvalidInput(f"unknown generator {name!r}; available: {', '.join(sorted(self.registry))}")
        return registry_module.resolve(ref) if isinstance(ref, str) else ref

    def warm_imports(self) -> threading.Thread:
        """Import every registered generator's `warm_modules` on a low-priority background thread,
        so a creator's first request waits for its model, not for Python imports. A job that
        needs a module meanwhile simply waits for the import in progress (Python's import lock)."""
        import importlib
        import os

        def run() -> None:
            try:  # Linux niceness is per thread: keep the UI and running jobs first
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except (AttributeError, OSError):
                pass
            for name in list(self.registry):
                try:
                    modules = self.generator_class(name).warm_modules
                except Exception:  # noqa: BLE001 - an unavailable generator says so when it is used
                    continue
                for module in modules:
                    try:
                        importlib.import_module(module)
                    except Exception as exc:  # noqa: BLE001 - a warm-up is only ever a head start
                        log.debug("warm import %s failed: %s", module, exc)

        thread = threading.Thread(target=run, name="studio-warm-imports", daemon=True)
        thread.start()
        return thread

    def parse_params(self, name: str, params: Params | Mapping[str, Any] | None) -> Params:
        cls = self.generator_class(name)
        if isinstance(params, Params):
            if not isinstance(params, cls.Params):
                raise InvalidInput(f"{name} takes {cls.Params.__name__}, got {type(params).__name__}")
            params.validate()
            return params
        if params is not None and not isinstance(params, Mapping):
            raise InvalidInput(f"parameters must be an object of name: value, got {type(params).__name__}")
        params = dict(params or {})
        default = self.settings.default_model(name)
        fields = cls.Params.json_schema()["properties"]
        if default and not params.get("model") and fields.get("model", {}).get("x-load"):
            params["model"] = default  # the studio-wide choice (STUDIO_DEFAULT_MODELS)
        return cls.Params.from_dict(params)

    # -- submitting ----------------------------------------------------------------------
    def submit(self, name: str, params: Params | Mapping[str, Any] | None = None, *, seed: int | None = None,
               user: str | None = None, parents: list[str] | None = None,
               timeout: float | None = None, origin: str = LOCAL,
               provenance: Mapping[str, Any] | None = None) -> Job:
        """Validate now (bad input fails here, before any queueing) and queue the job fairly.

        `origin` is who asks: "local" (Python API, CLI: the machine's owner) or "remote" (a
        browser or HTTP client), whose file and model parameters the gate confines.
        `provenance` adds keys to every output's record (e.g. which taste model chose it)."""
        if self._closed:
            raise GeneratorUnavailable("the studio is shutting down")
        cls = self.generator_class(name)
        parsed = self.gate.check(name, self.parse_params(name, params), origin, cls)
        if seed is None:
            seed = secrets.randbelow(MAX_SEED + 1)
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InvalidInput(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
        if timeout is not None and not 0 < timeout <= 24 * 3600:
            raise InvalidInput("timeout must be between 0 and 86400 seconds")
        lane_name = str(devices.choose_device(self.settings.device, tuple(cls.devices)))
        job = Job(generator=name, params=parsed, seed=seed, user=user or "local", parents=list(parents or []),
                  timeout=timeout or self.settings.job_timeout_s, lane=lane_name, manager=self,
                  provenance=dict(provenance or {}))
        with self._lock:
            queued = sum(len(l.queue) for l in self._lanes.values())
            if queued >= self.settings.max_queue:
                raise QueueFull(f"the queue is full ({queued} jobs waiting); try again in a moment")
            lane = self._lanes.get(lane_name)
            if lane is None:
                lane = self._lanes[lane_name] = Lane(lane_name, self, self.settings.workers)
            lane.queue.push(job)
        job.emit(_state_event("queued"))
        return job

    def position_of(self, job: Job) -> int | None:
        lane = self._lanes.get(job.lane)
        if lane is None:
            return None
        order = lane.queue.order()
        return order.index(job) if job in order else None

    def eta_of(self, job: Job) -> float:
        lane = self._lanes.get(job.lane)
        if lane is None:
            return 0.0
        mean = lambda j: self._run_times.get(j.generator, _DEFAULT_RUN_S)  # noqa: E731
        now = time.monotonic()
        running = [max(0.0, mean(j) - (now - (j.started or now))) for j in list(lane.running)]
        if job.state == RUNNING:
            return max(0.0, mean(job) - (now - (job.started or now)))
        ahead = lane.queue.order()
        ahead = ahead[:ahead.index(job)] if job in ahead else ahead
        workers = max(1, len(lane.threads))
        return (sum(running) + sum(mean(j) for j in ahead)) / workers + mean(job)

    def dequeue(self, job: Job) -> None:
        lane = self._lanes.get(job.lane)
        if lane is not None:
            lane.queue.remove(job)

    # -- running -------------------------------------------------------------------------
    def _work(self, lane: Lane) -> None:
        while not self._closed:
            job = lane.queue.pop(timeout=1.0)
            if job is None or job.done:
                continue
            with self._lock:
                lane.running.append(job)
                job.worker = threading.current_thread()
            try:
                self._run(job)
            except BaseException:  # never let one job kill the worker
                log.exception("unexpected failure in %s", job.id)
                job.finish(error=StudioError(f"{job.generator} failed unexpectedly"), state=FAILED)
            finally:
                with self._lock:
                    lane.running.remove(job)
                    me = threading.current_thread()
                    retiring = me in lane.retiring
                    if retiring:
                        lane.retiring.discard(me)
                        lane.threads.remove(me)
                self.recent.append(job.summary())
            if retiring:
                return

    def _run(self, job: Job) -> None:
        job.state = RUNNING
        job.started = time.monotonic()
        job.telemetry["queue_wait_s"] = job.started - job.submitted
        job.emit(_state_event("running"))
        entry: CacheEntry | None = None
        try:
            entry, hit = self._acquire(job)
            job.telemetry.update(cache="hit" if hit else "miss", load_s=0.0 if hit else entry.load_s,
                                 device=str(entry.device))
            # The time limit counts the work, not the first model load: a creator's 60 s job is not
            # stopped because the model took 40 s to come off disk. (A load is bounded by its
            # generator; a job cancelled meanwhile stops at the check below.)
            deadline = time.monotonic() + job.timeout
            self._watchdog.watch(job, deadline)
            progress = Progress(sink=job.emit, cancel=job.cancel_event, deadline=deadline)
            progress.check()
            self._set_threads(entry)
            peak_before = self._reset_peak(entry)
            t0 = time.perf_counter()
            with devices.preserve_global_rng(entry.device):
                result = entry.generator.generate(job.params, rng=Rng(job.seed, entry.device), progress=progress)
            run_s = time.perf_counter() - t0
            progress.check()  # cancelled or timed out while the generator finished its last step
            job.telemetry.update(run_s=run_s, **self._peak(entry, peak_before))
            self._note_run_time(job.generator, run_s)
            t1 = time.perf_counter()
            self._write(job, entry, result)
            job.telemetry["write_s"] = time.perf_counter() - t1
            job.finish(result=result)
        except TimedOut as exc:
            job.finish(error=exc, state=FAILED)
        except Cancelled as exc:
            job.finish(error=exc, state=CANCELLED)
        except OutOfMemory as exc:
            self._recover_from_oom(entry)
            entry = None
            job.finish(error=exc, state=FAILED)
        except StudioError as exc:
            job.finish(error=exc, state=FAILED)
        except BaseException as exc:
            if devices.is_out_of_memory(exc):
                self._recover_from_oom(entry)
                entry = None  # discarded by the recovery
                job.finish(error=OutOfMemory(
                    f"{job.generator} ran out of memory; idle models were unloaded and memory freed. "
                    f"Try a smaller size or batch. ({type(exc).__name__})"), state=FAILED)
            else:
                log.exception("%s failed", job.id)
                job.finish(error=StudioError(f"{job.generator} failed: {type(exc).__name__}: {exc}"),
                           state=FAILED)
        finally:
            self._watchdog.forget(job)
            if entry is not None:
                self.cache.release(entry)
            job.telemetry["total_s"] = time.monotonic() - job.submitted

    def _time_out(self, job: Job) -> None:
        """Fail a job that ran past its limit now; the generator stops at its next progress step.
        If it has not stopped after `STUCK_GRACE_S`, its lane gets a stand-in worker (see Lane)."""
        job.cancel_event.set()
        job.finish(error=TimedOut(f"{job.generator} ran past its {job.timeout:g} s time limit and was stopped"),
                   state=FAILED)
        timer = threading.Timer(STUCK_GRACE_S, self._free_lane_of, args=(job,))
        timer.daemon = True
        timer.start()

    def _free_lane_of(self, job: Job) -> None:
        with self._lock:
            lane = self._lanes.get(job.lane)
            if self._closed or lane is None or job not in lane.running or job.worker is None \
                    or len(lane.retiring) >= lane.size:
                return  # it stopped in time (or enough stand-ins already run)
            lane.retiring.add(job.worker)
            lane.add_worker()
        log.warning("%s ignored its time limit; its lane continues on a stand-in worker", job.id)

    def _cache_key(self, name: str, params: Params, device: Any) -> Hashable:
        options = params.load_options()
        return (name, str(device), tuple(sorted((k, repr(v)) for k, v in options.items())))

    def _acquire(self, job: Job) -> tuple[CacheEntry, bool]:
        cls = self.generator_class(job.generator)
        device = devices.choose_device(self.settings.device, tuple(cls.devices))
        dtype = devices.choose_dtype(self.settings.dtype, device)
        options = job.params.load_options()

        def make() -> Generator:
            try:
                generator = cls(**options)
                generator.cache_dir = self.settings.cache_dir  # for one-off conversions (the contract)
                if self.backend is not None:  # Ray: the model loads and runs in actors instead
                    return self.backend.remote(job.generator, generator)
                return generator
            except StudioError:
                raise
            except Exception as exc:
                raise InvalidInput(f"cannot set up {job.generator} with {options}: {exc}") from exc

        def load(generator: Generator) -> None:
            try:
                import torch  # noqa: F401  (so the global RNG can be preserved around the load)

                if not self._own_options(cls, job.params):  # the embedded model: check its recorded hash
                    from studio import weights

                    damaged = weights.problems(job.generator)
                    if damaged:
                        raise GeneratorUnavailable(damaged[0])
                with devices.preserve_global_rng(device):
                    generator.load(device, dtype)
            except BaseException as exc:
                try:
                    generator.unload()
                except Exception:  # half-loaded state; its memory goes with the object
                    pass
                if devices.is_out_of_memory(exc):
                    self.cache.evict_unused()
                    raise OutOfMemory(f"not enough memory to load {job.generator}; idle models were unloaded, "
                                      "try again or raise the memory budget") from exc
                if isinstance(exc, (InvalidInput, OutOfMemory, Cancelled)):
                    raise
                reason = str(exc) if isinstance(exc, GeneratorUnavailable) else f"{type(exc).__name__}: {exc}"
                if self._own_options(cls, job.params):
                    # The request chose its own model and that failed: its job fails, the
                    # generator stays available to everyone else.
                    raise GeneratorUnavailable(f"{job.generator} could not load the model this request "
                                               f"asked for: {reason}") from exc
                self.unavailable[job.generator] = reason
                raise GeneratorUnavailable(f"{job.generator} could not load: {reason}") from exc
            self.unavailable.pop(job.generator, None)

        return self.cache.acquire(self._cache_key(job.generator, job.params, device), job.generator, make,
                                  device, devices.pool_of(device), load)

    def _own_options(self, cls: type[Generator], params: Params) -> dict[str, Any]:
        """Load options this request set away from the studio's defaults (field default or the
        configured default model)."""
        import dataclasses

        defaults = {f.name: f.default for f in dataclasses.fields(cls.Params)}
        configured = self.settings.default_model(cls.name) if getattr(cls, "name", None) else None
        return {k: v for k, v in params.load_options().items()
                if v != defaults.get(k) and not (k == "model" and configured and v == configured)}

    def _recover_from_oom(self, entry: CacheEntry | None) -> None:
        if entry is not None:
            self.cache.release(entry)
            self.cache.discard(entry)
        self.cache.evict_unused()

    def _set_threads(self, entry: CacheEntry) -> None:
        if entry.device.type != "cpu" or "torch" not in sys.modules:
            return
        torch = sys.modules["torch"]
        wanted = self.settings.torch_threads or entry.generator.cpu_threads
        if wanted and torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    @staticmethod
    def _reset_peak(entry: CacheEntry) -> int:
        if entry.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(entry.device)
            return 0
        return devices.peak_rss_bytes()

    @staticmethod
    def _peak(entry: CacheEntry, before: int) -> dict[str, int]:
        if entry.device.type == "cuda":
            import torch

            return {"peak_vram_bytes": int(torch.cuda.max_memory_allocated(entry.device))}
        peak = devices.peak_rss_bytes()
        # ru_maxrss is a process-wide high-water mark: report it and how much this job raised it.
        return {"peak_rss_bytes": peak, "peak_rss_growth_bytes": max(0, peak - before)}

    def _note_run_time(self, name: str, seconds: float) -> None:
        old = self._run_times.get(name)
        self._run_times[name] = seconds if old is None else 0.7 * old + 0.3 * seconds

    def _write(self, job: Job, entry: CacheEntry, result: Result) -> None:
        if not isinstance(result, Result):
            raise StudioError(f"{job.generator} returned {type(result).__name__}, not a Result")
        parents = list(dict.fromkeys([*job.parents, *result.parents]))
        result.provenance = {
            **job.provenance,  # caller's extras first: the studio's own keys below always win
            "generator": job.generator, "params": job.params.to_dict(), "seed": job.seed,
            "weights_sha256": entry.generator.weights_sha256, "parents": parents, "job_id": job.id,
            "device": str(entry.device),  # no user: provenance travels inside served files
            "timings": {k: round(v, 4) for k, v in job.telemetry.items() if k.endswith("_s")},
        }
        result.parents = parents
        result.assets = self.assets.write(result, result.provenance, owner=job.user) if result.outputs else []
        result.provenance["assets"] = [str(p) for p in result.assets]

    # -- control -------------------------------------------------------------------------
    def cancel(self, job: Job, user: str | None) -> None:
        job.cancel(user)

    def status(self) -> dict[str, Any]:
        with self._lock:
            lanes = {name: {"queued": len(l.queue), "running": [j.id for j in l.running],
                            "workers": len(l.threads)} for name, l in self._lanes.items()}
        return {"device": str(devices.choose_device(self.settings.device, ("cuda", "mps", "cpu"))),
                "device_setting": self.settings.device, "lanes": lanes, "cache": self.cache.snapshot(),
                "budgets": self.cache.budgets(), "unavailable": dict(self.unavailable),
                "queue_length": sum(v["queued"] for v in lanes.values()), "max_queue": self.settings.max_queue,
                "recent_jobs": list(self.recent)[-20:],
                "backend": self.backend.status() if self.backend is not None else {"backend": "local"}}

    def close(self) -> None:
        """Stop workers, fail queued jobs clearly, unload every model."""
        self._closed = True
        for lane in list(self._lanes.values()):
            lane.queue.drain(lambda j: j.finish(error=Cancelled("the studio shut down"), state=CANCELLED))
            lane.queue.close()
        for lane in list(self._lanes.values()):
            for t in lane.threads:
                t.join(timeout=5)
        self.cache.clear()
        if self.backend is not None:
            self.backend.close()


def _state_event(state: str):
    from generators.base import ProgressEvent

    return ProgressEvent(0.0, state, kind="state", data=state)
