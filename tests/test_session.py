"""The session manager: cache and budgets, fair queue, cancel, timeout, OOM and load-failure isolation."""
from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest
import torch

from generators.base import Cancelled, GeneratorUnavailable, InvalidInput, OutOfMemory, TimedOut
from studio.jobs import PermissionDenied, QueueFull

MiB = 1 << 20


def _weights(fakes, tmp_path, n):
    return [str(fakes.write_weights(tmp_path / f"w{i}.safetensors", seed=i)) for i in range(n)]


def _cached(studio):
    return sorted(e["key"] for e in studio.status()["cache"])


def test_several_models_stay_resident_when_they_fit(make_studio, fakes, tmp_path):
    studio = make_studio(ram_budget=20 * MiB)
    paths = _weights(fakes, tmp_path, 3)
    for p in paths:
        studio.generate("tiny", {"weights": p, "megabytes": 4}, seed=1)
    assert len(studio.status()["cache"]) == 3
    assert studio.status()["budgets"]["ram"]["used"] == 12 * MiB
    job = studio.submit("tiny", {"weights": paths[0], "megabytes": 4}, seed=1)
    job.result()
    assert job.telemetry["cache"] == "hit" and fakes.TinyImage.loads == 3


def test_least_recently_used_idle_model_is_evicted(make_studio, fakes, tmp_path):
    studio = make_studio(ram_budget=10 * MiB)
    a, b, c = _weights(fakes, tmp_path, 3)
    studio.generate("tiny", {"weights": a, "megabytes": 4})
    studio.generate("tiny", {"weights": b, "megabytes": 4})
    studio.generate("tiny", {"weights": a, "megabytes": 4})  # a is now the most recent
    studio.generate("tiny", {"weights": c, "megabytes": 4})  # must evict b, not a
    keys = " ".join(_cached(studio))
    assert "w0" in keys and "w2" in keys and "w1" not in keys
    assert fakes.TinyImage.unloads == 1
    assert studio.status()["budgets"]["ram"]["used"] <= 10 * MiB


def test_pinned_model_is_not_evicted_and_unload_is_explicit(make_studio, fakes, tmp_path):
    studio = make_studio(ram_budget=10 * MiB)
    a, b, c = _weights(fakes, tmp_path, 3)
    studio.generate("tiny", {"weights": a, "megabytes": 4})
    assert studio.pin("tiny") == 1
    studio.generate("tiny", {"weights": b, "megabytes": 4})
    studio.generate("tiny", {"weights": c, "megabytes": 4})
    assert any("w0" in k for k in _cached(studio))
    studio.pin("tiny", False)
    assert studio.unload("tiny") == 8 * MiB
    assert studio.status()["cache"] == []


def test_model_larger_than_budget_is_refused_before_loading(make_studio, fakes, tmp_path):
    studio = make_studio(ram_budget=10 * MiB)
    (a,) = _weights(fakes, tmp_path, 1)
    with pytest.raises(OutOfMemory, match="needs about .* budget"):
        studio.generate("tiny", {"weights": a, "megabytes": 50})
    assert fakes.TinyImage.loads == 0
    studio.generate("tiny", {"weights": a, "megabytes": 1})  # the studio carries on


def test_same_seed_same_bytes_and_global_rng_untouched(make_studio, weights):
    studio = make_studio()
    torch.manual_seed(1234)
    random.seed(99)
    np.random.seed(7)
    before = (torch.get_rng_state().clone(), random.getstate(), np.random.get_state()[1].copy())
    r1 = studio.generate("tiny", {"weights": str(weights), "size": 16}, seed=42)
    r2 = studio.generate("tiny", {"weights": str(weights), "size": 16}, seed=42)
    r3 = studio.generate("tiny", {"weights": str(weights), "size": 16}, seed=43)
    data = [r.assets[0].read_bytes() for r in (r1, r2, r3)]
    # The files differ only in their embedded provenance (job id, time); the pixels must match.
    from PIL import Image

    pixels = [np.asarray(Image.open(r.assets[0])) for r in (r1, r2, r3)]
    assert np.array_equal(pixels[0], pixels[1]) and not np.array_equal(pixels[0], pixels[2])
    assert data[0] != data[2]
    assert torch.equal(torch.get_rng_state(), before[0])
    assert random.getstate() == before[1]
    assert np.array_equal(np.random.get_state()[1], before[2])


