"""Real-weight checks that the shipped Sketch-RNN carries the drawing in its latent code.

Each check also runs on untrained weights of the same shape and must fail there, so it tells a
trained model from a random one (the old check, "points are finite", did not). The benchmark
(benchmarks/bench_sketch.py) measures the whole held-out set; these are quick slices of it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generators.sketch_metrics import ChamferIndex, reconstruction_ranks, rows_to_strokes
from generators.sketch_model import SketchRNN, load_model
from generators.sketch_rnn import ASSETS
from generators.sketch_strokes import stroke3_to_strokes
from training.sketch.data import load_split

# The shipped model reconstructs only a few % of held-out characters exactly (closest to their own
# input among all 355; the target is 70%, not met: see assets/sketch/TRAINING.md), too few
# for a stable exact-hit check, so these checks are graded: where the own input ranks among all
# 355 held-out drawings (0 = nearest). Near-greedy decoding (temperature 0.02) keeps them stable.
EVERY = 5  # a fixed fifth of the held-out set (71 drawings)
TEMPERATURE = 0.02
TOP = 20  # "near the top": own input among the 20 nearest of 355
MIN_TOP_SHARE = 0.08  # shipped weights: 0.21; untrained weights: ~0.01-0.04
MAX_MEAN_RANK = 0.45  # shipped weights: 0.37; a code that carries nothing: ~0.5
STROKE_RATIO = (0.65, 1.35)  # unconditional strokes / real strokes (benchmark target: within 20%)


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


def mean_strokes(net: SketchRNN, n: int = 48, temperature: float = 0.4) -> float:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, net.cfg.z_dim, generator=gen)
    rows = net.sample(z, batch=n, max_steps=net.cfg.max_len, temperature=temperature, generator=gen)
    return float(np.mean([len(rows_to_strokes(r, net.cfg.scale_factor)) for r in rows]))


@pytest.mark.real
def test_unconditional_stroke_counts_are_in_range_and_untrained_are_not(models, held_out) -> None:
    real = float(np.mean([len(stroke3_to_strokes(d)) for d in held_out[0]]))
    lo, hi = STROKE_RATIO
    assert lo * real <= mean_strokes(models["trained"]) <= hi * real
    assert not lo * real <= mean_strokes(models["untrained"]) <= hi * real
