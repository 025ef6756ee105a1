"""Glyph GAN: training moves the losses, seeds reproduce, truncation, interpolation, bad input."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generators.base import GeneratorUnavailable, InvalidInput, Progress, Rng
from generators.gan import DEFAULT_WEIGHTS, GANParams, GlyphGAN, interpolate
from generators.gan_model import (DCDiscriminator, DCGenerator, GANConfig, init_weights, load_generator,
                                  save_generator)


@pytest.fixture(scope="module")
def gan() -> GlyphGAN:
    g = GlyphGAN.debug()
    g.load(torch.device("cpu"))
    return g


def run(g: GlyphGAN, seed: int = 1, **params):
    return g.generate(GANParams.from_dict(params), rng=Rng(seed), progress=Progress.none())


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_import_is_light() -> None:
    code = "import sys, generators.gan\nprint([m for m in ('torch', 'numpy', 'gradio', 'PIL') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture()
def one_thread():
    """Tiny convolutions: one thread avoids sync overhead on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_loss_moves_in_a_few_steps(one_thread: None) -> None:
    from training.gan.data import load_glyphs
    from training.gan.train import batches, train_step

    glyphs = load_glyphs(size=16, stroke_width=6.0, limit=24, use_cache=False)
    assert glyphs.train.shape[1:] == (16, 16) and 0.02 < glyphs.train.mean() < 0.5  # real ink on paper
    gen = torch.Generator().manual_seed(0)
    cfg = GANConfig(z_dim=8, width=8, image_size=16)
    G, D = DCGenerator(cfg), DCDiscriminator(cfg)
    init_weights(G, gen)
    init_weights(D, gen)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    opt_g = torch.optim.Adam(G.parameters(), 2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.5, 0.999))
    it = batches(glyphs.train, 12, gen)
    losses = [train_step(G, D, opt_g, opt_d, next(it), gen) for _ in range(8)]
    assert all(np.isfinite([v for row in losses for v in row.values()]))
    assert losses[-1]["loss_d"] < losses[0]["loss_d"]  # D learns to tell glyphs from noise
    assert losses[-1]["loss_g"] > losses[0]["loss_g"]  # ... so G's loss rises meanwhile
    assert any(not torch.equal(before[k], v) for k, v in G.state_dict().items())


def test_sample_grid_and_seeds(gan: GlyphGAN) -> None:
    r = run(gan, seed=5, count=6, scale=2)
    grid, *imgs = r.outputs
    assert grid.role == "grid" and len(imgs) == 6
    assert all(o.data.size == (32, 32) and o.suffix == ".png" for o in imgs)
    assert grid.data.size == (6 * 32, 32)
    assert len(r.data["latents"]) == 6 and len(r.data["latents"][0]) == 8
    assert "Seed: 5" in imgs[0].extra["parameters"] and "Size: 32x32" in imgs[0].extra["parameters"]
    again = run(gan, seed=5, count=6, scale=2)
    assert [png(o.data) for o in r.outputs] == [png(o.data) for o in again.outputs]
    other = run(gan, seed=6, count=6, scale=2)
    assert r.data["latents"] != other.data["latents"]
    assert len({png(o.data) for o in imgs}) == 6  # samples differ


def test_count_one_has_no_grid(gan: GlyphGAN) -> None:
    r = run(gan, count=1)
    assert [o.role for o in r.outputs] == ["image"]


def test_truncation_bounds_latents(gan: GlyphGAN) -> None:
    r = run(gan, count=64, truncation=0.5)
    z = np.array(r.data["latents"])
    assert np.abs(z).max() <= 0.5 and z.std() > 0.1
    free = np.array(run(gan, count=64).data["latents"])
    assert np.abs(free).max() > 1.5
    assert "Truncation: 0.5" in r.outputs[0].extra["parameters"]