def test_seed_none_becomes_a_returned_integer(make_studio):
    studio = make_studio()
    result = studio.generate("steps", {"steps": 1})
    assert isinstance(result.seed, int) and 0 <= result.seed < 2**32
    again = studio.generate("steps", {"steps": 1}, seed=result.seed)
    assert again.data == result.data


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "7", True])
def test_bad_seed_refused(make_studio, seed):
    with pytest.raises(InvalidInput, match="seed"):
        make_studio().submit("steps", {}, seed=seed)


def test_bad_params_fail_at_submit_before_queueing(make_studio):
    studio = make_studio()
    with pytest.raises(InvalidInput, match="steps must be between"):
        studio.submit("steps", {"steps": 0})
    with pytest.raises(InvalidInput, match="unknown generator"):
        studio.submit("nope", {})
    assert studio.status()["queue_length"] == 0


def test_progress_events_stream_in_order(make_studio):
    studio = make_studio()
    job = studio.submit("steps", {"steps": 4, "tag": "tok"}, user="ann")
    events = list(job.events(timeout=30))
    fractions = [e.fraction for e in events if e.kind == "progress"]
    assert fractions == [0.25, 0.5, 0.75, 1.0]
    assert [e.data for e in events if e.kind == "token"] == ["tok"]
    states = [e.data for e in events if e.kind == "state"]
    assert states == ["queued", "running", "done"]
    assert job.state == "done" and job.position is None


def test_concurrent_submits_from_many_threads(make_studio):
    studio = make_studio(max_queue=500)
    jobs, errors = [], []
    lock = threading.Lock()

    def client(i):
        try:
            mine = [studio.submit("steps", {"steps": 1, "step_s": 0.0, "tag": f"{i}-{k}"}, user=f"u{i % 4}")
                    for k in range(10)]
            with lock:
                jobs.extend(mine)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    results = [j.result(timeout=60) for j in jobs]
    assert len(results) == 160 and all(j.state == "done" for j in jobs)
    assert len({r.assets[0] for r in results}) == 160  # every output got its own file


def test_queue_full_answers_at_once(make_studio, fakes):
    studio = make_studio(max_queue=3)
    fakes.Steps.gate = threading.Event()
    first = studio.submit("steps", {"tag": "running"})
    while first.state != "running":
        time.sleep(0.01)
    queued = [studio.submit("steps", {"tag": f"q{i}"}) for i in range(3)]
    started = time.monotonic()
    with pytest.raises(QueueFull, match="queue is full"):
        studio.submit("steps", {"tag": "too many"})
    assert time.monotonic() - started < 0.5
    fakes.Steps.gate.set()
    for job in [first, *queued]:
        job.result(timeout=30)


def test_round_robin_fairness_between_users(make_studio, fakes):
    studio = make_studio()
    fakes.Steps.gate = threading.Event()
    blocker = studio.submit("steps", {"tag": "blocker"}, user="zed")
    while blocker.state != "running":
        time.sleep(0.01)
    batch = [studio.submit("steps", {"tag": f"a{i}"}, user="alice") for i in range(5)]
    single = studio.submit("steps", {"tag": "b0"}, user="bob")
    assert batch[0].position == 0 and single.position == 1 and batch[1].position == 2
    assert single.eta_s is not None and single.eta_s > 0
    fakes.Steps.gate.set()
    for job in [blocker, *batch, single]:
        job.result(timeout=30)
    assert fakes.Steps.ran == ["blocker", "a0", "b0", "a1", "a2", "a3", "a4"]


