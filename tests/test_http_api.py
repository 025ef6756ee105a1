"""The typed HTTP API from a remote program's side: a gradio_client in a separate process, with
its own working and download folders (no shared filesystem assumed), sends a local file with
handle_file, sees progress, and gets the output files downloaded to its own folder."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from studio.api import Studio
from studio.config import Settings
from tests.ui_fixtures import REGISTRY

CLIENT = r'''
import json, sys, time
from pathlib import Path
from gradio_client import Client, handle_file

url, picture = sys.argv[1], sys.argv[2]
client = Client(url, verbose=False, download_files=str(Path.cwd() / "downloads"))
api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
out = {"endpoints": sorted(api), "run_pixels_params": [p["parameter_name"] for p in api["/run_pixels"]["parameters"]]}
files, info = client.predict(prompt="a tinted square", size=8, image=handle_file(picture), seed=11,
                             api_name="/run_pixels")
out["pixels"] = {"files": files, "info": info}
job = client.submit(prompt="slow", repeat=1, delay=0.3, seed=3, api_name="/run_echo")
progress = []
while not job.done():
    status = job.status()
    if status.progress_data:
        progress.append([p.progress for p in status.progress_data])
    time.sleep(0.05)
out["echo"] = {"result": job.result(), "progress": progress}
try:
    client.predict(prompt="x", size=1000, api_name="/run_pixels")
except Exception as exc:
    out["error"] = str(exc)
print("RESULT " + json.dumps(out))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from studio.ui.app import launch

    home = tmp_path_factory.mktemp("server-home")
    studio = Studio(Settings(home=home), registry={**REGISTRY, "breeder": "generators.breeder:Breeder"})
    demo = launch(studio, port=_free_port(), block=False, quiet=True)
    yield demo, studio, home
    demo.close()
    studio.close()


def test_remote_client_sends_files_sees_progress_and_downloads_outputs(server, tmp_path: Path) -> None:
    from PIL import Image

    demo, studio, home = server
    remote = tmp_path / "remote-machine"
    remote.mkdir()
    picture = remote / "mine.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(picture)
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "STUDIO_HOME")}
    env.update(TMPDIR=str(remote / "tmp"), HOME=str(remote), GRADIO_ANALYTICS_ENABLED="False")
    (remote / "tmp").mkdir()
    done = subprocess.run([sys.executable, "-c", CLIENT, demo.local_url, str(picture)], cwd=remote, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert {"/run_pixels", "/run_echo", "/run_breeder"} <= set(out["endpoints"])
    assert out["run_pixels_params"] == ["prompt", "size", "image", "seed"]

    (png,) = out["pixels"]["files"]
    info = out["pixels"]["info"]
    assert Path(png).is_relative_to(remote), png  # downloaded into the client's own folder
    assert info["seed"] == 11 and info["files"] == [Path(png).name]
    server_copy = next(home.rglob(Path(png).name))
    assert Path(png).read_bytes() == server_copy.read_bytes()
    assert str(home) not in json.dumps(info) and "/tmp/" not in json.dumps(info)  # no server paths
    assert info["provenance"]["params"]["image"].startswith("mine.png (sha256 ")
    tinted = Image.open(png).convert("RGB").getpixel((0, 0))
    assert tinted[0] >= 100  # the red upload reached the generator

    from studio.assets import restore

    assert restore(png).generator == "pixels"  # the downloaded copy carries its recipe

    files, echo_info = out["echo"]["result"]
    assert echo_info["seed"] == 3 and Path(files[0]).is_relative_to(remote)
    assert out["echo"]["progress"], "no progress reached the client"
    assert "size" in out["error"] and "64" in out["error"]  # a clear sentence, not a traceback
