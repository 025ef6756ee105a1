"""Feedback store: constraints, append-only rows, statistics, Bradley-Terry, exports, durability."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from generators.base import InvalidInput
from studio.feedback import FeedbackStore, bradley_terry, mean_ci, sqlite_url, wilson
from tests.ui_fixtures import fake_record

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).with_name("ui_fixtures.py")


@pytest.fixture()
def store(tmp_path: Path) -> FeedbackStore:
    s = FeedbackStore(sqlite_url(tmp_path / "feedback.db"))
    yield s
    s.close()


def test_rating_row_carries_provenance(store: FeedbackStore) -> None:
    rec = fake_record(7, model="tiny-model", mood="loud")
    uid = store.rate(rec, stars=4, thumb=1, tags="warm, odd, warm", comment="nice", user="ana", session="s1")
    [row] = list(store.iter_ratings())
    assert row["uid"] == uid
    assert row["asset_sha256"] == rec["sha256"] and row["generator"] == "echo"
    assert row["params"] == rec["params"] and row["seed"] == 7
    assert row["weights_sha256"] == "0" * 64 and row["model"] == "model=tiny-model"
    assert row["preset"] == "" and row["user_id"] == "ana" and row["session_id"] == "s1"
    assert row["tags"] == ["warm", "odd"] and row["stars"] == 4 and row["thumb"] == 1
    assert row["created"].tzinfo is not None


def test_bad_feedback_is_refused_with_a_sentence(store: FeedbackStore) -> None:
    rec = fake_record(1)
    for kwargs, words in [({"stars": 6}, "1 to 5"), ({"stars": 0}, "1 to 5"), ({"thumb": 2}, "thumb"),
                          ({}, "give stars"), ({"comment": "x" * 5000}, "too long"),
                          ({"tags": [f"t{i}" for i in range(30)]}, "at most")]:
        with pytest.raises(InvalidInput, match=words):
            store.rate(rec, **kwargs)
    with pytest.raises(InvalidInput, match="sha256"):
        store.rate({"generator": "echo"}, stars=3)
    with pytest.raises(InvalidInput, match="'a', 'b' or 'tie'"):
        store.compare(fake_record(1), fake_record(2), "both")
    with pytest.raises(InvalidInput, match="two different"):
        store.compare(rec, rec, "a")
    assert store.count() == {"ratings": 0, "comparisons": 0}


def test_database_enforces_checks_and_append_only(store: FeedbackStore) -> None:
    store.rate(fake_record(1), stars=3)
    with pytest.raises(sa.exc.IntegrityError, match="ck_ratings_stars"):
        with store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO ratings (uid, created, asset_sha256, generator, stars) "
                                 f"VALUES ('x', '2026-01-01', '{'a' * 64}', 'echo', 9)")
    for sql in ("UPDATE ratings SET stars = 5", "DELETE FROM ratings"):
        with pytest.raises(sa.exc.IntegrityError, match="append-only"):
            with store.engine.begin() as conn:
                conn.exec_driver_sql(sql)
    assert [r["stars"] for r in store.iter_ratings()] == [3]


def test_same_uid_saved_twice_is_stored_once(store: FeedbackStore) -> None:
    store.rate(fake_record(1), stars=3, uid="fixed-uid")
    store.rate(fake_record(1), stars=3, uid="fixed-uid")
    assert store.count()["ratings"] == 1


def test_schema_comes_from_alembic_and_reopen_keeps_rows(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "f.db")
    s = FeedbackStore(url)
    s.rate(fake_record(1), stars=5)
    s.close()
    s = FeedbackStore(url)
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001_initial"
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert s.count()["ratings"] == 1
    s.close()


def test_summary_intervals_and_thumbs(store: FeedbackStore) -> None:
    for i, stars in enumerate([5, 4, 4, 3]):
        store.rate(fake_record(i, model="m1"), stars=stars, thumb=1 if stars > 3 else -1)
    store.rate(fake_record(9, model="m2", mood="loud"), stars=2)
    rows = {r["model"]: r for r in store.summary(("generator", "model"))}
    m1 = rows["model=m1"]
    assert m1["n_stars"] == 4 and m1["mean_stars"] == pytest.approx(4.0)
    # t(0.975, 3) = 3.182; sd = 0.8165 -> half width 1.299
    assert m1["stars_ci_low"] == pytest.approx(4 - 1.299, abs=1e-3)
    assert m1["n_thumbs"] == 4 and m1["thumbs_up_share"] == pytest.approx(0.75)
    assert 0 < m1["up_ci_low"] < 0.75 < m1["up_ci_high"] <= 1
    assert rows["model=m2"]["stars_ci_low"] is None  # one rating: no interval, not a fake one
    assert mean_ci([]) == (None, None, None) and wilson(0, 0) == (None, None, None)


def test_bradley_terry_orders_variants_and_counts_ties() -> None:
    votes = ([{"a_variant": "good", "b_variant": "bad", "winner": "a"}] * 8
             + [{"a_variant": "good", "b_variant": "bad", "winner": "b"}] * 2
             + [{"a_variant": "mid", "b_variant": "bad", "winner": "a"}] * 5
             + [{"a_variant": "mid", "b_variant": "good", "winner": "tie"}] * 2
             + [{"a_variant": "mid", "b_variant": "good", "winner": "b"}] * 3)
    rows = bradley_terry(votes)
    assert [r["variant"] for r in rows] == ["good", "mid", "bad"]
    good = rows[0]
    assert good["wins"] == 8 + 1 + 3 and good["games"] == 15


def test_ab_votes_rank_models_and_export_dpo(store: FeedbackStore, tmp_path: Path) -> None:
    story_a, story_b = tmp_path / "a.txt", tmp_path / "b.txt"
    story_a.write_text("A dragon sang.")
    story_b.write_text("It was a day.")
    for i in range(6):
        a = fake_record(i, model="big", path=str(story_a))
        b = fake_record(100 + i, model="small", path=str(story_b))
        store.compare(a, b, "a" if i < 5 else "tie", user="u")
    ranking = store.ranking()
    assert [r["variant"] for r in ranking] == ["echo/model=big", "echo/model=small"]
    n = store.export_dpo(tmp_path / "pairs.jsonl")
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert n == 5 and len(pairs) == 5  # the tie carries no preference
    assert pairs[0] == {"prompt": "prompt 0", "chosen": "A dragon sang.", "rejected": "It was a day."}


def test_exports_jsonl_and_csv_round_trip(store: FeedbackStore, tmp_path: Path) -> None:
    store.rate(fake_record(1), stars=2, tags=["x"], comment='say "hi",\nok')
    store.compare(fake_record(1), fake_record(2), "b")
    assert store.export_jsonl(tmp_path / "all.jsonl") == 2
    lines = [json.loads(s) for s in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert [l["type"] for l in lines] == ["rating", "comparison"]
    assert store.export_csv(tmp_path / "r.csv") == 1
    with open(tmp_path / "r.csv", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["comment"] == 'say "hi",\nok' and json.loads(row["params"])["prompt"] == "prompt 1"
    assert not list(tmp_path.glob(".*.tmp"))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_eight_writers_give_exactly_4000_rows(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "feedback.db")
    FeedbackStore(url).close()  # migrate once; writers still run the (no-op) upgrade themselves
    procs = [subprocess.Popen([sys.executable, str(FIXTURES), "writer", url, "500", f"w{i}"], cwd=ROOT,
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "locked" not in err
        assert out.count("ACK ") == 500
    store = FeedbackStore(url)
    assert store.count()["ratings"] == 4000
    uids = {r["uid"] for r in store.iter_ratings()}
    assert uids == {line.split()[1] for out, _ in outs for line in out.splitlines()}
    store.close()


def test_killed_writer_loses_no_acknowledged_rating(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "feedback.db")
    FeedbackStore(url).close()
    proc = subprocess.Popen([sys.executable, str(FIXTURES), "writer", url, "100000", "victim"], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        acked.append(line.split()[1])
        if len(acked) >= 150:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    acked += [line.split()[1] for line in proc.stdout.read().splitlines() if line.startswith("ACK ")]
    assert proc.returncode == -signal.SIGKILL
    store = FeedbackStore(url)
    stored = {r["uid"] for r in store.iter_ratings()}
    assert set(acked) <= stored
    assert len(stored) - len(acked) <= 1  # at most the one committed between ACKs
    store.close()


def test_export_killed_midway_leaves_previous_export_intact(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "feedback.db")
    store = FeedbackStore(url)
    for i in range(40):
        store.rate(fake_record(i), stars=1 + i % 5)
    out = tmp_path / "export.jsonl"
    assert store.export_jsonl(out) == 40
    before = out.read_bytes()
    store.rate(fake_record(99), stars=5)
    proc = subprocess.Popen([sys.executable, str(FIXTURES), "slow-export", url, str(out)], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "STARTED"
    time.sleep(0.2)
    assert list(tmp_path.glob(".export.jsonl.*.tmp")), "the export should be writing its temp file"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert out.read_bytes() == before
    assert len([json.loads(s) for s in before.decode().splitlines()]) == 40
    assert store.export_jsonl(out) == 41  # the next export replaces it and sweeps the temp file
    assert not list(tmp_path.glob(".export.jsonl.*.tmp"))
    store.close()


def test_output_without_recorded_hash_is_hashed_from_its_file(store: FeedbackStore, tmp_path: Path) -> None:
    import hashlib

    f = tmp_path / "out.txt"
    f.write_text("made by the studio")
    store.rate({"generator": "echo", "params": {}, "seed": 1, "path": str(f)}, stars=2)
    [row] = list(store.iter_ratings())
    assert row["asset_sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()


def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from studio.feedback import MIGRATIONS, upgrade

    store = FeedbackStore(sqlite_url(tmp_path / "m.db"))
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert "ratings" not in sa.inspect(store.engine).get_table_names()
    upgrade(store.engine)
    assert {"ratings", "comparisons"} <= set(sa.inspect(store.engine).get_table_names())
    store.rate(fake_record(1), stars=1)
    assert store.count()["ratings"] == 1
    store.close()


def test_each_creator_reads_and_exports_only_their_own_feedback(store: FeedbackStore, tmp_path: Path) -> None:
    """A private studio (issue 12, break 7): summaries, rankings and exports filter by user."""
    store.rate(fake_record(1, model="m1"), stars=5, user="ana")
    store.rate(fake_record(2, model="m2"), stars=1, user="ben")
    store.compare(fake_record(3, model="m1"), fake_record(4, model="m2"), "a", user="ana")
    assert store.count(user="ana") == {"ratings": 1, "comparisons": 1}
    assert store.count(user="ben") == {"ratings": 1, "comparisons": 0}
    assert store.count() == {"ratings": 2, "comparisons": 1}
    assert [r["model"] for r in store.summary(user="ben")] == ["model=m2"]
    assert store.ranking(user="ben") == [] and len(store.ranking(user="ana")) == 2
    assert store.export_jsonl(tmp_path / "ben.jsonl", user="ben") == 1
    [line] = (tmp_path / "ben.jsonl").read_text().splitlines()
    assert json.loads(line)["user_id"] == "ben"
    assert store.export_dpo(tmp_path / "ben-dpo.jsonl", user="ben") == 0
    assert store.export_csv(tmp_path / "ana.csv", user="ana") == 1
