"""Breaks 1, 2, 3, 5 and 6 of issue 12, replayed against the running studio over loopback."""
from __future__ import annotations

import io
import json
import resource
import zlib
import struct
from pathlib import Path

import pytest

from generators.base import InvalidInput

FILE_META = {"_type": "gradio.FileData"}
SECRET_RGB = bytes([201, 13, 77])


def _crafted_png(params: dict, generator: str = "pixels") -> bytes:
    """A PNG whose embedded provenance names whatever its author likes."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("studio", json.dumps({"format": "studio-provenance/1", "generator": generator,
                                        "params": params, "seed": 1}))
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 0)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _png_bomb(side: int = 5000) -> bytes:
    """A real RGBA PNG of side x side transparent pixels (100 MB decoded at 5000, 25 MP) in ~100 KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * side)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def _no_secret(msg: dict, secret: Path) -> None:
    """Nothing of the target came back: no copy served (a file URL), none of its bytes."""
    text = json.dumps(msg)
    assert "gradio_api/file=" not in text
    assert SECRET_RGB.hex() not in text and secret.read_bytes()[-64:].hex() not in text


# -- break 1: "Run it again" on a crafted provenance ------------------------------------------
def test_gallery_run_again_refuses_a_crafted_provenance_path(app, browser, secret) -> None:
    crafted = browser.upload("crafted.png", _crafted_png({"image": str(secret), "size": 8}))
    dropped = browser.call(browser.fn_index("gallery-drop", "change"),
                           [{"path": crafted, "orig_name": "crafted.png", "meta": FILE_META}])
    assert dropped["success"], dropped
    before = len(list(app.studio.assets.records()))
    rerun = browser.call(browser.fn_index("gallery-rerun"), [None])
    # refused in place (the re-run's progress and error note say why; no job starts)
    assert "must be a file uploaded to this studio" in json.dumps(rerun["output"])
    _no_secret(rerun, secret)
    assert len(list(app.studio.assets.records())) == before  # nothing was made from the secret
    opened = browser.call(browser.fn_index("gallery-open"), [None])  # "Open in its tab" fills the form
    assert opened["success"] and str(secret) not in json.dumps(opened["output"])  # without the path


def test_restore_and_rerun_from_python_pass_the_gate_too(app, secret, tmp_path) -> None:
    crafted = tmp_path / "crafted.png"
    crafted.write_bytes(_crafted_png({"image": str(secret), "size": 8}))
    with pytest.raises(InvalidInput, match="must be a file uploaded"):
        app.studio.rerun(crafted)  # remote by default: a file's provenance is not the caller's word


# -- break 2: a server path as image data to a UI run event ------------------------------------
@pytest.mark.parametrize("payload", [
    lambda s: {"path": str(s)},                                   # no meta: skips Gradio's own check
    lambda s: {"path": str(s), "meta": FILE_META},                # with meta: Gradio refuses it
    lambda s: {"path": "/etc/passwd", "orig_name": "x.png"},
    lambda s: {"url": "data:image/png;base64,iVBORw0KGgo=", "path": None},
])
def test_ui_image_field_refuses_server_paths(app, browser, secret, payload) -> None:
    fn = browser.fn_index("pixels-run")
    data = browser.inputs_for(fn, **{"pixels-image": payload(secret), "pixels-seed": "3"})
    before = len(list(app.studio.assets.records()))
    msg = browser.call(fn, data)
    assert not msg["success"], msg
    _no_secret(msg, secret)
    assert len(list(app.studio.assets.records())) == before


def test_ui_image_field_still_takes_a_real_upload(app, browser) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (10, 200, 30, 128)).save(buf, "PNG")
    uploaded = browser.upload("mine.png", buf.getvalue())
    fn = browser.fn_index("pixels-run")
    data = browser.inputs_for(fn, **{"pixels-image": {"path": uploaded, "orig_name": "mine.png",
                                                      "meta": FILE_META}, "pixels-seed": "3"})
    msg = browser.call(fn, data)
    assert msg["success"], msg


def test_api_refuses_paths_and_symlinks_out(app, client, secret) -> None:
    from gradio_client.exceptions import AppError

    link = app.home / "outputs" / "link-out.png"
    link.symlink_to(secret)
    for trick in (str(secret), str(link), f"{app.home}/outputs/../../{secret.parent.name}/private.png",
                  "/proc/self/environ"):
        with pytest.raises(AppError, match="must be a file uploaded"):
            client.predict(json.dumps({"image": trick, "size": 8}), 1, api_name="/generate_pixels")


