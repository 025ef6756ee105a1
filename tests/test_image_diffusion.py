"""Diffusion generator on a tiny random Stable Diffusion pipeline built from configs and saved to a
folder (as diffusers' fast tests do), loaded back by the generator on CPU: text-to-image,
image-to-image and inpainting, seeds, samplers, parameters text, and bad input."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from generators.base import Cancelled, GeneratorUnavailable, InvalidInput, Progress, Rng
from generators.image import SAMPLERS, Diffusion, DiffusionParams

ROOT = Path(__file__).resolve().parents[1]


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def gen() -> Diffusion:
    torch.set_num_threads(1)  # tiny model: threads only add overhead; results must not depend on it
    g = Diffusion.debug()
    g.load(torch.device("cpu"))
    return g


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from skimage import data

    d = tmp_path_factory.mktemp("pics")
    init = d / "chelsea.png"
    Image.fromarray(data.chelsea()).save(init)  # 451x300: resized to width x height
    mask = Image.new("L", (451, 300), 0)
    mask.paste(255, (150, 80, 300, 220))
    mask.save(d / "mask.png")
    Image.new("L", (64, 64), 255).save(d / "mask_small.png")
    return {"init": init, "mask": d / "mask.png", "mask_small": d / "mask_small.png"}


def params(g: Diffusion, **kw: object) -> DiffusionParams:
    base = {"model": g.model, "width": 64, "height": 64, "steps": 2, "prompt": "a cat"}
    return DiffusionParams.from_dict({**base, **kw})  # type: ignore[return-value]


def run(g: Diffusion, seed: int = 7, **kw: object):
    return g.generate(params(g, **kw), rng=Rng(seed), progress=Progress.none())


def test_module_import_is_light() -> None:
    code = ("import sys, generators.image, generators.style, generators.image_io; "
            "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'diffusers', 'onnxruntime', 'gradio') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_models_say_how_to_add_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    from generators.image import DEFAULT_MODEL, EMBEDDED

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    # no model configured = the embedded default; when its folder is gone, say how to get it back
    monkeypatch.setitem(EMBEDDED, DEFAULT_MODEL, tmp_path / "absent")
    with pytest.raises(GeneratorUnavailable, match="embedded image model.*studio train image.*model_index.json"):
        Diffusion().load(torch.device("cpu"))
    assert Diffusion().estimate_bytes() == 0
    with pytest.raises(GeneratorUnavailable, match="not in the local Hugging Face cache.*does not download"):
        Diffusion(model="someone/not-downloaded-model").load(torch.device("cpu"))
    with pytest.raises(GeneratorUnavailable, match="does not exist"):
        Diffusion(model=str(tmp_path / "missing" / "folder")).load(torch.device("cpu"))
    with pytest.raises(GeneratorUnavailable, match="no model_index.json"):
        Diffusion(model=str(tmp_path)).load(torch.device("cpu"))
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(GeneratorUnavailable, match="single file"):
        Diffusion(model=str(weights)).load(torch.device("cpu"))
    with pytest.raises(InvalidInput, match="needs a GPU"):
        Diffusion(model="x", offload="model").load(torch.device("cpu"))


def test_hub_id_loads_from_the_local_cache(gen: Diffusion, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A Hugging Face id resolves through the local cache layout (models--org--name/snapshots)."""
    import shutil

    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-sd"
    shutil.copytree(gen.model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    g = Diffusion(model="tiny-org/tiny-sd")
    assert g.estimate_bytes() > 0
    g.load(torch.device("cpu"))
    assert g.weights_sha256 == gen.weights_sha256
    a = g.generate(params(g), rng=Rng(3), progress=Progress.none())
    b = gen.generate(params(gen), rng=Rng(3), progress=Progress.none())
    assert png_bytes(a.outputs[0].data) == png_bytes(b.outputs[0].data)
    assert "Model: tiny-org/tiny-sd" in a.outputs[0].extra["parameters"]


def test_fp16_variant_only_folder_loads(gen: Diffusion, tmp_path: Path) -> None:
    """A folder holding only `*.fp16.safetensors` files (a partial hub download) still loads."""
    gen._pipe.base.save_pretrained(str(tmp_path / "fp16"), variant="fp16")
    assert not list((tmp_path / "fp16").rglob("diffusion_pytorch_model.safetensors"))
    g = Diffusion(model=str(tmp_path / "fp16"))
    g.load(torch.device("cpu"))
    a = g.generate(params(g), rng=Rng(3), progress=Progress.none())
    b = gen.generate(params(gen), rng=Rng(3), progress=Progress.none())
    assert png_bytes(a.outputs[0].data) == png_bytes(b.outputs[0].data)  # same weights, same image


def test_estimate_bytes_counts_weights_and_offload(gen: Diffusion) -> None:
    weights = sum(p.stat().st_size for p in Path(gen.model).rglob("*.safetensors"))
    full = Diffusion(model=gen.model).estimate_bytes()
    assert full >= weights + 256 * 2**20
    assert Diffusion(model=gen.model, offload="sequential").estimate_bytes() < \
        Diffusion(model=gen.model, offload="model").estimate_bytes() < full


def test_text_to_image_batch_seeds_and_parameters(gen: Diffusion) -> None:
    r = run(gen, seed=7, batch=3, negative_prompt="blurry, dark")
    images = [o for o in r.outputs if o.role == "image"]
    grids = [o for o in r.outputs if o.role == "grid"]
    assert len(images) == 3 and len(grids) == 1
    assert all(o.data.size == (64, 64) for o in images)
    assert grids[0].data.size == (128, 128)  # 2x2 grid, one cell empty
    assert r.data["seeds"] == [7, 8, 9] and r.data["mode"] == "text-to-image"
    text = images[1].extra["parameters"]
    assert text.startswith("a cat\nNegative prompt: blurry, dark\nSteps: 2, Sampler: DDIM, CFG scale: 7.5, "
                           "Seed: 8, Size: 64x64, Model: ")
    assert f"Model hash: {gen.weights_sha256[:10]}" in text
    # Same seed -> same bytes; each image of a batch is reproducible alone from its own seed.
    again = run(gen, seed=7, batch=3, negative_prompt="blurry, dark")
    assert [png_bytes(o.data) for o in again.outputs] == [png_bytes(o.data) for o in r.outputs]
    alone = run(gen, seed=8, negative_prompt="blurry, dark")
    assert png_bytes(alone.outputs[0].data) == png_bytes(images[1].data)
    assert png_bytes(images[0].data) != png_bytes(images[1].data)


def test_image_to_image_strength_and_reproducibility(gen: Diffusion, pictures: dict[str, Path]) -> None:
    a = run(gen, init_image=str(pictures["init"]), strength=0.5, steps=4, scheduler="euler_a")
    b = run(gen, init_image=str(pictures["init"]), strength=0.5, steps=4, scheduler="euler_a")
    c = run(gen, init_image=str(pictures["init"]), strength=1.0, steps=4, scheduler="euler_a")
    assert a.data["mode"] == "image-to-image" and a.data["steps_run"] == 2 and c.data["steps_run"] == 4
    assert a.outputs[0].data.size == (64, 64)
    assert png_bytes(a.outputs[0].data) == png_bytes(b.outputs[0].data)
    assert png_bytes(a.outputs[0].data) != png_bytes(c.outputs[0].data)
    assert "Denoising strength: 0.5" in a.outputs[0].extra["parameters"]
    assert "Sampler: Euler a" in a.outputs[0].extra["parameters"]
    assert len(a.parents) == 1 and len(a.parents[0]) == 64


def test_inpainting_and_mask_checks(gen: Diffusion, pictures: dict[str, Path]) -> None:
    kw = dict(init_image=str(pictures["init"]), mask=str(pictures["mask"]), strength=1.0, scheduler="dpm++")
    a = run(gen, **kw)
    b = run(gen, **kw)
    assert a.data["mode"] == "inpaint" and a.outputs[0].data.size == (64, 64)
    assert png_bytes(a.outputs[0].data) == png_bytes(b.outputs[0].data)
    t2i = run(gen)
    assert png_bytes(a.outputs[0].data) != png_bytes(t2i.outputs[0].data)
    with pytest.raises(InvalidInput, match="mask is 64x64 pixels but the image is 451x300"):
        run(gen, init_image=str(pictures["init"]), mask=str(pictures["mask_small"]))
    with pytest.raises(InvalidInput, match="needs a mask"):
        params(gen, init_image=str(pictures["init"]), mode="inpaint")
    with pytest.raises(InvalidInput, match="needs a starting picture"):
        params(gen, mask=str(pictures["mask"]))


def test_dedicated_inpainting_model(tmp_path: Path, pictures: dict[str, Path]) -> None:
    from generators.diffusion_tiny import build_tiny_sd

    build_tiny_sd(tmp_path / "tiny-inpaint", inpainting=True)
    g = Diffusion(model=str(tmp_path / "tiny-inpaint"))
    g.load(torch.device("cpu"))
    kw = dict(init_image=str(pictures["init"]), mask=str(pictures["mask"]))
    a, b = run(g, **kw), run(g, **kw)
    assert a.data["mode"] == "inpaint" and png_bytes(a.outputs[0].data) == png_bytes(b.outputs[0].data)
    with pytest.raises(InvalidInput, match="dedicated inpainting model"):
        run(g)


@pytest.mark.parametrize("bad, match", [
    ({"steps": 100000}, "steps must be between 1 and 150"),
    ({"steps": 0}, "steps must be between"),
    ({"width": 100}, "multiple of 8"),
    ({"width": 100000}, "width must be between"),
    ({"width": 2048, "height": 2048}, "too large"),
    ({"guidance": float("nan")}, "finite"),
    ({"scheduler": "warp-drive"}, "scheduler must be one of"),
    ({"prompt": ""}, "write a prompt"),
    ({"batch": 50}, "batch must be between"),
    ({"negative_prompt": "blurry", "guidance": 1.0}, "only has an effect with guidance above 1"),
    ({"mode": "text-to-image", "init_image": "x.png"}, "does not use a starting picture"),
    ({"init_image": "x.png", "strength": 0.0, "steps": 10}, "no denoising step"),
    ({"colour": "red"}, "unknown parameter"),
])
def test_bad_parameters_are_refused(gen: Diffusion, bad: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        params(gen, **bad)


def test_bad_images_are_refused_before_model_work(gen: Diffusion, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    calls: list[float] = []
    progress = Progress(sink=lambda e: calls.append(e.fraction))
    for path, match in ((bomb, "decompression bomb"), (text, "not an image")):
        with pytest.raises(InvalidInput, match=match):
            gen.generate(params(gen, init_image=str(path)), rng=Rng(1), progress=progress)
    assert calls == []  # refused before any step ran
    with pytest.raises(InvalidInput, match="tokens long but this model reads at most 77"):
        run(gen, prompt="castle " * 100)


def test_every_sampler_runs(gen: Diffusion) -> None:
    from generators.diffusion_pipeline import SCHEDULERS

    assert set(SAMPLERS) == {"default", *SCHEDULERS}
    seen = set()
    for name in SAMPLERS:
        r = run(gen, scheduler=name, steps=2, width=64, height=64)
        seen.add(png_bytes(r.outputs[0].data))
    assert len(seen) >= 6  # samplers really differ


def test_progress_and_cancel(gen: Diffusion) -> None:
    fractions: list[float] = []
    run_progress = Progress(sink=lambda e: fractions.append(e.fraction))
    gen.generate(params(gen, steps=3), rng=Rng(1), progress=run_progress)
    assert fractions == sorted(fractions) and fractions[-1] > 0.9 and len(fractions) >= 5
    cancel = threading.Event()

    def sink(event) -> None:
        if "step 1/" in event.message:
            cancel.set()
    with pytest.raises(Cancelled):
        gen.generate(params(gen, steps=5), rng=Rng(1), progress=Progress(sink=sink, cancel=cancel))


def test_through_the_studio_pngs_carry_parameters(gen: Diffusion, settings) -> None:
    """End to end: each image and the grid are PNGs with the A1111 "parameters" text chunk."""
    from studio.api import Studio

    with Studio(settings) as studio:  # conftest's studio in a temp home
        result = studio.generate("image", {"model": gen.model, "prompt": "a red fox", "width": 64,
                                           "height": 64, "steps": 2, "batch": 2}, seed=11)
    texts = []
    for path in result.assets:
        with Image.open(path) as img:
            texts.append(img.text["parameters"])
    assert len(texts) == 3  # two images and the grid
    assert texts[0].startswith("a red fox\nSteps: 2, Sampler: DDIM, CFG scale: 7.5, Seed: 11, Size: 64x64")
    assert "Seed: 12," in texts[1] and "Batch size: 2" in texts[2]
