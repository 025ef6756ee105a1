"""The feedback store on PostgreSQL: the same migrations, constraints, triggers and statistics.

Runs a throwaway cluster (Debian `postgresql`, unix socket only, nothing listens on TCP) when
`initdb` and `psycopg` are installed; skipped otherwise.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from studio.feedback import FeedbackStore
from tests.ui_fixtures import fake_record

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
# In CI (`make test` installs PostgreSQL) a missing server is a failure, not a skip.
pytestmark = pytest.mark.skipif((not BIN or not shutil.which("runuser") and os.geteuid() == 0)
                                and not os.environ.get("CI"),
                                reason="PostgreSQL server binaries are not installed")


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg")
    base = Path(tempfile.mkdtemp(prefix="studio-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, bin_dir = base / "data", Path(BIN[-1])
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                              "-o", f"-c listen_addresses='' -k {base}", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={base}"
    finally:
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_store_round_trip(pg_url: str, tmp_path: Path) -> None:
    store = FeedbackStore(pg_url)
    FeedbackStore(pg_url).close()  # a second open finds the schema at head
    store.rate(fake_record(1, model="m"), stars=4, thumb=1, tags="a, b", comment="fine", user="u")
    store.rate(fake_record(2, model="m"), stars=2)
    store.compare(fake_record(1, model="big"), fake_record(2, model="small"), "a")
    assert store.count() == {"ratings": 2, "comparisons": 1}
    [row] = [r for r in store.summary(("generator", "model"))]
    assert row["n_stars"] == 2 and row["mean_stars"] == pytest.approx(3.0)
    assert [r["variant"] for r in store.ranking()] == ["echo/model=big", "echo/model=small"]
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE ratings SET stars = 5")
    with pytest.raises(sa.exc.IntegrityError, match="ck_ratings_stars"):
        with store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO ratings (uid, created, asset_sha256, generator, stars) "
                                 f"VALUES ('x', now(), '{'a' * 64}', 'echo', 9)")
    assert store.export_jsonl(tmp_path / "all.jsonl") == 3
    store.close()
