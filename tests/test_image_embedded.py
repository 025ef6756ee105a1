"""The embedded text-to-image model (assets/image/kanji-glyphs-64, trained by training/image):
a standard diffusers folder that `DiffusionPipeline.from_pretrained` loads by itself, and the
image generator's default, run through the same code as any creator's model (real weights)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generators.base import InvalidInput, Progress, Rng
from generators.image import DEFAULT_MODEL, EMBEDDED, Diffusion, DiffusionParams

FOLDER = EMBEDDED[DEFAULT_MODEL]
PROMPT = "a character meaning 'water, river'"


@pytest.fixture(scope="module")
def gen() -> Diffusion:
    torch.set_num_threads(1)
    g = Diffusion()  # no model configured: the embedded default
    g.load(torch.device("cpu"))
    return g


def run(g: Diffusion, seed: int = 5, **kw: object):
    p = DiffusionParams.from_dict({"prompt": PROMPT, "steps": 4, **kw})
    return g.generate(p, rng=Rng(seed), progress=Progress.none())


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_folder_is_a_standard_diffusers_pipeline_under_30_mb() -> None:
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(FOLDER), dtype=torch.float32, local_files_only=True)
    assert type(pipe).__name__ == "IFPipeline"  # diffusers' own class, named by model_index.json
    assert type(pipe.text_encoder).__name__ == "BertModel" and pipe.text_encoder.config.hidden_size == 384
    assert pipe.unet.config.cross_attention_dim == 384 and pipe.unet.config.sample_size == 64
    size = sum(p.stat().st_size for p in FOLDER.rglob("*") if p.is_file())
    assert size <= 30 * 2**20, f"{size / 2**20:.1f} MB committed"


def test_default_draws_a_64px_glyph_from_a_prompt(gen: Diffusion) -> None:
    r = run(gen)
    img = r.outputs[0].data
    assert img.size == (64, 64) and r.data["model"] == DEFAULT_MODEL and r.data["size"] == [64, 64]
    assert gen.weights_sha256 and f"Model: {DEFAULT_MODEL}" in r.outputs[0].extra["parameters"]
    gray = np.asarray(img.convert("L"), dtype=np.float32)
    assert gray.std() > 5  # a drawing, not a blank (how good it is: benchmarks/bench_image.py)
    assert png(run(gen).outputs[0].data) == png(img)  # same seed, same bytes
    assert png(run(gen, seed=6).outputs[0].data) != png(img)
    # the PNG the studio writes decodes back to the same picture
    assert Image.open(io.BytesIO(png(img))).size == (64, 64)


def test_image_to_image_and_samplers_go_through_the_same_path(gen: Diffusion, tmp_path: Path) -> None:
    start = tmp_path / "start.png"
    run(gen).outputs[0].data.resize((100, 100)).save(start)
    r = run(gen, init_image=str(start), strength=0.5)
    assert r.data["mode"] == "image-to-image" and r.outputs[0].data.size == (64, 64)
    e = run(gen, scheduler="euler", steps=3)
    assert e.data["sampler"] == "Euler" and e.outputs[0].data.size == (64, 64)


def test_bad_input_is_refused_before_any_work(gen: Diffusion) -> None:
    with pytest.raises(InvalidInput, match="tokens long but this model reads at most 77"):
        run(gen, prompt="water " * 100)
    with pytest.raises(InvalidInput, match="at least 64"):
        DiffusionParams.from_dict({"prompt": "x", "width": 32, "height": 32}).validate()
    with pytest.raises(InvalidInput, match="set both width and height"):
        DiffusionParams.from_dict({"prompt": "x", "width": 64}).validate()


def test_remote_callers_may_name_the_embedded_model() -> None:
    from studio.gate import embedded_names
    from generators.image import Diffusion as D

    assert DEFAULT_MODEL in embedded_names(D)
