"""C2PA Content Credentials on request (`studio sign`): c2pa-python reads the manifest back,
exiftool sees the JUMBF store, and the studio's own record still restores from the signed copy."""
from __future__ import annotations

import json
import subprocess

import pytest

from generators.base import InvalidInput
from studio.assets import restore
from tests.roundtrip.conftest import need

pytest.importorskip("c2pa")
pytestmark = pytest.mark.roundtrip


def _actions(store: dict) -> list[dict]:
    active = store["manifests"][store["active_manifest"]]
    return [a for assertion in active["assertions"] if assertion["label"].startswith("c2pa.actions")
            for a in assertion["data"]["actions"]]


@pytest.mark.parametrize("name,suffix", [("gan", ".png"), ("face", ".mp4")])
def test_signed_copy_carries_c2pa_and_still_restores(outputs, tmp_path, name, suffix) -> None:
    from studio.c2pa_sign import DIGITAL_SOURCE_TYPE, read_manifest, sign_copy

    src = next(p for p in outputs[name] if p.suffix == suffix)
    signed = sign_copy(src, tmp_path / "identity")
    assert signed.name.endswith(f".c2pa{suffix}") and signed.parent == src.parent
    store = read_manifest(signed)
    (created,) = [a for a in _actions(store) if a["action"] == "c2pa.created"]
    assert created["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    codes = {s["code"] for s in store.get("validation_status", [])}
    assert codes <= {"signingCredential.untrusted"}, codes  # only: a local signer no one trusts yet
    row = json.loads(subprocess.run([need("exiftool"), "-j", "-G1", str(signed)], capture_output=True,
                                    text=True, check=True).stdout)[0]
    if suffix == ".png":  # Debian 12's exiftool (12.57) parses JUMBF in PNG, not yet in MP4
        assert row.get("JUMBF:JUMDLabel") == "c2pa", row
    assert row["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE  # our XMP survives signing
    assert restore(signed).generator == name
    signed.unlink()


def test_sign_refuses_what_the_studio_did_not_make(tmp_path) -> None:
    from PIL import Image

    from studio.c2pa_sign import sign_copy

    Image.new("RGB", (4, 4)).save(tmp_path / "mine.png")
    with pytest.raises(InvalidInput, match="no studio provenance"):
        sign_copy(tmp_path / "mine.png", tmp_path / "identity")
    with pytest.raises(InvalidInput, match=".png or .mp4"):
        sign_copy(tmp_path / "x.gif", tmp_path / "identity")
