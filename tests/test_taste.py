"""Taste models (studio/taste.py): learning from ratings, best-of-N, per-user isolation, bad input."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from generators.base import InvalidInput
from studio.assets import restore
from studio.config import Settings


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """One studio for the module (features are cached in its home); each test rates as its own users."""
    from studio.api import Studio

    home = tmp_path_factory.mktemp("taste")
    s = Studio(Settings(home=home / "home", cache_dir=home / "cache"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def pool(studio):
    """24 real breeder candidates (tiny), with a hidden 'warm palette' utility per file."""
    from PIL import Image

    from studio.taste import candidate_assets

    result = studio.generate("breeder", {"rows": 4, "cols": 6, "width": 32, "height": 32, "complexity": 6}, seed=5)
    paths = candidate_assets("breeder", result.assets)
    assert len(paths) == 24  # the grid is not a candidate
    warm = {}
    for p in paths:
        a = np.asarray(Image.open(p).convert("RGB"), dtype=float) / 255
        warm[p] = float((a[..., 0] - a[..., 2]).mean())
    return paths, warm


def _record(path):
    return {**restore(path).record, "path": str(path)}


def _rate_by_warmth(studio, paths, warm, user, sign=1.0):
    values = np.array([sign * warm[p] for p in paths])
    edges = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
    for p, v in zip(paths, values):
        studio.taste.feedback.rate(_record(p), stars=int(1 + np.searchsorted(edges, v)), user=user)


def test_learns_a_taste_and_best_of_picks_by_it(studio, pool):
    paths, warm = pool
    train, held = paths[:16], paths[16:]
    _rate_by_warmth(studio, train, warm, user="alice")
    status = studio.taste.status("alice", "breeder")
    assert status["ready"], status["reason"]
    assert status["version"].startswith("taste1-")
    assert 0 <= status["cv_accuracy"] <= 1 and status["cv_ci"][0] <= status["cv_accuracy"] <= status["cv_ci"][1]
    model = studio.taste.model("alice", "breeder")
    ranked = studio.taste.rank(model, held)
    # the model's order agrees with the hidden taste on unseen outputs better than chance
    scores = [r["score"] for r in ranked]
    truth = [warm[next(p for p in held if str(p) == r["path"])] for r in ranked]
    agree = sum((a > b) == (ta > tb) for i, (a, ta) in enumerate(zip(scores, truth))
                for b, tb in zip(scores[i + 1:], truth[i + 1:]))
    assert agree / (len(held) * (len(held) - 1) / 2) > 0.6
    why = ranked[0]["why"]
    assert why and all(w["rating_score"] > 0 for w in why)  # "why" names liked outputs only
    learned = model.learned(k=3)
    assert len(learned["liked"]) == 3 and len(learned["disliked"]) == 3

    out = studio.best_of("breeder", {"rows": 1, "cols": 4, "width": 32, "height": 32}, n=6, keep=2, seed=11,
                         user="alice")
    assert out["taste"]["active"] and out["taste"]["model"] == model.version
    assert b"alice" not in Path(out["candidates"][0]["path"]).read_bytes()  # no user in the files
    assert len(out["candidates"]) == 6 and len(out["keep"]) == 2
    assert [c["rank"] for c in out["candidates"]] == [1, 2, 3, 4, 5, 6]
    assert out["candidates"][0]["score"] >= out["candidates"][-1]["score"]
    for c in out["candidates"]:  # every candidate's provenance names the setting and the model
        taste = restore(c["path"]).record["taste"]
        assert taste["setting"] == "auto" and taste["best_of"] == 6 and taste["model"] == model.version
    # a plain generation records that no taste model chose it
    plain = studio.generate("breeder", {"rows": 1, "cols": 1, "width": 16, "height": 16}, seed=1)
    assert restore(plain.assets[0]).record["taste"]["setting"] == "off"


def test_one_users_ratings_never_steer_another(studio, pool):
    paths, warm = pool
    _rate_by_warmth(studio, paths[:16], warm, user="amy")
    bob = studio.taste.status("bob", "breeder")
    assert not bob["ready"] and "no ratings yet from 'bob'" in bob["reason"]
    out = studio.best_of("breeder", {"rows": 1, "cols": 3, "width": 16, "height": 16}, n=3, seed=2, user="bob")
    assert not out["taste"]["active"] and out["taste"]["model"] is None
    assert all(c["score"] is None for c in out["candidates"])  # generation order, no reranking
    _rate_by_warmth(studio, paths[:16], warm, user="bob", sign=-1.0)  # the opposite taste
    a = studio.taste.model("amy", "breeder")
    b = studio.taste.model("bob", "breeder")
    assert a.version != b.version and a.user == "amy" and b.user == "bob"
    X = a.Z * a.scale + a.mean  # the raw features of the outputs both rated
    ua, ub = a.utility(X), b.utility(X)
    assert np.corrcoef(ua, ub)[0, 1] < 0  # opposite ratings, opposite models
    # each browser is its own creator, as its gallery is (the UI's user is the outputs' owner);
    # the API without a user is the machine owner's "local" creator
    _rate_by_warmth(studio, paths[:16], warm, user="browser:abc")
    assert studio.taste.status("browser:abc", "breeder")["n_ratings"] == 16
    assert studio.taste.status("browser:xyz", "breeder")["n_ratings"] == 0
    assert studio.taste.status(None, "breeder")["user"] == "local"
    assert "no ratings yet from you" in studio.taste.status("browser:xyz", "breeder")["reason"]


def test_no_reranking_without_signal(studio, pool):
    paths, _ = pool
    taste = studio.taste
    assert "no ratings yet" in taste.status("carol", "breeder")["reason"]
    taste.feedback.rate(_record(paths[0]), stars=4, user="carol")
    st = taste.status("carol", "breeder")
    assert not st["ready"] and "only one rated" in st["reason"]
    for p in paths[1:12]:
        taste.feedback.rate(_record(p), stars=4, user="carol")
    st = taste.status("carol", "breeder")
    assert not st["ready"] and "same score (4 stars)" in st["reason"]
    with pytest.raises(InvalidInput, match="same score"):
        taste.model("carol", "breeder")
    with pytest.raises(InvalidInput, match="cannot pick by taste yet"):
        studio.best_of("breeder", {"rows": 1, "cols": 2, "width": 16, "height": 16}, n=2, user="carol", taste="on")
    # contradictory votes cancel out
    a, b = _record(paths[0]), _record(paths[1])
    taste.feedback.compare(a, b, "a", user="dave")
    taste.feedback.compare(a, b, "b", user="dave")
    st = taste.status("dave", "breeder")
    assert not st["ready"] and "contradict" in st["reason"]
    # a few real differences, but fewer than the threshold
    for p, s in zip(paths[:4], (1, 2, 4, 5)):
        taste.feedback.rate(_record(p), stars=s, user="erin")
    st = taste.status("erin", "breeder")
    assert not st["ready"] and "starts reranking at 10" in st["reason"]


def test_reset_forgets_without_deleting(studio, pool):
    paths, warm = pool
    _rate_by_warmth(studio, paths[:12], warm, user="frank")
    assert studio.taste.status("frank", "breeder")["ready"]
    studio.taste.reset("frank", "breeder")
    assert "no ratings yet" in studio.taste.status("frank", "breeder")["reason"]
    assert len([r for r in studio.taste.feedback.iter_ratings() if r["user_id"] == "frank"]) == 12  # still stored


def test_best_of_refuses_bad_requests(studio):
    with pytest.raises(InvalidInput, match="1 to 32 candidates"):
        studio.best_of("breeder", n=0)
    with pytest.raises(InvalidInput, match="keep must be"):
        studio.best_of("breeder", n=2, keep=3)
    with pytest.raises(InvalidInput, match="taste must be one of"):
        studio.best_of("breeder", n=2, taste="maybe")
    with pytest.raises(InvalidInput, match="no taste features"):
        studio.best_of("face", n=2)


def _midi(pitches: list[int]) -> bytes:
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for p in pitches:
        track += [mido.Message("note_on", note=p, velocity=80, time=0),
                  mido.Message("note_off", note=p, velocity=0, time=480)]
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def test_music_features_find_the_mode_in_any_key(tmp_path):
    from studio.features import FeatureExtractor

    fx = FeatureExtractor(tmp_path / "cache")
    minor = [57, 59, 60, 62, 64, 65, 67, 69, 64, 60, 57, 60, 64, 57]  # A minor
    major = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 64, 67, 60]  # C major
    vecs = {}
    for name, notes in (("minor", minor), ("minor_up", [p + 5 for p in minor]), ("major", major)):
        (tmp_path / f"{name}.mid").write_bytes(_midi(notes))
        vecs[name] = fx.vector(tmp_path / f"{name}.mid", "music")
    assert vecs["minor"][12] == 1.0 and vecs["major"][12] == 0.0  # the is-minor feature
    assert np.allclose(vecs["minor"][:12], vecs["minor_up"][:12])  # pitch classes relative to the tonic
    (tmp_path / "one.mid").write_bytes(_midi([60]))
    with pytest.raises(InvalidInput, match="fewer than two notes"):
        fx.vector(tmp_path / "one.mid", "music")
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    with pytest.raises(InvalidInput, match="cannot read this MIDI"):
        fx.vector(tmp_path / "bad.mid", "music")


def test_sketch_features_see_density(tmp_path):
    from studio.features import FeatureExtractor

    def svg(strokes):
        paths = "".join(f'<path d="M{s[0][0]} {s[0][1]} ' + " ".join(f"L{x} {y}" for x, y in s[1:]) + '"/>'
                        for s in strokes)
        return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">{paths}</svg>'

    sparse = [[(0, 0), (100, 100)]]
    dense = [[(0, y), (100, y)] for y in range(0, 101, 10)] + [[(x, 0), (x, 100)] for x in range(0, 101, 10)]
    (tmp_path / "sparse.svg").write_text(svg(sparse))
    (tmp_path / "dense.svg").write_text(svg(dense))
    fx = FeatureExtractor(None)
    s, d = fx.vector(tmp_path / "sparse.svg", "sketch"), fx.vector(tmp_path / "dense.svg", "sketch")
    assert d[0] > s[0] and d[9] > 3 * s[9]  # more strokes; more of the canvas covered
    (tmp_path / "empty.svg").write_text("<svg/>")
    with pytest.raises(InvalidInput, match="no pen strokes"):
        fx.vector(tmp_path / "empty.svg", "sketch")


def test_feature_kind_refuses_unreadable_outputs(tmp_path):
    from studio.features import kind_for

    assert kind_for("story", "a.fountain") == "text" and kind_for("music", "a.mid") == "music"
    with pytest.raises(InvalidInput, match="cannot read"):
        kind_for("music", "a.wav")
    with pytest.raises(InvalidInput, match="cannot read"):
        kind_for("face", "a.mp4")


def test_text_statistics_see_punchy_dialogue():
    from studio.features.text import STAT_NAMES, statistics

    punchy = 'JOE\nGet out!\n\nMARA\nNo.\n\nJOE\nNow!\n'
    long = ("The valley lay quiet under a long grey sky, and the farmers, who had come down from the hills "
            "with their carts and their dogs, waited patiently for the market to open.")
    a, b = dict(zip(STAT_NAMES, statistics(punchy))), dict(zip(STAT_NAMES, statistics(long)))
    assert a["dialogue_share"] > 0.5 and b["dialogue_share"] == 0
    assert a["words_per_sentence"] < b["words_per_sentence"]


@pytest.mark.real
def test_minilm_embeds_offline(tmp_path):
    from studio.features import FeatureExtractor

    fx = FeatureExtractor(tmp_path / "cache")
    texts = {"cat": "A cat sleeps on the warm windowsill.", "kitten": "A kitten naps in the sunny window.",
             "tax": "Quarterly tax filings are due next month."}
    vec = {}
    for k, t in texts.items():
        (tmp_path / f"{k}.md").write_text(t)
        vec[k] = fx.vector(tmp_path / f"{k}.md", "text")[:384]
    assert vec["cat"].shape == (384,) and abs(float(np.linalg.norm(vec["cat"])) - 1) < 1e-4
    assert vec["cat"] @ vec["kitten"] > vec["cat"] @ vec["tax"] + 0.2
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 3 and json.dumps(sorted(p.parent.parent.name for p in cached)) == '["text", "text", "text"]'


def test_cli_best_of_and_taste(tmp_path, capsys):
    from studio.cli import main

    home = str(tmp_path / "cli-home")
    assert main(["--home", home, "taste", "breeder"]) == 0
    assert "no ratings yet" in capsys.readouterr().out
    assert main(["--home", home, "generate", "breeder", "--set", "rows=1", "--set", "cols=2", "--set", "width=16",
                 "--set", "height=16", "--best-of", "2", "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["taste"]["active"] is False and len(out["keep"]) == 1 and len(out["candidates"]) == 2
    assert main(["--home", home, "generate", "breeder", "--best-of", "2", "--taste", "on", "--quiet"]) == 2
    assert "cannot pick by taste yet" in capsys.readouterr().err


def test_evolution_follows_taste_through_reranked_children(studio, pool):
    paths, warm = pool
    _rate_by_warmth(studio, paths[:16], warm, user="gina")
    parent = studio.generate("breeder", {"rows": 1, "cols": 2, "width": 16, "height": 16}, seed=4).data["genomes"]
    out = studio.best_of("breeder", {"mode": "breed", "genomes": parent, "rows": 1, "cols": 3, "width": 16,
                                     "height": 16}, n=6, keep=3, seed=8, user="gina")
    assert out["taste"]["active"] and len(out["keep"]) == 3
    kept = [c["genome"] for c in out["keep"]]  # genomes to breed from next, best first
    assert all(set(g["parents"]) <= {p["id"] for p in parent} and g["parents"] for g in kept)
    assert out["keep"][0]["score"] >= out["keep"][-1]["score"] >= out["candidates"][-1]["score"]


def test_ratings_of_files_outside_the_outputs_or_changed_are_not_learned_from(studio, pool, tmp_path):
    from PIL import Image

    paths, warm = pool
    outside = tmp_path / "outside.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(outside)
    record = {**restore(paths[0]).record, "path": str(outside)}
    record.pop("sha256", None)
    studio.taste.feedback.rate(record, stars=5, user="hal")
    _rate_by_warmth(studio, paths[:12], warm, user="hal")
    data = studio.taste.data("hal", "breeder")
    model = studio.taste.fit(data, evaluate=False)
    assert str(outside) not in model.paths and len(model.shas) == 12
    assert any("outside the outputs folder" in m for m in data.missing)


def test_text_features_read_the_new_passage_only():
    """The creator judges what the model wrote: not the provenance record's JSON, not their own opening."""
    from studio.features.text import new_passage

    doc = '# T\n\n"Run!" Tom shouted.\n\nHe ran.\n\n<!-- studio-provenance:{"params": {"text": "x"}} -->\n'
    assert new_passage(doc, '"Run!" Tom shouted.\n\n') == "He ran."
    assert new_passage(doc) == '"Run!" Tom shouted.\n\nHe ran.'
    assert new_passage(doc, "an opening this output does not continue") == '"Run!" Tom shouted.\n\nHe ran.'
    fountain = "INT. ROOM - DAY\n\nMARA\nHi.\n\n/* studio-provenance:{\"a\": 1} */\n"
    assert "provenance" not in new_passage(fountain)
