"""The Ray backend keeps the studio's contract: same seed same bytes as local, progress events,
cancel and timeouts reaching the remote job, a killed actor, a generator that cannot load, an
out-of-memory job, the fair queue, and actors asking for what their generator declares.

One local Ray instance for the module (2 CPUs, a small object store, no dashboard, loopback
only) and the cheap generators: breeder, the GAN and music with their debug models.
"""
from __future__ import annotations

import pytest

try:
    import ray
except ImportError as exc:  # the backend is optional at run time; say why its tests did not run
    ray, NO_RAY = None, f"the Ray backend needs `ray` (pip install ray): {exc}"

from generators.base import Cancelled, GeneratorUnavailable, InvalidInput, OutOfMemory, TimedOut  # noqa: E402
from generators.breeder import Breeder  # noqa: E402
from generators.gan import GlyphGAN  # noqa: E402
from generators.music import MusicComposer  # noqa: E402
from studio.api import Studio  # noqa: E402
from studio.assets import _to_bytes  # noqa: E402
from studio.config import Settings  # noqa: E402
from tests import fakes  # noqa: E402


class DebugGAN(GlyphGAN):
    """The GAN's tiny random debug model, registered as a class (actors rebuild it by import)."""

    def __init__(self, weights: str = "", **load_options) -> None:
        from generators.gan_model import GANConfig

        super().__init__(weights, **load_options)
        self._debug_config = GANConfig(z_dim=8, width=4, image_size=16)


class DebugMusic(MusicComposer):
    def __init__(self, model: str = "lstm") -> None:
        super().__init__(model, _debug=True)


REGISTRY = {"breeder": Breeder, "gan": DebugGAN, "music": DebugMusic, "steps": fakes.Steps,
            "flaky": fakes.FlakyLoad, "oom": fakes.OOMer}
CASES = [("breeder", {"mode": "random", "rows": 2, "cols": 2, "width": 32, "height": 32}),
         ("gan", {"mode": "sample", "count": 4, "scale": 1}),
         ("music", {"bars": 2, "audio": False, "score": False})]
VOLATILE = ("job_id", "timings", "assets")  # differ between any two runs, local or not


@pytest.fixture(scope="module")
def ray_instance():
    if ray is None:
        pytest.skip(NO_RAY)
    from studio.backends.ray_lane import start_local

    if ray.is_initialized():
        ray.shutdown()
    start_local(num_cpus=2, object_store=80 << 20)
    assert ray.util.get_node_ip_address() == "127.0.0.1"  # every Ray server binds to loopback
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def remote(tmp_path_factory, ray_instance):
    """One Ray-backed studio for the module: actors stay warm from test to test, as in use."""
    home = tmp_path_factory.mktemp("ray")
    studio = Studio(Settings(home=home / "home", cache_dir=home / "cache", backend="ray"), registry=REGISTRY)
    yield studio
    studio.close()