def test_cancel_only_by_owner(make_studio, fakes):
    studio = make_studio()
    fakes.Steps.gate = threading.Event()
    running = studio.submit("steps", {"steps": 200, "step_s": 0.01, "tag": "long"}, user="ann")
    queued = studio.submit("steps", {"tag": "later"}, user="ann")
    while running.state != "running":
        time.sleep(0.01)
    with pytest.raises(PermissionDenied):
        running.cancel("mallory")
    with pytest.raises(PermissionDenied):
        queued.cancel(None)
    queued.cancel("ann")
    assert queued.state == "cancelled" and studio.status()["queue_length"] == 0
    running.cancel("ann")
    fakes.Steps.gate.set()
    with pytest.raises(Cancelled):
        running.result(timeout=10)
    assert "later" not in fakes.Steps.ran
    assert studio.generate("steps", {"tag": "after"}).data["text"].startswith("after")


def test_timeout_stops_a_job_and_the_next_runs(make_studio):
    studio = make_studio()
    slow = studio.submit("steps", {"steps": 500, "step_s": 0.01}, timeout=0.3)
    with pytest.raises(TimedOut, match="time limit"):
        slow.result(timeout=10)
    assert slow.state == "failed"
    stuck = studio.submit("steps", {"steps": 1, "step_s": 1.5, "check": False}, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        stuck.result(timeout=10)
    assert time.monotonic() - started < 1.2  # reported at the deadline, not when the model returns
    assert studio.generate("steps", {"steps": 1}).data["text"]


def test_out_of_memory_fails_one_job_and_frees_memory(make_studio, fakes, weights):
    studio = make_studio()
    studio.generate("tiny", {"weights": str(weights)})
    assert studio.status()["cache"]
    with pytest.raises(OutOfMemory, match="ran out of memory"):
        studio.generate("oom", {"boom": True})
    assert studio.status()["cache"] == []  # idle models evicted, the OOMing one discarded
    assert fakes.OOMer.unloads >= 1 and fakes.TinyImage.unloads >= 1
    assert studio.generate("tiny", {"weights": str(weights)}).assets  # other generators still work
    assert studio.generate("oom", {"boom": False}).assets  # and the same one recovers


def test_load_failure_is_isolated_and_recoverable(make_studio, fakes, weights):
    studio = make_studio()
    with pytest.raises(GeneratorUnavailable, match="corrupt"):
        studio.generate("flaky")
    listing = {g["name"]: g for g in studio.generators()}
    assert listing["flaky"]["available"] is False and "corrupt" in listing["flaky"]["reason"]
    assert listing["tiny"]["available"] is True
    assert studio.generate("tiny", {"weights": str(weights)}).assets
    fakes.FlakyLoad.broken = False  # the creator fixes the weights file; no restart
    assert studio.generate("flaky").assets
    assert {g["name"]: g for g in studio.generators()}["flaky"]["available"] is True


def test_missing_weights_file_is_unavailable_with_reason(make_studio, tmp_path):
    studio = make_studio()
    with pytest.raises(GeneratorUnavailable, match="missing"):
        studio.generate("tiny", {"weights": str(tmp_path / "nope.safetensors")})


def test_telemetry_per_job(make_studio, weights):
    studio = make_studio()
    first = studio.submit("tiny", {"weights": str(weights)})
    first.result()
    second = studio.submit("tiny", {"weights": str(weights)})
    second.result()
    assert first.telemetry["cache"] == "miss" and second.telemetry["cache"] == "hit"
    for key in ("queue_wait_s", "load_s", "run_s", "peak_rss_bytes", "write_s"):
        assert key in second.telemetry
    assert second.telemetry["load_s"] == 0.0 and first.telemetry["peak_rss_bytes"] > 0


def test_device_choice_and_dtype(settings):
    from studio import devices

    assert str(devices.choose_device("auto", ("cpu",))) == "cpu"
    assert str(devices.choose_device("cpu", ("cuda", "cpu"))) == "cpu"
    with pytest.raises(InvalidInput, match="unknown device"):
        devices.choose_device("quantum", ("cpu",))
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInput, match="not available"):
            devices.choose_device("cuda", ("cuda", "cpu"))
    assert devices.choose_dtype("auto", torch.device("cpu")) == torch.float32


