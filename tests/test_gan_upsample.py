"""The learned 32 -> 64 px glyph stage (generators/gan_upsample.py) and its use by the GAN generator."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from generators.gan import DEFAULT_UPSAMPLER, GANParams, GlyphGAN
from generators.gan_model import GANConfig, DCGenerator, save_generator
from generators.gan_upsample import GlyphUpsampler, UpsamplerConfig, load_upsampler, save_upsampler
from generators.base import Progress, Rng


def test_stage_doubles_the_side_and_round_trips_through_a_file(tmp_path) -> None:
    torch.manual_seed(0)
    net = GlyphUpsampler(UpsamplerConfig(width=8, blocks=1)).eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    y = net(x)
    assert y.shape == (3, 1, 32, 32) and float(y.abs().max()) <= 1.0
    save_upsampler(net, tmp_path / "up.safetensors")
    again = load_upsampler(tmp_path / "up.safetensors")
    assert again.cfg == net.cfg and torch.equal(again(x), y)


def test_a_generator_file_is_not_taken_for_a_stage(tmp_path) -> None:
    save_generator(DCGenerator(GANConfig(z_dim=8, width=4, image_size=16)), tmp_path / "g.safetensors")
    with pytest.raises(ValueError, match="not a studio glyph upsampler"):
        load_upsampler(tmp_path / "g.safetensors")


@pytest.mark.real
def test_shipped_stage_draws_real_64px_strokes_from_32px_glyphs_and_untrained_does_not() -> None:
    """Held-out glyphs at 32 px in, the same glyphs at 64 px expected: the trained stage's per-pixel
    ink error is well below an untrained stage's of the same shape (which starts from a bilinear upscale)."""
    from training.gan.data import load_glyphs

    torch.set_num_threads(1)
    trained = load_upsampler(DEFAULT_UPSAMPLER)
    torch.manual_seed(0)
    untrained = GlyphUpsampler(trained.cfg).eval()
    small, large = load_glyphs(32, 6.0).heldout[:128], load_glyphs(64, 6.0).heldout[:128]
    x = torch.from_numpy(small).unsqueeze(1) * 2 - 1
    target = torch.from_numpy(large).unsqueeze(1)
    with torch.no_grad():
        bce = {k: float(F.binary_cross_entropy_with_logits(net.logits(x), target))
               for k, net in (("trained", trained), ("untrained", untrained))}
    assert bce["trained"] < 0.7 * bce["untrained"], bce


@pytest.mark.real
def test_embedded_gan_draws_64px_glyphs() -> None:
    g = GlyphGAN()
    g.load("cpu")
    assert g.upsampler is not None and g.native_size == 64
    r = g.generate(GANParams.from_dict({"count": 4, "scale": 1, "invert": False}), rng=Rng(0), progress=Progress.none())
    images = [np.asarray(o.data) for o in r.outputs if o.role == "image"]
    assert len(images) == 4 and all(im.shape == (64, 64) for im in images)
    assert r.data["image_size"] == 64 and all(0.01 < im.mean() / 255 < 0.6 for im in images)  # ink on paper
