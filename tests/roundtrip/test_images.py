"""Images: PNG text chunks before the pixels, UTF-8 intact, A1111 `parameters` that sd-parsers
parses for every image generator, XMP DigitalSourceType read by exiftool, restore after edits."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from generators.base import Output, Result
from studio import embed
from studio.assets import AssetStore, restore
from tests.roundtrip.conftest import BASE, need

pytestmark = pytest.mark.roundtrip
UNICODE = "一匹の猫 in a café — “quoted”"
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _pngs(outputs: dict[str, list[Path]]) -> list[tuple[str, Path]]:
    return [(name, p) for name, paths in outputs.items() for p in paths if p.suffix == ".png"]


def test_every_image_generator_writes_parameters_sd_parsers_reads(outputs) -> None:
    from sd_parsers import ParserManager

    manager = ParserManager()
    seen = set()
    for name, path in _pngs(outputs):
        info = Image.open(path).info  # no .load(): the chunks must come before IDAT
        assert "studio" in info and "parameters" in info, (name, path.name)
        parsed = manager.parse(path)
        assert parsed is not None, (name, info["parameters"])
        sampler = parsed.samplers[0]
        assert sampler.parameters.get("seed") == "5", (name, info["parameters"])
        seen.add(name)
    assert seen == {"breeder", "gan", "sketch", "music", "style", "face"}


def test_unicode_prompt_survives_in_every_reader(tmp_path) -> None:
    import numpy as np
    from sd_parsers import ParserManager

    store = AssetStore(tmp_path / "out")
    image = Image.fromarray(np.zeros((16, 24, 3), np.uint8))
    params = {"prompt": UNICODE, "steps": 4}
    (path,) = store.write(Result(outputs=[Output(".png", image, extra={
        "parameters": f"{UNICODE}\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 9"})]),
        {**BASE, "generator": "image", "params": params, "seed": 9})
    assert Image.open(path).info["parameters"].split("\n")[0] == UNICODE
    parsed = ParserManager().parse(path)
    assert parsed.samplers[0].prompts[0].value == UNICODE
    path.with_name(path.name + ".json").unlink()  # the embedded record alone
    assert restore(path).params["prompt"] == UNICODE
    exif = json.loads(subprocess.run([need("exiftool"), "-j", "-G1", str(path)], capture_output=True,
                                     text=True, check=True).stdout)[0]
    assert exif["PNG:Parameters"].split("\n")[0] == UNICODE
    assert not any(k.endswith(":Warning") for k in exif), exif


def test_exiftool_reads_digital_source_type_and_no_warnings(outputs) -> None:
    exiftool = need("exiftool")
    paths = [str(p) for _, p in _pngs(outputs)]
    rows = json.loads(subprocess.run([exiftool, "-j", "-G1", *paths], capture_output=True, text=True,
                                     check=True).stdout)
    for row in rows:
        assert row["XMP-iptcExt:DigitalSourceType"] == TRAINED, row["SourceFile"]
        assert not any(k.endswith(":Warning") for k in row), row


def test_no_local_paths_in_shared_files(outputs) -> None:
    for name, paths in outputs.items():
        for path in paths:
            data = path.read_bytes()
            for folder in ("/tmp/", "/home/", "/root/", "/work/"):
                assert folder.encode() not in data, (name, path.name, folder)
    style_png = next(p for p in outputs["style"] if p.suffix == ".png")
    record = embed.read_embedded(style_png)
    assert record["params"]["image"].startswith("coffee.png (sha256 ")


def test_restore_after_common_image_edits(outputs, tmp_path) -> None:
    """Re-saved by PIL with its text kept, optimised, and stripped: the first two restore,
    the stripped copy says plainly that it carries no studio record."""
    from PIL.PngImagePlugin import PngInfo

    src = next(p for p in outputs["gan"] if p.suffix == ".png")
    image = Image.open(src)
    info = PngInfo()
    for key, value in image.text.items():
        info.add_itxt(key, value)
    image.save(tmp_path / "resaved.png", pnginfo=info, optimize=True)
    assert restore(tmp_path / "resaved.png").generator == "gan"
    Image.open(src).save(tmp_path / "stripped.png")
    with pytest.raises(Exception, match="no studio provenance in this file"):
        restore(tmp_path / "stripped.png")


def test_local_paths_inside_parameters_text_become_names(tmp_path) -> None:
    """The diffusion generator names a local model folder in its A1111 text; shared files must not."""
    import numpy as np

    store = AssetStore(tmp_path / "out")
    text = ("a fox\nSteps: 2, Sampler: DDIM, CFG scale: 7.5, Seed: 1, Size: 16x16, "
            "Model: /tmp/studio-tiny-sd-dil7d8y2/tiny-sd, Model hash: 2f905f16fe")
    image = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    (path,) = store.write(Result(outputs=[Output(".png", image, extra={"parameters": text})]),
                          {**BASE, "generator": "image", "params": {"model": "/home/ana/models/sd15"}, "seed": 1})
    params = Image.open(path).info["parameters"]
    assert "Model: tiny-sd," in params and "/tmp/" not in params
    assert embed.read_embedded(path)["params"]["model"] == "sd15"
    assert json.loads(path.with_name(path.name + ".json").read_text())["params"]["model"] == "/home/ana/models/sd15"
