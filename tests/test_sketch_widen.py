"""Widening a Sketch-RNN decoder (training/sketch/widen.py) keeps what the model computes."""
from __future__ import annotations

import pytest
import torch

from generators.sketch_model import SketchConfig, SketchRNN
from training.sketch.widen import widen_decoder


def _batch(n: int = 4, steps: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.zeros(n, steps, 5)
    x[..., :2] = torch.randn(n, steps, 2, generator=gen)
    x[..., 2] = 1.0
    x[:, -1, 2], x[:, -1, 4] = 0.0, 1.0
    return x, torch.full((n,), steps)


def test_widened_decoder_gives_the_same_loss_and_samples_then_learns() -> None:
    torch.manual_seed(0)
    small = SketchRNN(SketchConfig(enc_hidden=8, dec_hidden=12, z_dim=4, n_mixtures=3, max_len=12)).eval()
    wide = widen_decoder(small, 20).eval()
    assert wide.cfg.dec_hidden == 20 and wide.decoder.hidden_size == 20
    x, lengths = _batch()
    a = small.loss(x, lengths, sample_z=False)
    b = wide.loss(x, lengths, sample_z=False)
    for k in ("l_s", "l_p", "l_kl"):
        assert float(a[k]) == pytest.approx(float(b[k]), abs=1e-5)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    draws = [m.sample(z, batch=3, max_steps=12, temperature=0.5, generator=torch.Generator().manual_seed(3))
             for m in (small, wide)]
    for r_small, r_wide in zip(*draws):
        assert r_small.shape == r_wide.shape and torch.allclose(torch.from_numpy(r_small), torch.from_numpy(r_wide), atol=1e-4)
    # the new units are live: one training step moves the output layer's new columns off zero
    wide.train()
    wide.loss(x, lengths)["loss"].backward()
    assert wide.fc_out.weight.grad[:, 12:].abs().sum() > 0


def test_widening_to_fewer_units_is_refused() -> None:
    small = SketchRNN(SketchConfig(enc_hidden=8, dec_hidden=12, z_dim=4, n_mixtures=3, max_len=12))
    with pytest.raises(ValueError, match="cannot widen"):
        widen_decoder(small, 8)