@pytest.fixture
def local(tmp_path):
    studio = Studio(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache"), registry=REGISTRY)
    yield studio
    studio.close()


def _drop(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def _stable(result) -> dict:
    return _drop(result.provenance)


def test_backend_setting_from_env_and_toml(tmp_path):
    assert Settings.load(env={}, home=tmp_path).backend == "local"
    assert Settings.load(env={"STUDIO_BACKEND": "ray://10.0.0.5:10001"}, home=tmp_path).backend.startswith("ray://")
    (tmp_path / "studio.toml").write_text('backend = "ray"\nray_replicas = 2\nray_object_store = "128MiB"\n')
    settings = Settings.load(env={}, home=tmp_path)
    assert (settings.backend, settings.ray_replicas, settings.ray_object_store) == ("ray", 2, 128 << 20)
    for bad in ({"backend": "spark"}, {"ray_replicas": 0}, {"ray_gpu_fraction": 1.5},
                {"ray_replicas": 2, "ray_replicas_max": 1}, {"ray_scale_down_s": 0}):
        with pytest.raises(InvalidInput):
            Settings.from_mapping(bad)


def test_local_backend_never_imports_ray(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from studio.session import SessionManager; from studio.config import Settings\n"
            f"m = SessionManager(Settings(home=__import__('pathlib').Path({str(tmp_path)!r})), registry={{}})\n"
            "print(m.backend, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "False"]


def test_actors_ask_for_what_the_generator_declares(remote, monkeypatch):
    backend = remote.session.backend
    gan = backend.remote("gan", DebugGAN())
    wanted = gan._resources()
    assert wanted["num_cpus"] == DebugGAN.cpu_threads == 1
    assert wanted["memory"] == DebugGAN().estimate_bytes()
    assert "num_gpus" not in wanted  # no GPU in this cluster (and the GAN is CPU-only)

    class CudaSteps(fakes.Steps):
        devices = ("cuda", "cpu")
        cpu_threads = 2

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0, "GPU": 1.0})
    monkeypatch.setattr(backend, "settings", backend.settings.replace(ray_gpu_fraction=0.25))
    wanted = backend.remote("cuda-steps", CudaSteps())._resources()
    assert (wanted["num_cpus"], wanted["num_gpus"]) == (2.0, 0.25)


def test_progress_and_tokens_stream_from_the_actor(remote):
    studio = remote
    job = studio.submit("steps", {"steps": 4, "step_s": 0.05, "tag": "hello"}, seed=3)
    events = list(job.events(timeout=60))
    steps = [e.message for e in events if e.kind == "progress"]
    assert steps == [f"step {i}/4" for i in range(1, 5)]
    assert [e.data for e in events if e.kind == "token"] == ["hello"]
    assert job.result().data["text"].startswith("hello ")


def test_cancel_stops_the_remote_job_and_the_actor_runs_the_next(remote):
    studio = remote
    job = studio.submit("steps", {"steps": 2000, "step_s": 0.01, "tag": "long"}, seed=1)
    for event in job.events(timeout=60):
        if event.kind == "progress":  # running remotely now
            break
    job.cancel(None)
    with pytest.raises(Cancelled, match="cancelled by its owner"):
        job.result(timeout=5)
    # The remote generator stopped at its next step: the same single actor takes the next job.
    follow = studio.submit("steps", {"steps": 1, "tag": "next"}, seed=2)
    assert follow.result(timeout=60).data["text"].startswith("next ")
    assert len(studio.session.backend.replicas("steps")) == 1


def test_timeout_reaches_the_remote_job(remote):
    studio = remote
    job = studio.submit("steps", {"steps": 2000, "step_s": 0.01}, seed=1, timeout=1.5)
    with pytest.raises(TimedOut, match="time limit"):
        job.result(timeout=60)
    assert studio.generate("steps", {"steps": 1, "tag": "after"}, seed=1).data["text"].startswith("after ")


def test_killed_actor_retries_once_and_the_next_job_succeeds(remote):
    studio = remote
    studio.generate("steps", {"steps": 1}, seed=1)  # warm: the actor exists
    [actor] = studio.session.backend.replicas("steps")
    job = studio.submit("steps", {"steps": 40, "step_s": 0.05, "tag": "survivor"}, seed=5)
    for event in job.events(timeout=60):
        if event.kind == "progress":
            ray.kill(actor)  # the replica dies mid-job
            break
    result = job.result(timeout=120)
    assert result.data["text"].startswith("survivor ")
    assert any("retrying once" in e.message for e in job.events(timeout=1))
    [fresh] = studio.session.backend.replicas("steps")
    assert fresh != actor
    assert studio.generate("steps", {"steps": 1, "tag": "then"}, seed=5).data["text"].startswith("then ")


def test_fair_queue_stays_in_the_front(remote):
    studio = remote
    first = studio.submit("steps", {"steps": 20, "step_s": 0.02, "tag": "a0"}, user="a", seed=1)
    for event in first.events(timeout=60):
        if event.kind == "progress":
            break
    jobs = [studio.submit("steps", {"tag": f"a{i}"}, user="a", seed=1) for i in (1, 2, 3)]
    jobs.append(studio.submit("steps", {"tag": "b1"}, user="b", seed=1))
    assert jobs[-1].position == 1  # b's one job goes ahead of a's second and third
    finished = sorted((job.result(timeout=60) and job.finished, job.params.tag) for job in [first, *jobs])
    assert [tag for _, tag in finished] == ["a0", "a1", "b1", "a2", "a3"]


def test_same_seed_same_bytes_and_provenance_as_local(local, remote):
    for name, params in CASES:
        a = local.generate(name, params, seed=11, user="ana")
        b = remote.generate(name, params, seed=11, user="ana")
        assert [o.suffix for o in a.outputs] == [o.suffix for o in b.outputs], name
        assert [_to_bytes(o) for o in a.outputs] == [_to_bytes(o) for o in b.outputs], name
        assert _drop(a.data) == _drop(b.data), name
        assert _stable(a) == _stable(b), name
        assert len(b.assets) == len(a.assets) and all(p.is_file() for p in b.assets)
        # The written files themselves (provenance embedded; no times or paths in it) match.
        assert [p.read_bytes() for p in a.assets] == [p.read_bytes() for p in b.assets], name
        # The front's asset store wrote them: the files hold the same embedded record.
        assert local.restore(a.assets[0])["params"] == remote.restore(b.assets[0])["params"]
    assert {m["name"] for m in remote.status()["cache"]} >= {"music"}  # the last one stays resident
    assert remote.status()["backend"]["replicas"]


def test_load_failure_marks_only_that_generator_unavailable(remote):
    studio = remote
    bad = studio.submit("flaky", {}, seed=1)
    with pytest.raises(GeneratorUnavailable, match="could not load: OSError: weights file is corrupt"):
        bad.result(timeout=120)
    listed = {g["name"]: g for g in studio.generators()}
    assert not listed["flaky"]["available"]
    assert listed["flaky"]["reason"] == "OSError: weights file is corrupt (unexpected end of file)"
    assert studio.session.backend.replicas("flaky") == []  # its actor was let go
    # Others run meanwhile, on their own actors.
    assert studio.generate("music", CASES[2][1], seed=2).assets


def test_out_of_memory_fails_the_job_as_locally_and_frees_the_actor(local, remote):
    with pytest.raises(OutOfMemory) as here:
        local.generate("oom", {}, seed=1)
    job = remote.submit("oom", {}, seed=1)
    with pytest.raises(OutOfMemory) as there:
        job.result(timeout=120)
    assert str(there.value) == str(here.value)  # "... ran out of memory; ... (OutOfMemoryError)"
    assert remote.session.backend.replicas("oom") == []  # the possibly corrupt model was dropped
    # Like a local OOM, idle models were unloaded too; the next job loads a fresh actor.
    assert remote.generate("oom", {"boom": False}, seed=1).assets


def _wait_for(predicate, timeout: float = 90.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_replicas_scale_up_when_all_are_busy_and_back_down_when_idle(remote, tmp_path):
    """ray_replicas=1, ray_replicas_max=2: a second job arriving while the only replica is busy
    starts another (in the background); once both are idle for ray_scale_down_s, one goes."""
    remote.session.cache.clear()  # the module's studio frees its actors: the 2-CPU cluster is ours
    settings = Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", backend="ray", workers=2,
                        ray_replicas=1, ray_replicas_max=2, ray_scale_down_s=0.5)
    studio = Studio(settings, registry=REGISTRY)
    try:
        backend = studio.session.backend
        first = studio.submit("steps", {"steps": 400, "step_s": 0.02, "tag": "first"}, seed=1)
        for event in first.events(timeout=120):
            if event.kind == "progress":  # the only replica is busy now
                break
        assert len(backend.replicas("steps")) == 1
        second = studio.submit("steps", {"steps": 2, "step_s": 0.02, "tag": "second"}, seed=2)
        assert second.result(timeout=60).data["text"].startswith("second ")  # shared the busy one meanwhile
        assert _wait_for(lambda: len(backend.replicas("steps")) == 2), "no second replica was started"
        assert len(backend.replicas("steps")) == 2  # never above ray_replicas_max
        third = studio.submit("steps", {"steps": 2, "tag": "third"}, seed=3)
        assert third.result(timeout=60).data["text"].startswith("third ")
        first.cancel(None)
        with pytest.raises(Cancelled):
            first.result(timeout=30)
        assert _wait_for(lambda: len(backend.replicas("steps")) == 1, timeout=30), "the idle surplus stayed"
        assert studio.generate("steps", {"steps": 1, "tag": "after"}, seed=4).data["text"].startswith("after ")
    finally:
        studio.close()
