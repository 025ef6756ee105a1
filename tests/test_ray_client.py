"""`STUDIO_BACKEND=ray://host:port`: the studio joins a Ray cluster it did not start, through Ray
Client, as a front outside a KubeRay cluster does (docs/scale.md, deployment 2).

The "cluster" is a Ray head started here with `ray start --block` on loopback only (its own
process group, stopped at the end, so no other Ray on the machine is touched). Ray Client needs
grpcio (`ray[client]`).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:
    import grpc  # noqa: F401 - Ray Client's transport
    import ray
except ImportError as exc:
    ray, NO_CLIENT = None, f"Ray Client needs `ray[client]` (pip install 'ray[client]'): {exc}"

from studio.api import Studio  # noqa: E402
from studio.assets import _to_bytes  # noqa: E402
from studio.config import Settings  # noqa: E402
from tests.test_ray_backend import CASES, REGISTRY  # noqa: E402
from tests.test_ui import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster_address(tmp_path_factory):
    if ray is None:
        pytest.skip(NO_CLIENT)
    if ray.is_initialized():
        ray.shutdown()
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    gcs, client = free_port(), free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every Ray server on loopback
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    with open(log, "wb") as out:
        head = subprocess.Popen(
            [ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
             f"--ray-client-server-port={client}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats", f"--object-store-memory={80 << 20}"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        address = f"ray://127.0.0.1:{client}"
        deadline = time.monotonic() + 120
        while True:  # the client server answers once the head is up
            if head.poll() is not None:
                pytest.fail(f"ray start exited {head.returncode}:\n{log.read_text()[-3000:]}")
            try:
                from studio.backends.ray_lane import _client_token_auth

                _client_token_auth()  # the head made a token (~/.ray/auth_token): send it
                ray.init(address=address, namespace="studio-probe", log_to_driver=False)
                ray.shutdown()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    pytest.fail(f"Ray Client did not answer within 120 s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)


def test_a_studio_joins_a_cluster_through_ray_client(cluster_address, tmp_path):
    local = Studio(Settings(home=tmp_path / "local", cache_dir=tmp_path / "cache"), registry=REGISTRY)
    remote = Studio(Settings(home=tmp_path / "remote", cache_dir=tmp_path / "cache", backend=cluster_address),
                    registry=REGISTRY)
    try:
        assert remote.status()["backend"]["backend"] == cluster_address
        name, params = CASES[0]  # the breeder: same seed, same bytes as a local run
        a = local.generate(name, params, seed=7)
        b = remote.generate(name, params, seed=7)
        assert [_to_bytes(o) for o in a.outputs] == [_to_bytes(o) for o in b.outputs]
        assert [p.read_bytes() for p in a.assets] == [p.read_bytes() for p in b.assets]
        assert remote.session.backend.replicas(name)  # it ran in an actor of the joined cluster
        # Progress and tokens stream back through the client too.
        job = remote.submit("steps", {"steps": 3, "step_s": 0.05, "tag": "via-client"}, seed=1)
        events = list(job.events(timeout=120))
        assert [e.message for e in events if e.kind == "progress"] == [f"step {i}/3" for i in (1, 2, 3)]
        assert job.result().data["text"].startswith("via-client ")
    finally:
        remote.close()
        local.close()