def test_interpolation_strip_and_gif(gan: GlyphGAN) -> None:
    s = run(gan, seed=3, count=2)
    a, b = s.data["latents"]
    r = run(gan, mode="interpolate", latent_a=a, latent_b=b, frames=5, scale=1, fps=10)
    strip, gif = r.outputs
    assert strip.role == "strip" and strip.data.size == (5 * 16, 16)
    assert gif.suffix == ".gif" and gif.role == "animation"
    anim = Image.open(io.BytesIO(gif.data))
    assert anim.n_frames == 8 and anim.info["duration"] == 100 and anim.info["loop"] == 0  # 5 + 3 back
    # the end frames are exactly samples A and B
    tiles = np.asarray(strip.data)[..., 0]  # the strip is RGB, the frames grayscale
    singles = run(gan, seed=3, count=2, scale=1).outputs[1:]
    assert np.array_equal(tiles[:, :16], np.asarray(singles[0].data))
    assert np.array_equal(tiles[:, -16:], np.asarray(singles[1].data))
    assert r.parents == s.data["latent_ids"] and r.data["t"][0] == 0.0 and r.data["t"][-1] == 1.0
    no_loop = run(gan, mode="interpolate", latent_a=a, latent_b=b, frames=5, pingpong=False)
    assert Image.open(io.BytesIO(no_loop.outputs[1].data)).n_frames == 5


def test_mix_and_slerp(gan: GlyphGAN) -> None:
    s = run(gan, seed=3, count=2, scale=1)
    a, b = s.data["latents"]
    at0 = run(gan, mode="mix", latent_a=a, latent_b=b, mix=0.0, scale=1)
    assert np.array_equal(np.asarray(at0.outputs[0].data), np.asarray(s.outputs[1].data))
    mid = run(gan, mode="mix", latent_a=a, latent_b=b, mix=0.5)
    assert mid.parents == s.data["latent_ids"] and len(mid.outputs) == 1
    ta, tb = torch.tensor(a), torch.tensor(b)
    m = interpolate(ta, tb, 0.5)
    assert abs(float(m.norm()) - 0.5 * float(ta.norm() + tb.norm())) < 0.05 * float(ta.norm())  # on the shell
    assert float(interpolate(ta, tb, 0.5, "lerp").norm()) < float(m.norm())


@pytest.mark.parametrize("params, match", [
    ({"count": 0}, "count"),
    ({"count": 1000}, "count"),
    ({"truncation": 0.01}, "truncation"),
    ({"truncation": -1}, "truncation"),
    ({"mode": "dream"}, "mode must be one of"),
    ({"latent_a": "[1, 2"}, "not a valid JSON list"),
    ({"latent_a": [0.0] * 7 + [50.0]}, "beyond"),
    ({"latent_a": ["x"]}, "must be a number"),
    ({"frames": 1}, "frames"),
    ({"scale": 1000}, "scale"),
    ({"fps": 0}, "fps"),
])
def test_bad_params(params: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        GANParams.from_dict(params)


@pytest.mark.parametrize("params", [{"mode": "interpolate", "frames": 80, "scale": 32},
                                    {"mode": "interpolate", "frames": 120, "scale": 32}])
def test_absurd_output_sizes(gan: GlyphGAN, params: dict) -> None:
    with pytest.raises(InvalidInput, match="megapixels|longest side"):
        run(gan, **params)


def test_wrong_latent_length(gan: GlyphGAN) -> None:
    with pytest.raises(InvalidInput, match="has 3 numbers but this model's latents have 8"):
        run(gan, mode="mix", latent_a=[0.1, 0.2, 0.3])


def test_weights_round_trip_and_bad_weights(tmp_path: Path) -> None:
    cfg = GANConfig(z_dim=8, width=4, image_size=8)
    G = DCGenerator(cfg)
    init_weights(G, torch.Generator().manual_seed(1))
    G.eval()
    path = tmp_path / "generator.safetensors"
    save_generator(G, path)
    back = load_generator(path)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(G(z), back(z))
    from_folder = GlyphGAN(weights=str(tmp_path))
    from_folder.load("cpu")
    assert from_folder.weights_sha256 and from_folder.model.cfg == cfg
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(GeneratorUnavailable, match="could not load"):
        GlyphGAN(weights=str(tmp_path / "junk.safetensors")).load("cpu")
    with pytest.raises(GeneratorUnavailable, match="no GAN weights"):
        GlyphGAN(weights=str(tmp_path / "missing" / "x.safetensors")).load("cpu")


@pytest.mark.real
@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="embedded GAN weights not trained yet")
def test_real_weights_sample_glyphs() -> None:
    g = GlyphGAN()
    g.load("cpu")
    assert g.model.cfg.image_size == 32 and len(g.weights_sha256 or "") == 64
    r = run(g, seed=0, count=16, scale=1, invert=False)
    ink = np.stack([np.asarray(o.data, dtype=np.float32) / 255.0 for o in r.outputs[1:]])
    assert 0.03 < ink.mean() < 0.5  # glyph-like ink coverage, not blank or solid pages
    flat = ink.reshape(16, -1)
    dists = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1))[np.triu_indices(16, 1)]
    assert dists.min() > 1.0  # no two samples are the same glyph (no mode collapse)


