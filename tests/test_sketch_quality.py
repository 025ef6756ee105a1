"""Real-weight checks that the shipped Sketch-RNN carries the drawing in its latent code.

Each check also runs on untrained weights of the same shape and must fail there, so it tells a
trained model from a random one (the old check, "points are finite", did not). The benchmark
(benchmarks/bench_sketch.py) measures the whole held-out set; these are quick slices of it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generators.sketch_metrics import ChamferIndex, reconstruction_ranks, rows_to_strokes, stacked_duplicates
from generators.sketch_model import SketchRNN, load_model
from generators.sketch_rnn import ASSETS
from generators.sketch_strokes import stroke3_to_strokes
from training.sketch.data import load_split

# The shipped model reconstructs only a few % of held-out characters exactly (closest to their own
# input among all 355; the target is 70%, not met: see assets/sketch/TRAINING.md), so the
# broad check is graded: where the own input ranks among all 355 held-out drawings (0 = nearest).
# Near-greedy decoding (temperature 0.02) keeps it stable.
EVERY = 5  # a fixed fifth of the held-out set (71 drawings)
TEMPERATURE = 0.02
TOP = 20  # "near the top": own input among the 20 nearest of 355
MIN_TOP_SHARE = 0.15  # shipped weights (dec 256): 0.32 (dec 128 before: 0.25); untrained dec 256: 0.04-0.06
MAX_MEAN_RANK = 0.40  # shipped weights: 0.29 (before: 0.32); untrained dec 256 (seeds 0-2): 0.44-0.49
STROKE_RATIO = (0.65, 1.35)  # unconditional strokes / real strokes (benchmark target: within 20%)
# Held-out characters the shipped weights drew back exactly (closest to their own input of all 355)
# when the whole test split was reconstructed at temperature 0.02 (16 of 355 for the dec-256 weights;
# 12 for the dec-128 weights before). The test asks for only 2 exact hits and 3 within the 3 nearest
# when they are decoded on their own; untrained weights of the same shape hit none. Retrained
# weights need this list recomputed (assets/sketch/TRAINING.md says how).
DRAWN_BACK = [20, 44, 45, 54, 57, 71, 81, 82, 113, 130, 209, 215, 223, 224, 258, 293]


class _Full:
    """The full held-out index, asked about a slice of it (ids mapped back)."""

    def __init__(self, index: ChamferIndex, ids: list[int]) -> None:
        self.index, self.ids = index, ids

    def __len__(self) -> int:
        return len(self.index)

    def rank(self, strokes, i: int) -> int:
        return self.index.rank(strokes, self.ids[i])


@pytest.fixture(scope="module")
def models() -> dict[str, SketchRNN]:
    torch.set_num_threads(1)
    path = ASSETS / "kanji.safetensors"
    if not path.exists():
        pytest.fail("embedded weights assets/sketch/kanji.safetensors are missing")
    trained = load_model(path)
    torch.manual_seed(0)
    return {"trained": trained, "untrained": SketchRNN(trained.cfg).eval()}


@pytest.fixture(scope="module")
def held_out() -> tuple[list[np.ndarray], ChamferIndex]:
    test = load_split("kanji", "test").drawings
    return test, ChamferIndex([stroke3_to_strokes(d) for d in test])


def ranks(net: SketchRNN, held_out) -> np.ndarray:
    test, index = held_out
    ids = list(range(0, len(test), EVERY))
    found = reconstruction_ranks(net, [test[i] for i in ids], index=_Full(index, ids), temperature=TEMPERATURE)
    return np.array(found) / (len(test) - 1)


@pytest.mark.real
def test_held_out_reconstructions_rank_their_inputs_near_the_top(models, held_out) -> None:
    trained, untrained = ranks(models["trained"], held_out), ranks(models["untrained"], held_out)
    top = TOP / (len(held_out[0]) - 1)
    assert (trained < top).mean() >= MIN_TOP_SHARE and trained.mean() < MAX_MEAN_RANK
    assert (untrained < top).mean() < MIN_TOP_SHARE and untrained.mean() >= MAX_MEAN_RANK


@pytest.mark.real
def test_a_few_held_out_characters_are_drawn_back(models, held_out) -> None:
    """Exact reconstructions: closer to their own input than to any other of the 355 held-out drawings."""
    test, index = held_out
    full = _Full(index, DRAWN_BACK)
    picked = [test[i] for i in DRAWN_BACK]
    trained = np.array(reconstruction_ranks(models["trained"], picked, index=full, temperature=TEMPERATURE))
    untrained = np.array(reconstruction_ranks(models["untrained"], picked, index=full, temperature=TEMPERATURE))
    assert (trained == 0).sum() >= 2 and (trained < 3).sum() >= 3
    assert (untrained == 0).sum() == 0 and (untrained < 3).sum() < 3


def unconditional(net: SketchRNN, n: int = 48, temperature: float = 0.4) -> list[list[np.ndarray]]:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, net.cfg.z_dim, generator=gen)
    rows = net.sample(z, batch=n, max_steps=net.cfg.max_len, temperature=temperature, generator=gen)
    return [rows_to_strokes(r, net.cfg.scale_factor) for r in rows]


@pytest.mark.real
def test_unconditional_stroke_counts_are_in_range_and_untrained_are_not(models, held_out) -> None:
    real = float(np.mean([len(stroke3_to_strokes(d)) for d in held_out[0]]))
    lo, hi = STROKE_RATIO
    drawn = unconditional(models["trained"])
    assert lo * real <= np.mean([len(d) for d in drawn]) <= hi * real
    assert not lo * real <= np.mean([len(d) for d in unconditional(models["untrained"])]) <= hi * real
    # no component drawn twice on top of itself (the decoder alone does it in ~10-15% at low temperature)
    cold = unconditional(models["trained"], temperature=0.1)
    assert np.mean([stacked_duplicates(d) for d in drawn + cold if d]) <= 0.05


def _teacher_forced_l_s(net: SketchRNN, drawings: list[np.ndarray], shift: int) -> float:
    """Offset NLL L_s of held-out drawings, each decoded with the code (z = mu) of the drawing `shift` places on."""
    from training.sketch.train import to_batch

    x, lengths = to_batch(drawings, net.cfg.scale_factor, pad_to=net.cfg.max_len)
    with torch.no_grad():
        mu, _ = net.encode(x, lengths)
        z = torch.roll(mu, shifts=shift, dims=0)
        start = x.new_zeros(len(x), 1, 5)
        start[..., 2] = 1.0
        p = net.mixture(net.decode(torch.cat([start, x[:, :-1]], dim=1), z))
        from generators.sketch_model import bivariate_log_prob

        log_mix = torch.logsumexp(torch.log_softmax(p.pi_logits, -1) + bivariate_log_prob(x[..., 0:1], x[..., 1:2], p), -1)
        mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).float()
    return float(-(log_mix * mask).sum() / mask.sum())


@pytest.mark.real
def test_the_code_of_a_held_out_drawing_predicts_it_better_than_another_drawings_code(models, held_out) -> None:
    """Teacher-forced: with its own code the decoder predicts a held-out drawing's pen moves far better than
    with another drawing's code (shipped dec-256 weights: 2.5 nats per point better, the dec-128 ones before 1.9; untrained: under 0.0001)."""
    picked = held_out[0][::6]  # 60 held-out drawings
    gaps = {k: _teacher_forced_l_s(net, picked, 1) - _teacher_forced_l_s(net, picked, 0) for k, net in models.items()}
    assert gaps["trained"] > 1.0, gaps
    assert abs(gaps["untrained"]) < 0.1, gaps
