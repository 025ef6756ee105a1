"""The Ray lane: loaded models live in Ray actors; the studio's front stays as it is.

The session manager's model cache asks for a generator and gets a `RemoteModel` instead: a
`Generator` whose `load()` starts `ray_replicas` actors (studio.backends.ray_worker) that load
the model, each asking Ray for what the generator declares (its CPU threads, a GPU share when
it runs on CUDA, its estimated memory), and whose `generate()` runs the job on the least busy
of them. With `ray_replicas_max` above that, a job that finds every replica busy starts one
more in the background (up to the bound; on KubeRay a pending actor is what makes the cluster
add a node), and a surplus replica idle for `ray_scale_down_s` is let go. So everything the front does around a job is unchanged on Ray: validation, the fair
per-user queue, cancel and timeouts (the job's Progress), load-failure bookkeeping, OOM
recovery, provenance and the asset store, which writes the outputs the actor sends back (the
Result pickled through Ray's object store), so files are byte-identical to a local run.

Why plain actors and not Ray Serve: Serve adds a controller and an HTTP proxy process per node
and routes through an asyncio router; on a two-core machine that is seconds of start-up and a
second hop per request, for routing the model cache already does. A request for a model goes
to the actors that hold that model (the cache key is generator + load options), which is what
`serve.multiplexed` gives. docs/scale.md says where Serve would pay off.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import (Cancelled, Generator, GeneratorUnavailable, OutOfMemory, Params, Progress,
                             Result, Rng, StudioError)
from studio.backends.ray_worker import ModelWorker, rebuild_error

if TYPE_CHECKING:  # pragma: no cover
    from studio.session import SessionManager

log = logging.getLogger("studio.ray")

_POLL_S = 0.25  # long-poll window for events: a finished job answers at once, not after this
_CANCEL_GRACE_S = 10.0  # a cancelled job that ignores its progress steps is killed with its actor
_PLACEMENT_S = 120.0  # how long a new actor may wait for the cluster to find it room


def _ray():
    import ray

    return ray


def _loopback_only() -> None:
    """Ray picks the machine's outward address even when told 127.0.0.1, unless "clusters" are
    off; then every Ray server (GCS, raylet, workers, agents) binds to loopback only. The
    environment variable reaches Ray's own processes; the constant covers a driver that
    imported ray before this ran (ray reads the variable once, at import)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def start_local(num_cpus: int = 0, object_store: int = 256 << 20) -> None:
    """Start a local Ray instance: loopback only, no dashboard, a bounded object store. Workers
    import the studio from this checkout (PYTHONPATH), as the front does."""
    ray = _ray()
    _loopback_only()
    root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    # address="local": a new instance even when a `ray start` head on this machine (or a stale
    # /tmp/ray/ray_current_cluster it left) would make a bare ray.init() join that one instead
    ray.init(address="local", num_cpus=num_cpus or None, object_store_memory=object_store, include_dashboard=False,
             log_to_driver=False, configure_logging=False, namespace="studio",
             _node_ip_address="127.0.0.1")


