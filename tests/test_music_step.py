"""The LSTM's one-token step (cells called directly, for speed) is the same arithmetic as running
the whole sequence through nn.LSTM, and the grammar's cached masks draw only allowed tokens."""
from __future__ import annotations

import torch

from generators.music_lib import decode
from generators.music_lib import vocab as V
from generators.music_lib.model import ModelConfig, build


def test_step_matches_the_full_sequence_bit_for_bit():
    cfg = ModelConfig(kind="lstm", vocab=V.VOCAB_SIZE, n_meters=len(V.METERS), n_modes=len(V.MODES),
                      n_styles=len(V.STYLES), d_model=32, n_layers=2, dropout=0.0, positions=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(cfg).eval()
        ids = torch.randint(0, V.VOCAB_SIZE, (3, 12))
        pos = torch.randint(0, 4, (3, 12))
        cond = torch.randn(3, cfg.d_model)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        full = model(ids, cond, pos)
        logits, state = model.prime(ids[:, :1], cond, pos[:, :1])
        steps = [logits]
        for t in range(1, 12):
            logits, state = model.step(ids[:, t], state, pos[:, t])
            steps.append(logits)
    assert torch.equal(torch.stack(steps, dim=1), full)


def test_cached_masks_draw_only_allowed_tokens():
    gen = torch.Generator().manual_seed(0)
    logits = torch.zeros(2, V.VOCAB_SIZE)
    logits[:, 5] = 50.0  # the likeliest token is not allowed in either row
    drawn = [(0, [1, 2, 3]), (1, [7])]
    for _ in range(20):
        a, b = decode._pick_batch(logits, drawn, 1.0, 0, gen)
        assert a in (1, 2, 3) and b == 7
    assert decode._pick_batch(logits, [(1, [9, 10])], 0.7, 1, gen)[0] in (9, 10)