def test_training_command_runs_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           one_thread: None) -> None:
    """`python -m training.gan.train` end to end on 40 glyphs, then `--resume` continues it."""
    import json

    from training.gan.train import main

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    common = ["--out", str(out), "--limit", "40", "--size", "16", "--width", "4", "--z-dim", "8",
              "--batch", "8", "--log-every", "1", "--eval-every", "2", "--eval-samples", "16"]
    assert main(common + ["--steps", "2"]) == 0
    assert main(common + ["--steps", "4", "--resume"]) == 0
    log = json.loads((out / "training.json").read_text())
    assert [row["step"] for row in log["curve"]] == [1, 2, 3, 4]
    assert [s["steps"] for s in log["sessions"]] == [2, 2] and log["steps"] == 4
    assert log["final_eval"]["hog_mmd2_pixel_baseline_vs_heldout"] > log["final_eval"]["hog_mmd2_train_vs_heldout"]
    assert "4 steps" in (out / "TRAINING.md").read_text()
    assert load_generator(out / "generator.safetensors").cfg == GANConfig(z_dim=8, width=4, image_size=16)
    assert Image.open(out / "samples.png").size[0] > 0
    assert (tmp_path / "cache" / "gan" / "train_state_16px.pt").is_file()


def test_spectral_norm_discriminator_trains_and_is_bounded(one_thread: None) -> None:
    """The 64 px recipe's D: spectrally normalised layers (largest singular value ~1), no batch norm."""
    from training.gan.train import train_step

    cfg = GANConfig(z_dim=8, width=4, image_size=16)
    gen = torch.Generator().manual_seed(0)
    G, D = DCGenerator(cfg), DCDiscriminator(cfg, spectral_norm=True)
    init_weights(G, gen)
    init_weights(D, gen)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    opt_g = torch.optim.Adam(G.parameters(), 2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.5, 0.999))
    real = torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1
    for _ in range(8):  # power iterations converge as it trains
        losses = train_step(G, D, opt_g, opt_d, real, gen)
    assert np.isfinite(list(losses.values())).all()
    conv = D.body[0]
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert 0.8 < float(sigma) < 1.2


def test_components_count_regions_and_specks() -> None:
    from training.gan.evaluate import components

    img = np.zeros((2, 16, 16), np.float32)
    img[0, 2:4, 2:12] = 1.0  # a bar
    img[0, 8:14, 5] = 1.0  # another, apart
    img[0, 15, 15] = 1.0  # a one-pixel speck
    img[1, 3, 3:10] = 1.0
    img[1, 4, 10] = 1.0  # diagonal neighbour: the same region (8-connected)
    got = components(img)
    assert got == {"components_per_glyph": 2.0, "specks_per_glyph": 0.5, "glyphs": 2}


def test_warm_start_copies_the_shared_coarse_stages(tmp_path: Path) -> None:
    """A 2x-larger G of half the width takes the smaller model's projection and first stages."""
    from training.gan.train import warm_start

    small = DCGenerator(GANConfig(z_dim=8, width=8, image_size=16))
    init_weights(small, torch.Generator().manual_seed(1))
    save_generator(small, tmp_path / "small.safetensors")
    big = DCGenerator(GANConfig(z_dim=8, width=4, image_size=32))
    copied = warm_start(big, tmp_path / "small.safetensors")
    assert {"project.0.weight", "body.0.weight"} <= set(copied)
    assert torch.equal(big.state_dict()["body.0.weight"], small.state_dict()["body.0.weight"])
    assert "body.3.weight" not in copied  # the small model's output layer does not fit the new stage