def _client_token_auth() -> None:
    """Ray 2.60 clusters require a token by default, but Ray Client sends it only when
    RAY_AUTH_MODE=token: without it a connection just times out ("Authentication required but
    no authorization header provided" in the cluster's log). When the mode is unset and a token
    is at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), send it, as Ray's own
    drivers do for a local cluster (where they make the token)."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    # Ray's own step for this (it also refreshes the RayConfig this process already read)
    from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


class RayBackend:
    """One per session manager: connects to (or starts) Ray and makes RemoteModels."""

    def __init__(self, manager: "SessionManager") -> None:
        self.manager = manager
        self.settings = manager.settings
        ray = _ray()
        self._started = False
        if not ray.is_initialized():
            if self.settings.backend == "ray" and os.environ.get("RAY_ADDRESS"):
                ray.init(namespace="studio", log_to_driver=False)  # a front inside the cluster (a pod)
            elif self.settings.backend == "ray":
                start_local(self.settings.ray_num_cpus, self.settings.ray_object_store)
            else:  # "ray://host:port": Ray Client into an existing cluster (KubeRay, `ray start`)
                _client_token_auth()
                ray.init(address=self.settings.backend, namespace="studio", log_to_driver=False)
            self._started = True
        self._actor_cls = ray.remote(ModelWorker)
        self.models: list[RemoteModel] = []
        self._lock = threading.Lock()

    def remote(self, name: str, generator: Generator) -> "RemoteModel":
        model = RemoteModel(self, name, generator)
        with self._lock:
            self.models = [m for m in self.models if not m.unloaded] + [model]
        return model

    def replicas(self, name: str) -> list[Any]:
        """The actor handles now holding `name` (for status pages and tests)."""
        with self._lock:
            return [r.actor for m in self.models if m.name == name and not m.unloaded for r in list(m.replicas)]

    def status(self) -> dict[str, Any]:
        ray = _ray()
        with self._lock:
            models = {m.name: len(m.replicas) for m in self.models if m.replicas}
        return {"backend": self.settings.backend, "replicas": models,
                "cluster": ray.cluster_resources(), "available": ray.available_resources()}

    def close(self) -> None:
        with self._lock:
            models, self.models = self.models, []
        for model in models:
            model.unload()
        if self._started:
            _ray().shutdown()


class _Replica:
    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.busy = 0
        self.idle_since = time.monotonic()


class RemoteModel(Generator):
    """Stands in the model cache for a generator loaded in Ray actors (see the module doc)."""

    devices = ("cpu",)

    def __init__(self, backend: RayBackend, name: str, generator: Generator) -> None:
        self.backend = backend
        self.name = name
        self.inner = generator
        self.Params = type(generator).Params
        self.replicas: list[_Replica] = []
        self.unloaded = False  # set once the cache lets it go; its actors are gone for good
        self.remote_device: str | None = None
        self._lock = threading.Lock()
        self._last = threading.local()  # the actor's own run time of this thread's last job
        self._growing = 0  # replicas being started by autoscaling, not yet in `replicas`

    # -- the cache's view -----------------------------------------------------------------
    def estimate_bytes(self) -> int:
        return 0  # the memory is the cluster's: Ray accounts for it (`memory=` on each actor)

    def load(self, device: Any = None, dtype: Any = None) -> None:
        replicas = [self._start() for _ in range(self.backend.settings.ray_replicas)]
        self.replicas = replicas
        try:
            infos = [self._load(r) for r in replicas]
        except BaseException:
            self.unload()
            raise
        self.weights_sha256 = infos[0].get("weights_sha256")
        self.remote_device = infos[0].get("device")

    def unload(self) -> None:
        ray = _ray()
        with self._lock:
            replicas, self.replicas = self.replicas, []
            self.unloaded = True
        for replica in replicas:
            try:
                ray.kill(replica.actor)
            except Exception:  # noqa: BLE001 - already gone
                pass

    # -- actors ---------------------------------------------------------------------------
    def _resources(self) -> dict[str, Any]:
        """What this generator's actor asks Ray for: the generator's own declarations."""
        ray = _ray()
        cls = type(self.inner)
        options: dict[str, Any] = {"num_cpus": float(cls.cpu_threads or 1), "max_concurrency": 4,
                                   "max_restarts": 0}
        try:
            options["memory"] = max(1, int(self.inner.estimate_bytes()))
        except Exception:  # noqa: BLE001 - an estimate that needs files the front lacks
            pass
        device = self.backend.settings.device
        if "cuda" in cls.devices and (device == "auto" or device.startswith("cuda")) \
                and ray.cluster_resources().get("GPU", 0) > 0:
            options["num_gpus"] = self.backend.settings.ray_gpu_fraction
        return options

    def _start(self) -> _Replica:
        ray = _ray()
        options = self._resources()
        self._make_room(options)
        actor = self.backend._actor_cls.options(**options).remote(self.inner, self.backend.settings)
        ready, _ = ray.wait([actor.ping.remote()], timeout=_PLACEMENT_S)
        if not ready:
            ray.kill(actor)
            raise OutOfMemory(f"the Ray cluster found no room for {self.name} within {_PLACEMENT_S:g} s "
                              f"(it asks for {options}); try again when other jobs finish")
        return _Replica(actor)

    def _make_room(self, options: dict[str, Any]) -> None:
        """Unload idle models, least recently used first, until the cluster has room for this
        actor: the front's LRU cache decides for the cluster as it does for local memory."""
        ray = _ray()
        wanted = [(k, options[key]) for key, k in (("num_cpus", "CPU"), ("num_gpus", "GPU"), ("memory", "memory"))
                  if key in options]

        def fits() -> bool:
            free = ray.available_resources()
            return all(free.get(k, 0.0) >= need for k, need in wanted)

        cache = self.backend.manager.cache
        for info in cache.snapshot():  # oldest first
            if fits():
                return
            if info["in_use"] or info["pinned"] or info["name"] == self.name:
                continue
            if cache.unload(info["name"]):
                deadline = time.monotonic() + 5.0  # a killed actor's resources return within moments
                while not fits() and time.monotonic() < deadline:
                    time.sleep(0.05)

    def _load(self, replica: _Replica) -> dict[str, Any]:
        ray = _ray()
        try:
            info = ray.get(replica.actor.load.remote())
        except ray.exceptions.RayActorError as exc:
            raise GeneratorUnavailable(f"its Ray worker died while loading ({exc.__class__.__name__})") from exc
        if "error" in info:
            raise rebuild_error(info["error"])
        return info

    def _pick(self) -> _Replica:
        with self._lock:
            empty = not self.replicas
        if empty:  # every actor was killed (a cancel that was ignored): start one again
            fresh = self._start()
            self._load(fresh)
            with self._lock:
                self.replicas.append(fresh)
        with self._lock:
            replica = min(self.replicas, key=lambda r: r.busy)
            grow = replica.busy > 0 and len(self.replicas) + self._growing < self._max_replicas()
            if grow:
                self._growing += 1
            replica.busy += 1
        if grow:  # every replica is busy: this job shares one now, the next finds a fresh one
            threading.Thread(target=self._grow, name=f"ray-grow-{self.name}", daemon=True).start()
        return replica

    # -- autoscaling ----------------------------------------------------------------------
    def _max_replicas(self) -> int:
        settings = self.backend.settings
        return max(settings.ray_replicas, settings.ray_replicas_max)

    def _grow(self) -> None:
        """Start and load one more replica (in the background: a new actor takes seconds)."""
        fresh = None
        try:
            fresh = self._start()
            self._load(fresh)
            with self._lock:
                if not self.unloaded:
                    self.replicas.append(fresh)
                    log.info("%s: scaled up to %d replicas", self.name, len(self.replicas))
                    fresh = None
        except Exception as exc:  # noqa: BLE001 - no room or a failed load: keep serving on what exists
            log.warning("%s: could not add a replica (%s); staying at %d", self.name, exc, len(self.replicas))
        finally:
            with self._lock:
                self._growing -= 1
            if fresh is not None:  # unloaded while it started, or its load failed
                try:
                    _ray().kill(fresh.actor)
                except Exception:  # noqa: BLE001 - already gone
                    pass

    def _finished(self, replica: _Replica) -> None:
        with self._lock:
            replica.busy -= 1
            if replica.busy:
                return
            replica.idle_since = time.monotonic()
            surplus = len(self.replicas) > self.backend.settings.ray_replicas
        if surplus:  # look again once it could have been idle long enough
            timer = threading.Timer(self.backend.settings.ray_scale_down_s + 0.05, self.shrink)
            timer.daemon = True
            timer.start()

    def shrink(self) -> int:
        """Let go of replicas above `ray_replicas` that have been idle for `ray_scale_down_s`,
        longest idle first; returns how many were let go."""
        now = time.monotonic()
        keep_at_least = self.backend.settings.ray_replicas
        with self._lock:
            idle = sorted((r for r in self.replicas
                           if not r.busy and now - r.idle_since >= self.backend.settings.ray_scale_down_s),
                          key=lambda r: r.idle_since)
            gone = idle[:max(0, len(self.replicas) - keep_at_least)]
            self.replicas = [r for r in self.replicas if r not in gone]
        for replica in gone:
            try:
                _ray().kill(replica.actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if gone:
            log.info("%s: scaled down to %d replicas", self.name, len(self.replicas))
        return len(gone)

    def _replace(self, dead: _Replica) -> None:
        """A fresh actor, loaded, in place of one that died (once, however many jobs saw it die)."""
        with self._lock:
            if dead not in self.replicas:
                return  # another job already replaced it
        fresh = self._start()
        self._load(fresh)
        with self._lock:
            if dead in self.replicas:
                self.replicas = [fresh if r is dead else r for r in self.replicas]
                return
        _ray().kill(fresh)

    # -- running --------------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        """Run on one replica; if its actor dies mid-job, retry once on a fresh one."""
        ray = _ray()
        for attempt in (1, 2):
            replica = self._pick()
            try:
                return self._run_on(replica, params, rng.seed, progress)
            except ray.exceptions.RayActorError as exc:
                if attempt == 2:
                    raise StudioError(f"{self.name}'s Ray worker died twice while running this job "
                                      f"({exc.__class__.__name__})") from exc
                log.warning("%s: Ray worker died mid-job; retrying once on a fresh one", self.name)
                progress(0.0, "the worker running this job was lost; retrying once")
                self._replace(replica)
            finally:
                self._finished(replica)
        raise AssertionError("unreachable")

    def _run_on(self, replica: _Replica, params: Params, seed: int, progress: Progress) -> Result:
        ray = _ray()
        actor = replica.actor
        job_id = uuid.uuid4().hex
        time_left = None if progress.deadline is None else max(0.0, progress.deadline - time.monotonic())
        run_ref = actor.run.remote(job_id, params, seed, time_left)
        events_ref = actor.events.remote(job_id, _POLL_S)
        try:
            while True:
                ready, _ = ray.wait([events_ref], timeout=_POLL_S)
                progress.check()  # cancelled or timed out in the front: tell the actor (below)
                if not ready:
                    continue
                events, finished = ray.get(events_ref)
                for event in events:
                    _forward(event, progress)
                if finished:
                    break
                events_ref = actor.events.remote(job_id, _POLL_S)
            reply = ray.get(run_ref)
        except Cancelled:
            actor.cancel.remote(job_id)
            done, _ = ray.wait([run_ref], timeout=_CANCEL_GRACE_S)
            if not done:  # a generator that skips its progress steps: free the replica by force
                log.warning("%s ignored a cancel for %.0f s; killing its actor", self.name, _CANCEL_GRACE_S)
                ray.kill(actor)
                with self._lock:
                    self.replicas = [r for r in self.replicas if r is not replica]
            raise
        if "error" in reply:
            raise rebuild_error(reply["error"])
        self._last.remote_run_s = reply["run_s"]
        return reply["result"]

    def last_remote_run_s(self) -> float | None:
        """How long the generator itself ran in the actor for this thread's last job: a job's
        wall time minus this is what Ray added (transport, pickling, event polling)."""
        return getattr(self._last, "remote_run_s", None)


def _forward(event: Any, progress: Progress) -> None:
    """Replay a remote event through the front's Progress (which raises if the job was cancelled)."""
    if event.kind == "token":
        progress.token(event.data)
    elif event.kind == "preview":
        progress.preview(event.data, event.message)
    else:
        progress(event.fraction, event.message)
