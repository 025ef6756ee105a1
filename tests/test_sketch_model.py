"""The Sketch-RNN network: the loss falls, sampling is batched and seeded, weights round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generators.sketch_model import SketchConfig, SketchRNN, load_model, save_model
from generators.sketch_strokes import stroke3_to_stroke5, strokes_to_stroke3

TINY = dict(enc_hidden=16, dec_hidden=32, z_dim=8, n_mixtures=3, max_len=24, scale_factor=10.0)


def tiny(z_dim: int = 8) -> SketchRNN:
    torch.manual_seed(0)
    return SketchRNN(SketchConfig(**{**TINY, "z_dim": z_dim}))


def toy_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Four little drawings (a square, a cross, a zigzag, a dot and a line) as padded stroke-5."""
    square = [np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], float)]
    cross = [np.array([[0, 0], [10, 10]], float), np.array([[10, 0], [0, 10]], float)]
    zigzag = [np.array([[i * 4, (i % 2) * 8] for i in range(8)], float)]
    dot_line = [np.array([[5, 5]], float), np.array([[0, 12], [12, 12]], float)]
    rows, lengths = [], []
    for d in (square, cross, zigzag, dot_line):
        s3 = strokes_to_stroke3(d)
        s3[:, :2] /= 10.0
        rows.append(stroke3_to_stroke5(s3, 24))
        lengths.append(len(s3))
    return torch.from_numpy(np.stack(rows)), torch.tensor(lengths)


@pytest.mark.parametrize("z_dim", [8, 0])
def test_loss_falls_in_a_few_steps(z_dim: int) -> None:
    torch.set_num_threads(1)
    model = tiny(z_dim)
    x, lengths = toy_batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(1)
    with torch.no_grad():
        first = float(model.loss(x, lengths, sample_z=False)["l_r"])
    for _ in range(25):
        out = model.loss(x, lengths, kl_weight=0.1)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    with torch.no_grad():
        last = float(model.loss(x, lengths, sample_z=False)["l_r"])
    assert np.isfinite(first) and last < first - 0.3, (first, last)


def test_loss_parts() -> None:
    model = tiny().eval()
    x, lengths = toy_batch()
    with torch.no_grad():
        out = model.loss(x, lengths, sample_z=False)
    assert out["l_r"] == pytest.approx(float(out["l_s"] + out["l_p"]), rel=1e-5)
    assert float(out["l_kl"]) >= 0
    assert set(out) == {"loss", "l_r", "l_s", "l_p", "l_kl"}


def test_sampling_is_batched_seeded_and_capped() -> None:
    model = tiny().eval()
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(3))

    def draw(seed: int, **kw) -> list[np.ndarray]:
        return model.sample(z, batch=5, max_steps=30, temperature=0.8,
                            generator=torch.Generator().manual_seed(seed), **kw)

    a, b, c = draw(7), draw(7), draw(8)
    assert len(a) == 5
    for rows in a:
        assert 1 <= len(rows) <= 30 and rows.shape[1] == 5
        np.testing.assert_array_equal(rows[:, 2:].sum(axis=1), 1.0)
        assert (rows[-1, 4] == 1) == (len(rows) < 30 or rows[-1, 4] == 1)
        assert not np.any(rows[:-1, 4])  # p3 only at the very end
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_shared_noise_gives_identical_candidates_for_identical_codes() -> None:
    model = tiny().eval()
    z = torch.randn(1, 8).expand(3, 8).contiguous()
    out = model.sample(z, batch=3, max_steps=20, temperature=0.5, generator=torch.Generator().manual_seed(0),
                       shared_noise=True)
    # equal up to float rounding (rows of one batched matmul may round differently)
    assert all(o.shape == out[0].shape and np.allclose(out[0], o, atol=1e-5) for o in out[1:])


def test_prefix_is_read_and_changes_the_continuation() -> None:
    model = tiny().eval()
    x, lengths = toy_batch()
    z = torch.zeros(1, 8)
    prefix = x[1, :2].clone()
    with_prefix = model.sample(z, batch=1, max_steps=10, temperature=0.01,
                               generator=torch.Generator().manual_seed(0), prefix=prefix)[0]
    without = model.sample(z, batch=1, max_steps=10, temperature=0.01,
                           generator=torch.Generator().manual_seed(0))[0]
    assert not np.array_equal(with_prefix[:1], without[:1])


def test_safetensors_round_trip(tmp_path) -> None:
    model = tiny().eval()
    path = tmp_path / "m.safetensors"
    save_model(model, path, extra={"dataset": "toy"})
    again = load_model(path)
    assert again.cfg == model.cfg
    x, lengths = toy_batch()
    with torch.no_grad():
        a = model.loss(x, lengths, sample_z=False)["l_r"]
        b = again.loss(x, lengths, sample_z=False)["l_r"]
    assert float(a) == float(b)