# -- break 3: load-time options --------------------------------------------------------------
def test_load_options_are_limited_to_what_the_studio_lists(app, client) -> None:
    from gradio_client.exceptions import AppError

    for bad in ("/etc/shadow", "/etc", "some-org/some-model", "../../etc/passwd"):
        with pytest.raises(AppError, match="not a model this studio offers"):
            client.predict(json.dumps({"weights": bad}), 1, api_name="/generate_picky")
    ok = client.predict(json.dumps({"weights": str(app.models / "good.bin")}), 1, api_name="/generate_picky")
    assert ok["assets"]
    for bad in ("/etc/shadow", "some-org/some-model"):  # the typed API passes the same gate
        with pytest.raises(AppError, match="not a model this studio offers"):
            client.predict(weights=bad, seed=1, api_name="/run_picky")


def test_a_bad_listed_model_fails_only_its_own_job(app, client) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="could not load the model this request asked for"):
        client.predict(json.dumps({"weights": "broken.bin"}), 1, api_name="/generate_picky")
    picky = {g["name"]: g for g in client.predict(api_name="/generators")}["picky"]
    assert picky["available"] is True
    assert client.predict(json.dumps({}), 2, api_name="/generate_picky")["assets"]


def test_local_callers_keep_their_own_files(app, tmp_path) -> None:
    from PIL import Image

    mine = tmp_path / "mine.png"
    Image.new("RGB", (8, 8), "white").save(mine)
    assert app.studio.generate("pixels", {"image": str(mine), "size": 8}, seed=1).assets  # origin="local"


# -- break 5: parsers bounded by size before parsing -------------------------------------------
def test_abc_primer_bomb_is_refused_before_parsing(app) -> None:
    abc = "X:1\nM:4/4\nL:1/8\nK:C\n" + "z64" * 5000 + "\n"
    assert len(abc) < 20_000  # under the field's length cap: only the bar count stops it
    with pytest.raises(InvalidInput, match="longer than 128 bars"):
        app.studio.submit("music", {"action": "continue", "primer_abc": abc}, origin="remote")
    with pytest.raises(InvalidInput, match="bar lines"):
        app.studio.submit("music", {"action": "continue", "primer_abc": "X:1\nK:C\n" + "C|" * 400})
    fine = "X:1\nM:4/4\nL:1/8\nK:G\n" + "GABc dedB|" * 8 + "\n"
    from studio.gate import check_abc_size

    check_abc_size(fine)  # an ordinary tune passes


# -- break 6: decompression bombs through the UI route -----------------------------------------
@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _png_bomb()


def test_png_bomb_upload_is_refused_from_its_header(app, browser, bomb) -> None:
    assert len(bomb) < 1_000_000
    uploaded = browser.upload("bomb.png", bomb)
    fn = browser.fn_index("pixels-run")
    data = browser.inputs_for(fn, **{"pixels-image": {"path": uploaded, "orig_name": "bomb.png",
                                                      "meta": FILE_META}, "pixels-seed": "1"})
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    msg = browser.call(fn, data)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    assert not msg["success"] and "megapixels" in json.dumps(msg["output"])
    assert grew < 64 << 20  # decoding it would take 100 MB (5000 x 5000 RGBA)


def test_png_bomb_as_a_mask_layer_is_refused_from_its_header(app, browser, bomb) -> None:
    uploaded = browser.upload("layer.png", bomb)
    fn = browser.fn_index("masker-run")
    layer = {"path": uploaded, "orig_name": "layer.png", "meta": FILE_META}
    data = browser.inputs_for(fn, **{"masker-mask": {"background": None, "layers": [layer], "composite": None},
                                     "masker-seed": "1"})
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    msg = browser.call(fn, data)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    assert not msg["success"] and "megapixels" in json.dumps(msg["output"])
    assert grew < 64 << 20
    server_path = {"path": "/etc/passwd", "meta": FILE_META}
    data = browser.inputs_for(fn, **{"masker-mask": {"background": server_path, "layers": [], "composite": None}})
    assert not browser.call(fn, data)["success"]
