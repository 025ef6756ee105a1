"""Breaks 7 and 8 of issue 12: identity, visibility, and requests from other sites and names."""
from __future__ import annotations

import json

import httpx
import pytest

from tests.security.raw import Browser


def _make_png(browser: Browser, seed: str) -> None:
    fn = browser.fn_index("pixels-run")
    msg = browser.call(fn, browser.inputs_for(fn, **{"pixels-seed": seed, "pixels-size": 8}))
    assert msg["success"], msg


def test_each_browser_gets_an_unguessable_httponly_cookie(app) -> None:
    with httpx.Client(base_url=app.url, timeout=30) as http:
        r = http.get("/config")
        cookie = r.headers.get("set-cookie", "")
        assert cookie.startswith("studio_browser=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        token = cookie.split("=", 1)[1].split(";", 1)[0]
        assert len(token) >= 40
        assert "set-cookie" not in http.get("/config").headers  # kept, not re-minted


def test_outputs_are_private_to_the_browser_that_made_them(app) -> None:
    a, b = Browser(app.url), Browser(app.url)
    try:
        _make_png(a, "41")
        records = [r for r in app.studio.assets.records() if r.get("seed") == 41]
        assert records and records[-1]["owner"].startswith("browser:")
        search = b.fn_index("gallery-search")
        theirs = b.call(search, b.inputs_for(search, **{"gallery-seed": "41"}))
        assert theirs["success"] and "0 job(s)" in json.dumps(theirs["output"])
        mine = a.call(search, a.inputs_for(search, **{"gallery-seed": "41"}))
        assert mine["success"] and "0 job(s)" not in json.dumps(mine["output"])
    finally:
        a.close()
        b.close()


def test_served_files_name_no_user_and_index_and_sidecars_are_not_served(app, browser) -> None:
    made = app.studio.generate("pixels", {"size": 8}, seed=5, user="browser:someone", origin="remote")
    png = made.assets[0]
    r = browser.http.get(f"/gradio_api/file={png}")
    assert r.status_code == 200 and b"browser:someone" not in r.content and b'"user"' not in r.content
    for hidden in (f"{png}.json", str(app.home / "outputs" / "index.jsonl")):
        r = browser.http.get(f"/gradio_api/file={hidden}")
        assert r.status_code in (403, 404) and b"browser:someone" not in r.content


def test_a_reused_session_hash_cannot_read_or_cancel_another_browsers_events(app) -> None:
    a, b = Browser(app.url), Browser(app.url)
    try:
        fn = a.fn_index("echo-run")
        a.join(fn, a.inputs_for(fn, **{"echo-prompt": "mine", "echo-seed": "1"}))
        b.session_hash = a.session_hash  # harvested from the page or a log
        r = b.http.get("/gradio_api/queue/data", params={"session_hash": a.session_hash})
        assert r.status_code == 403
        r = b.http.post("/gradio_api/cancel", json={"session_hash": a.session_hash, "fn_index": fn,
                                                    "event_id": "x"})
        assert r.status_code == 403
        done = [m for m in a.messages() if m.get("msg") == "process_completed"]
        assert done and done[0]["success"]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("headers,status", [
    ({"Host": "evil.example"}, 421),                                # DNS rebinding
    ({"Host": "evil.example:7860"}, 421),
    ({"Origin": "http://localhost:9999"}, 403),                     # another local page
    ({"Origin": "https://evil.example"}, 403),
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Origin": "null"}, 403),
])
def test_other_hosts_and_origins_are_refused(app, headers, status) -> None:
    with httpx.Client(base_url=app.url, timeout=30) as http:
        r = http.get("/config", headers=headers)
        assert r.status_code == status
        assert b"components" not in r.content  # the refusal only
        up = http.post("/gradio_api/upload", headers=headers, files={"files": ("a.txt", b"x")})
        assert up.status_code == status
        for refusal in (r, up):  # no CORS grant rides on a refusal (Gradio's CORS layer added
            # one for any localhost page while it sat in front of the guard)
            assert not [k for k in refusal.headers if k.lower().startswith("access-control-")]


@pytest.mark.parametrize("origin", ["http://localhost:9999", "https://evil.example", "null"])
def test_a_foreign_pages_cors_preflight_is_refused_not_granted(app, origin) -> None:
    with httpx.Client(base_url=app.url, timeout=30) as http:
        r = http.options("/gradio_api/upload", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert r.status_code == 403
        assert not [k for k in r.headers if k.lower().startswith("access-control-")]


def test_same_origin_and_plain_clients_pass(app) -> None:
    host = app.url.split("://", 1)[1]
    with httpx.Client(base_url=app.url, timeout=30) as http:
        assert http.get("/config", headers={"Origin": f"http://{host}"}).status_code == 200
        assert http.post("/gradio_api/upload", files={"files": ("a.txt", b"x")}).status_code == 200


def test_one_request_cannot_carry_more_than_the_upload_cap(app) -> None:
    part = b"x" * (4 << 20)  # each under the 5 MB per-file cap; 12 MB together
    with httpx.Client(base_url=app.url, timeout=60) as http:
        r = http.post("/gradio_api/upload", files=[("files", (f"{i}.bin", part)) for i in range(3)])
        assert r.status_code == 413


def test_login_attempts_are_limited() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from studio.ui.guard import StudioGuard

    async def login(request):
        form = await request.form()
        ok = form.get("password") == "right"
        return JSONResponse({"success": ok}, status_code=200 if ok else 400)

    app = Starlette(routes=[Route("/login", login, methods=["POST"])],
                    middleware=[Middleware(StudioGuard, login_attempts=3)])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        codes = [client.post("/login", data={"username": "a", "password": "wrong"}).status_code for _ in range(5)]
        assert codes == [400, 400, 400, 429, 429]
        assert client.post("/login", data={"username": "a", "password": "right"}).status_code == 429


def test_uploads_are_cleaned_by_age_and_total_size(tmp_path) -> None:
    import os
    import time

    from studio.uploads import sweep_uploads

    now = time.time()
    for i, (age_h, size) in enumerate([(48, 10), (30, 10), (3, 400), (2, 400), (1, 400)]):
        folder = tmp_path / f"h{i}"
        folder.mkdir()
        path = folder / f"f{i}.png"
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_h * 3600, now - age_h * 3600))
    counts = sweep_uploads(tmp_path, max_age_s=24 * 3600, max_total_bytes=900, now=now)
    left = sorted(p.name for p in tmp_path.rglob("*.png"))
    assert left == ["f3.png", "f4.png"]  # the two old ones by age, then the oldest by size
    assert counts == {"removed": 3, "freed_bytes": 420, "kept_bytes": 800}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h3", "h4"]  # emptied folders gone
    # The page's own static copies (style swatches) are kept however old, uploads are not.
    swatch = tmp_path / "h3" / "swatch.webp"
    swatch.write_bytes(b"w")
    os.utime(swatch, (now - 99 * 3600, now - 99 * 3600))
    sweep_uploads(tmp_path, max_age_s=24 * 3600, max_total_bytes=900, now=now, keep=frozenset({str(swatch.resolve())}))
    assert swatch.exists()