def test_ram_and_vram_budgets_are_separate_pools(fakes):
    """A model on a GPU draws from that GPU's budget only, never from RAM's (and vice versa)."""
    from studio.cache import ModelCache

    cache = ModelCache(lambda pool: {"ram": 10 * MiB, "cuda:0": 6 * MiB}[pool], wait_s=0.1)
    made = {}

    def acquire(key, pool, mb):
        gen = fakes.TinyImage(megabytes=mb)
        entry, _ = cache.acquire(key, "tiny", lambda: gen, "dev", pool, lambda g: None)
        cache.release(entry)
        made[key] = gen

    acquire("r1", "ram", 8)
    acquire("g1", "cuda:0", 5)  # fits its own pool although RAM is nearly full
    assert cache.budgets() == {"ram": {"budget": 10 * MiB, "used": 8 * MiB},
                               "cuda:0": {"budget": 6 * MiB, "used": 5 * MiB}}
    acquire("g2", "cuda:0", 5)  # evicts g1, leaves the RAM model alone
    assert {e["key"] for e in cache.snapshot()} == {"'r1'", "'g2'"}
    with pytest.raises(OutOfMemory, match="cuda:0 budget"):
        acquire("g3", "cuda:0", 7)


def test_torch_threads_follow_the_setting(make_studio, fakes):
    seen = []

    class ThreadProbe(fakes.Steps):
        cpu_threads = 1

        def generate(self, params, *, rng, progress):
            seen.append(torch.get_num_threads())
            return super().generate(params, rng=rng, progress=progress)

    before = torch.get_num_threads()
    try:
        studio = make_studio(torch_threads=2)
        studio.session.registry["probe"] = ThreadProbe
        studio.generate("probe", {"steps": 1})
        default = make_studio()
        default.session.registry["probe"] = ThreadProbe
        default.generate("probe", {"steps": 1})
    finally:
        torch.set_num_threads(before)
    assert seen == [2, 1]  # the setting wins; otherwise the generator's measured preference


def test_default_model_setting_fills_unnamed_model(make_studio, weights, fakes):
    """STUDIO_DEFAULT_MODELS picks the model when a request names none; a named one wins."""
    from dataclasses import dataclass

    from generators.base import param

    @dataclass(frozen=True)
    class ModelParams(fakes.TinyParams):
        model: str = param("", "which model", load=True)

    class WithModel(fakes.TinyImage):
        Params = ModelParams

        def __init__(self, weights="", megabytes=1, model=""):
            super().__init__(weights=weights, megabytes=megabytes)

    studio = make_studio(default_models=("withmodel=org/default",))
    studio.session.registry["withmodel"] = WithModel
    assert studio.session.parse_params("withmodel", {}).model == "org/default"
    assert studio.session.parse_params("withmodel", {"model": "mine"}).model == "mine"
    assert studio.session.parse_params("tiny", {}).load_options() == {"weights": "", "megabytes": 1}


def test_warm_imports_loads_declared_modules_in_the_background(settings, fakes, monkeypatch):
    """Generators declare the modules their first load imports; the studio imports them on a
    background thread, skipping a generator that cannot even be imported."""
    import sys

    from generators.base import Generator
    from studio.session import SessionManager

    class Warm(fakes.Steps):
        name = "warm"
        warm_modules = ("colorsys", "no_such_module_xyz")

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    manager = SessionManager(settings, registry={"warm": Warm, "broken": "generators.nowhere:Nothing"})
    try:
        manager.warm_imports().join(timeout=30)
        assert "colorsys" in sys.modules and "no_such_module_xyz" not in sys.modules
        assert Generator.warm_modules == ()
    finally:
        manager.close()
