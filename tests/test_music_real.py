"""The shipped music weights, on properties only training gives: held-out NLL, keys that follow
the request over several tunes, form (repeats, part ends). Each check is also run on untrained
weights of the same shape, which must fail it, so none of these passes by the decoding rules
alone."""
from __future__ import annotations

import pytest

from generators.base import InvalidInput, Progress, Rng
from generators.music import EMBEDDED, MusicComposer, MusicParams
from generators.music_lib import codec
from generators.music_lib import vocab as V
from tests.music_fixtures import shipped  # noqa: F401 - a pytest fixture, shared

pytestmark = pytest.mark.real

NLL_MAX = 1.5  # nats/token on held-out tunes; the 5-gram scores ~1.5 on the whole test split
KEYS = [("6/8", "D", "major"), ("4/4", "G", "major"), ("2/4", "A", "minor"), ("3/4", "E", "minor"),
        ("6/8", "G", "major"), ("2/2", "D", "major"), ("3/4", "F", "major"), ("4/4", "E", "minor")]
KEY_MATCH_MIN = 6  # of 8
FORM_CONTRAST_MIN = 3.0  # p(part end) where parts end, over p(part end) at plain bar lines


def _untrained(model):
    """A freshly initialised model of the shipped one's exact shape."""
    import torch

    from generators.music_lib.model import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(model.cfg).eval()


@pytest.fixture(scope="module")
def untrained(shipped):
    g = MusicComposer(model="lstm")
    g._model = _untrained(shipped._model)
    return g


def _held_out_rows(n: int = 6):
    """n test-split O'Neill tunes with repeat signs, parsed from music21's corpus (a few seconds)."""
    from training.music import data

    rows = []
    for f in sorted((data.corpus_root() / "oneills1850").glob("*.abc")):
        for i, text in data.iter_abc_tunes(f):
            key = f"oneill/{f.name}/{i}"
            if data.split_of(key) != "test" or ":|" not in text:
                continue
            _key, tune, _why = data.parse_one((key, str(f), text))
            if tune is not None:
                rows.append(dict(tune, style="oneill", split="test", id=key))
            if len(rows) == n:
                return rows
    return rows


def _nll(model) -> float:
    from training.music import data
    from training.music.train import evaluate

    rows = data.tokenised(_held_out_rows())["test"]
    assert len(rows) == 6
    return evaluate(model, rows, model.cfg.max_len)


def _draw(g, params, seed):
    """A tune, or None when no draw fits the register (untrained weights wander over 4 octaves)."""
    try:
        return g.generate(params, rng=Rng(seed), progress=Progress.none())
    except InvalidInput:
        return None


def _keys_matched(g) -> int:
    from music21 import converter

    ok = 0
    for i, (meter, tonic, mode) in enumerate(KEYS):
        r = _draw(g, MusicParams(meter=meter, key=tonic, scale=mode, bars=16, audio=False, score=False), 100 + i)
        if r is None:
            continue
        k = converter.parse(r.data["abc"][0], format="abc").analyze("key")
        ok += codec.tonic_pc(codec.normalise_tonic(k.tonic.name)) == codec.tonic_pc(tonic) and k.mode == mode
    return ok


def _part_end_contrast(model) -> float:
    """On held-out tunes: the model's mean probability of a part end (`||` or `:|`) where the
    tune really ends a part, over the same probability where it really has a plain bar line.
    An untrained model cannot tell the two apart (about 1); a model that learned form can."""
    import torch

    from training.music import data

    rows = data.tokenised(_held_out_rows())["test"]
    at_end, at_bar = [], []
    ends = {V.TOKEN_ID[V.PART_END], V.TOKEN_ID[V.REPEAT_END]}
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
        for ids, meter, mode, style, pos in rows:
            x = torch.tensor([ids])
            cond = model.cond(torch.tensor([meter]), torch.tensor([mode]),
                              torch.nn.functional.one_hot(torch.tensor([style]), len(V.STYLES)).float())
            probs = torch.softmax(model(x[:, :-1], cond, torch.tensor([pos])[:, :-1]), dim=-1)[0]
            for t, target in enumerate(ids[1:]):
                q = float(sum(probs[t, e] for e in ends))
                if target in ends:
                    at_end.append(q)
                elif target == V.TOKEN_ID[V.BAR]:
                    at_bar.append(q)
    assert at_end and at_bar
    return (sum(at_end) / len(at_end)) / (sum(at_bar) / len(at_bar))


def test_embedded_weights_load_with_form_tokens(shipped):
    assert shipped._model.cfg.vocab == V.VOCAB_SIZE and shipped._model.cfg.positions
    assert len(shipped.weights_sha256) == 64 and EMBEDDED["lstm"].is_file()


def test_held_out_nll_needs_training(shipped):
    assert _nll(shipped._model) < NLL_MAX
    assert _nll(_untrained(shipped._model)) > 2 * NLL_MAX


def test_keys_follow_the_request_only_when_trained(shipped, untrained):
    assert _keys_matched(shipped) >= KEY_MATCH_MIN
    assert _keys_matched(untrained) < KEY_MATCH_MIN


def test_form_comes_from_training(shipped):
    assert _part_end_contrast(shipped._model) >= FORM_CONTRAST_MIN
    assert _part_end_contrast(_untrained(shipped._model)) < FORM_CONTRAST_MIN