def test_the_launched_studio_sweeps_its_upload_folder(app, browser) -> None:
    import os
    import time
    from pathlib import Path

    sweeper = app.demo.studio_upload_sweeper
    assert sweeper.max_age_s == 24 * 3600 and sweeper.max_total_bytes == 2048 << 20  # the settings
    old = Path(browser.upload("old.txt", b"left here two days ago"))
    fresh = Path(browser.upload("fresh.txt", b"just now"))
    two_days = time.time() - 48 * 3600
    os.utime(old, (two_days, two_days))
    assert str(old.resolve()) not in sweeper.keep  # only the page's own static copies are kept
    sweeper.sweep()
    assert not old.exists() and fresh.exists()


def test_rating_someone_elses_output_is_refused(app, client) -> None:
    from gradio_client.exceptions import AppError

    theirs = app.studio.generate("pixels", {"size": 8}, seed=9, user="browser:someone-else", origin="remote")
    with pytest.raises(AppError, match="not one of your outputs"):
        client.predict(str(theirs.assets[0]), 5, None, "", "", api_name="/rate")


def test_status_shown_to_every_browser_names_no_user(app) -> None:
    app.studio.generate("pixels", {"size": 8}, seed=10, user="browser:private-person", origin="remote")
    status = app.studio.status()
    assert status["recent_jobs"] and "browser:private-person" not in json.dumps(status)
