"""Launch safety: no exposure without auth, a failed share link ends fast and clearly, auth files."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generators.base import InvalidInput
from studio.api import Studio
from studio.config import Settings
from tests.test_ui import free_port
from tests.ui_fixtures import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def test_exposure_without_auth_is_refused() -> None:
    from studio.ui.launch import LaunchError, check_exposure

    check_exposure("127.0.0.1", False, None, False)
    check_exposure("localhost", False, None, False)
    check_exposure("::1", False, None, False)
    with pytest.raises(LaunchError, match="share link without a password"):
        check_exposure("127.0.0.1", True, None, False)
    with pytest.raises(LaunchError, match="0.0.0.0"):
        check_exposure("0.0.0.0", False, None, False)
    with pytest.raises(LaunchError, match="192.168.1.5"):
        check_exposure("192.168.1.5", False, None, False)
    check_exposure("0.0.0.0", True, [("u", "p")], False)
    check_exposure("0.0.0.0", True, None, True)


def test_auth_pairs_and_file(tmp_path: Path) -> None:
    from studio.ui.launch import parse_auth

    f = tmp_path / "logins"
    f.write_text("# studio users\nbo:pa:ss\n\ncy:x\n")
    assert parse_auth(["ana:pw"], str(f)) == [("ana", "pw"), ("bo", "pa:ss"), ("cy", "x")]
    for bad in (["nopass"], [":pw"], ["user:"]):
        with pytest.raises(InvalidInput, match="USER:PASS"):
            parse_auth(bad)
    with pytest.raises(InvalidInput, match="cannot read the auth file"):
        parse_auth([], str(tmp_path / "missing"))


def _studio_ui(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STUDIO_HOME": str(tmp_path / "home")}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "studio.ui.launch", "--port", str(free_port()), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - start


def test_share_without_auth_is_refused_before_listening(tmp_path: Path) -> None:
    proc, _ = _studio_ui(tmp_path, "--share")
    assert proc.returncode == 2
    assert "refusing to create a public share link without a password" in proc.stderr
    assert "Running on local URL" not in proc.stdout


def test_share_with_no_tunnel_fails_clearly(tmp_path: Path) -> None:
    # A share server nobody listens on stands in for "no internet": nothing leaves the machine.
    proc, took = _studio_ui(tmp_path, "--share", "--auth", "u:p", "--share-server", f"127.0.0.1:{free_port()}")
    assert proc.returncode == 2, proc.stderr
    assert "could not create a share link" in proc.stderr
    assert "Run it without --share" in proc.stderr
    assert "Running on local URL" not in proc.stdout  # refused before building or listening
    assert took < 15, took


def test_share_attempt_that_hangs_gives_up_in_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.ui import app

    def hang(demo, server):  # a tunnel server that never answers
        time.sleep(60)

    monkeypatch.setattr(app, "_open_tunnel", hang)
    studio = Studio(Settings(home=tmp_path / "home"), registry=REGISTRY)
    start = time.monotonic()
    try:
        with pytest.raises(app.LaunchError, match="within 3 s"):
            app.launch(studio, port=free_port(), share=True, auth=[("u", "p")], block=False, quiet=True,
                       share_timeout=3)
        took = time.monotonic() - start
    finally:
        studio.close()
    assert took < 15, took


def test_failed_tunnel_closes_the_local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from studio.ui import app

    def refuse(demo, server):
        refuse.url = demo.local_url
        raise RuntimeError("Could not get share link from Gradio API Server.")

    monkeypatch.setattr(app, "_open_tunnel", refuse)
    studio = Studio(Settings(home=tmp_path / "home"), registry=REGISTRY)
    try:
        with pytest.raises(app.LaunchError, match="Could not get share link"):
            app.launch(studio, port=free_port(), share=True, auth=[("u", "p")], block=False, quiet=True)
    finally:
        studio.close()
    with pytest.raises(httpx.HTTPError):
        httpx.get(refuse.url, timeout=2)


def test_first_paint_loads_no_model(tmp_path: Path) -> None:
    """Building the whole app with the real registry imports no torch / diffusers / transformers."""
    code = ("import sys; from studio.api import Studio; from studio.ui.app import create_app; s = Studio(); "
            "create_app(s); s.close(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'onnxruntime', 'music21', "
            "'mediapipe', 'llama_cpp') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STUDIO_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
