"""Feedback store: star ratings, thumbs, tags, comments and blind A/B votes on studio outputs.

SQLAlchemy Core over SQLite (WAL, `busy_timeout`, writers take `BEGIN IMMEDIATE`) in the studio
home by default, or PostgreSQL when a database URL is given. The schema is owned by Alembic
migrations in `studio/migrations/`, applied on open. Rows are append-only (database triggers
refuse UPDATE and DELETE) and CHECK constraints keep values in range. `rate()` / `compare()`
return only after the commit, so a rating the UI shows as saved is on disk.

A/B votes are ranked with the Bradley-Terry model (Bradley & Terry, 1952), fitted with
I-LSR (Maystre & Grossglauser, 2015) from the `choix` package; ties count as half a win each way.
Exports are atomic (temp file, fsync, rename) and include preference pairs in the
`{prompt, chosen, rejected}` layout TRL's DPO trainer reads.
"""
from __future__ import annotations

import csv
import fcntl
import datetime as _dt
import io
import json
import math
import os
import secrets
import threading
import uuid
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import event

from generators.base import InvalidInput

MIGRATIONS = Path(__file__).with_name("migrations")
MAX_COMMENT = 4000  # characters; longer comments are refused, never cut
MAX_TAGS = 20
MAX_TAG_LENGTH = 40
TEXT_SUFFIXES = (".txt", ".md", ".fountain", ".abc", ".json", ".svg")  # outputs DPO can inline

metadata = sa.MetaData()

# The tables as the code reads and writes them; `migrations/versions/` is the source of truth
# for the database schema (constraints, triggers) and must be kept in step with these.
ratings = sa.Table(
    "ratings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),  # client token: idempotent saves
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("asset_sha256", sa.String(64), nullable=False),
    sa.Column("asset_path", sa.Text, nullable=False, server_default=""),
    sa.Column("generator", sa.String(64), nullable=False),
    sa.Column("model", sa.Text, nullable=False, server_default=""),  # load-time options (model id)
    sa.Column("preset", sa.Text, nullable=False, server_default=""),
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("seed", sa.BigInteger, nullable=True),
    sa.Column("weights_sha256", sa.String(64), nullable=False, server_default=""),
    sa.Column("user_id", sa.Text, nullable=False, server_default=""),
    sa.Column("session_id", sa.Text, nullable=False, server_default=""),
    sa.Column("stars", sa.SmallInteger, nullable=True),
    sa.Column("thumb", sa.SmallInteger, nullable=True),
    sa.Column("tags", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
)

comparisons = sa.Table(
    "comparisons", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("generator", sa.String(64), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False, server_default=""),
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),
    sa.Column("a_sha256", sa.String(64), nullable=False),
    sa.Column("b_sha256", sa.String(64), nullable=False),
    sa.Column("a_path", sa.Text, nullable=False, server_default=""),
    sa.Column("b_path", sa.Text, nullable=False, server_default=""),
    sa.Column("a_variant", sa.Text, nullable=False, server_default=""),
    sa.Column("b_variant", sa.Text, nullable=False, server_default=""),
    sa.Column("a_seed", sa.BigInteger, nullable=True),
    sa.Column("b_seed", sa.BigInteger, nullable=True),
    sa.Column("a_weights_sha256", sa.String(64), nullable=False, server_default=""),
    sa.Column("b_weights_sha256", sa.String(64), nullable=False, server_default=""),
    sa.Column("winner", sa.String(4), nullable=False),  # "a" | "b" | "tie"
    sa.Column("user_id", sa.Text, nullable=False, server_default=""),
    sa.Column("session_id", sa.Text, nullable=False, server_default=""),
)

PRESET_FIELDS = ("preset", "style", "template", "genre", "form")  # params that name a preset
PROMPT_FIELDS = ("prompt", "text", "premise", "subject", "caption")  # params that carry the request


# --------------------------------------------------------------------------------------------
# Describing an output: what every rating row carries.
# --------------------------------------------------------------------------------------------
def describe_output(record: Mapping[str, Any], load_fields: Sequence[str] = ("model",)) -> dict[str, Any]:
    """Normalise an asset record / provenance dict into the columns a rating stores."""
    params = dict(record.get("params") or {})
    sha = str(record.get("sha256") or "")
    path = record.get("path")
    if len(sha) != 64 and path and Path(str(path)).is_file():  # an embedded record: hash the file itself
        from generators.base import file_sha256

        sha = file_sha256(str(path))
    if len(sha) != 64:
        raise InvalidInput("this output has no sha256 in its record, so it cannot be rated")
    model = ",".join(f"{k}={params[k]}" for k in load_fields if params.get(k)) or "default"
    preset = next((str(params[k]) for k in PRESET_FIELDS if params.get(k) not in (None, "")), "")
    prompt = next((str(params[k]) for k in PROMPT_FIELDS if isinstance(params.get(k), str) and params[k]),
                  "")
    return {"asset_sha256": sha, "asset_path": str(record.get("path") or ""),
            "generator": str(record.get("generator") or ""), "model": model, "preset": preset,
            "params": params, "seed": record.get("seed"),
            "weights_sha256": str(record.get("weights_sha256") or ""), "prompt": prompt}


def variant_label(info: Mapping[str, Any]) -> str:
    """The thing A/B rankings compare: generator, model and preset (not the seed)."""
    label = f"{info['generator']}/{info['model']}"
    return f"{label}/{info['preset']}" if info.get("preset") else label


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _check_text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    if len(value) > limit:
        raise InvalidInput(f"{what} is too long: {len(value)} characters, the limit is {limit}")
    return value


def _check_tags(tags: Iterable[str] | str | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [t for t in (s.strip() for s in tags.split(",")) if t]
    out: list[str] = []
    for tag in tags:
        tag = _check_text(str(tag).strip(), "a tag", MAX_TAG_LENGTH)
        if tag and tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags per rating, got {len(out)}")
    return out


# --------------------------------------------------------------------------------------------
# Engines: SQLite tuned for many writers, PostgreSQL as given.
# --------------------------------------------------------------------------------------------
def sqlite_url(path: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(path)}"


def make_engine(url: str) -> sa.Engine:
    """An engine; for SQLite: WAL, busy timeout, and `BEGIN IMMEDIATE` for write transactions."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, future=True)
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60}, future=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's is deferred)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")  # WAL: a returned commit survives a crash of the app
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# Alembic runs env.py through module-global proxies (`alembic.context`, `alembic.op`), so two
# threads migrating at once (two stores opening, e.g. one in a background warm-up) trip over each
# other ("KeyError: 'config'"): one migration per process at a time.
_MIGRATING = threading.Lock()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision`, one process and one thread at a time."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # configparser treats "%" as interpolation: escape it (URL-encoded hosts and passwords have it)
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    with _write_conn(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7305120)")  # serialise migrators
        cfg.attributes["connection"] = conn
        with _MIGRATING:
            command.upgrade(cfg, revision)


class _WriterLock:
    """One SQLite writer at a time across threads and processes, woken as soon as it is free.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so many processes contending
    for `BEGIN IMMEDIATE` waste most of their time asleep; an flock queue hands the write lock
    over at once. `busy_timeout` stays as the safety net for writers outside the studio.
    """

    _locks: dict[str, "_WriterLock"] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread_lock = threading.Lock()
        self.fd: int | None = None

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> "_WriterLock | None":
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:":
            return None
        with cls._guard:
            lock = cls._locks.get(database)
            if lock is None:
                path = Path(database).expanduser().resolve()
                lock = cls._locks[database] = cls(path.with_name(path.name + ".writelock"))
            return lock

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.thread_lock:
            if self.fd is None or os.getpid() != getattr(self, "pid", None):
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                self.pid = os.getpid()
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)


@contextmanager
def _write_conn(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside one write transaction (SQLite: BEGIN IMMEDIATE), committed on exit."""
    lock = _WriterLock.for_engine(engine)
    with lock.held() if lock else nullcontext():
        with engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn


# --------------------------------------------------------------------------------------------
# The store.
# --------------------------------------------------------------------------------------------
class FeedbackStore:
    """Append-only feedback on studio outputs. Thread-safe; several processes may share one file."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            upgrade(self.engine)

    @classmethod
    def for_settings(cls, settings: Any) -> "FeedbackStore":
        """The store a `studio.config.Settings` names (SQLite in its home unless a URL is set)."""
        url = getattr(settings, "database_url", "") or sqlite_url(Path(settings.home) / "feedback.db")
        return cls(url)

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------
    def rate(self, record: Mapping[str, Any], *, stars: int | None = None, thumb: int | None = None,
             tags: Iterable[str] | str | None = None, comment: str = "", user: str = "",
             session: str = "", uid: str | None = None, load_fields: Sequence[str] = ("model",)) -> str:
        """Store one rating of the output `record` describes; return its uid once committed."""
        info = describe_output(record, load_fields)
        if stars is not None:
            if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
                raise InvalidInput(f"stars must be a whole number from 1 to 5, got {stars!r}")
        if thumb is not None and thumb not in (-1, 1):
            raise InvalidInput(f"thumb must be 1 (up) or -1 (down), got {thumb!r}")
        tag_list = _check_tags(tags)
        comment = _check_text(comment or "", "the comment", MAX_COMMENT)
        if stars is None and thumb is None and not tag_list and not comment.strip():
            raise InvalidInput("give stars, a thumb, a tag or a comment before saving")
        uid = uid or str(uuid.uuid4())
        row = {"uid": uid, "created": _now(), "asset_sha256": info["asset_sha256"],
               "asset_path": info["asset_path"], "generator": info["generator"], "model": info["model"],
               "preset": info["preset"], "params": json.dumps(info["params"], sort_keys=True),
               "seed": info["seed"], "weights_sha256": info["weights_sha256"], "user_id": user or "",
               "session_id": session or "", "stars": stars, "thumb": thumb,
               "tags": json.dumps(tag_list), "comment": comment}
        self._insert(ratings, row)
        return uid

    def compare(self, a: Mapping[str, Any], b: Mapping[str, Any], winner: str, *, user: str = "",
                session: str = "", uid: str | None = None, load_fields: Sequence[str] = ("model",)) -> str:
        """Store one blind A/B vote ("a", "b" or "tie") between two outputs of one request."""
        if winner not in ("a", "b", "tie"):
            raise InvalidInput(f"the vote must be 'a', 'b' or 'tie', got {winner!r}")
        ia, ib = describe_output(a, load_fields), describe_output(b, load_fields)
        if ia["asset_sha256"] == ib["asset_sha256"]:
            raise InvalidInput("an A/B vote needs two different outputs")
        if ia["generator"] != ib["generator"]:
            raise InvalidInput("an A/B vote compares two outputs of the same generator")
        uid = uid or str(uuid.uuid4())
        row = {"uid": uid, "created": _now(), "generator": ia["generator"], "prompt": ia["prompt"],
               "params": json.dumps(ia["params"], sort_keys=True), "a_sha256": ia["asset_sha256"],
               "b_sha256": ib["asset_sha256"], "a_path": ia["asset_path"], "b_path": ib["asset_path"],
               "a_variant": variant_label(ia), "b_variant": variant_label(ib), "a_seed": ia["seed"],
               "b_seed": ib["seed"], "a_weights_sha256": ia["weights_sha256"],
               "b_weights_sha256": ib["weights_sha256"], "winner": winner, "user_id": user or "",
               "session_id": session or ""}
        self._insert(comparisons, row)
        return uid

    def _insert(self, table: sa.Table, row: dict[str, Any]) -> None:
        try:
            with _write_conn(self.engine) as conn:
                conn.execute(table.insert(), row)  # bound parameters: compiled once, cached
        except sa.exc.IntegrityError as exc:
            if "uid" in str(exc.orig).lower() and self._exists(table, row["uid"]):
                return  # the same save sent twice: already stored, nothing lost or doubled
            raise InvalidInput(f"the database refused this feedback: {exc.orig}") from None

    def _exists(self, table: sa.Table, uid: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(table.c.id).where(table.c.uid == uid)).first() is not None

    # -- reading ---------------------------------------------------------------------------
    # `user`: only that user's feedback (a private studio shows each creator their own); None: all.
    def iter_ratings(self, *, generator: str | None = None, user: str | None = None) -> Iterator[dict[str, Any]]:
        return self._rows(ratings, generator, user)

    def iter_comparisons(self, *, generator: str | None = None,
                         user: str | None = None) -> Iterator[dict[str, Any]]:
        return self._rows(comparisons, generator, user)

    def _rows(self, table: sa.Table, generator: str | None, user: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows of `table` in insertion order, optionally for one generator and one user, decoded."""
        query = sa.select(table).order_by(table.c.id)
        if generator:
            query = query.where(table.c.generator == generator)
        if user is not None:
            query = query.where(table.c.user_id == user)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield _decode(dict(row))

    def count(self, *, user: str | None = None) -> dict[str, int]:
        def n(table: sa.Table) -> Any:
            query = sa.select(sa.func.count()).select_from(table)
            return query if user is None else query.where(table.c.user_id == user)

        with self.engine.connect() as conn:
            return {"ratings": conn.execute(n(ratings)).scalar_one(),
                    "comparisons": conn.execute(n(comparisons)).scalar_one()}

    def ratings_for(self, sha256s: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Per output sha256: number of star ratings, mean stars, thumbs up/down."""
        shas = list(dict.fromkeys(sha256s))
        if not shas:
            return {}
        query = (sa.select(ratings.c.asset_sha256, sa.func.count(ratings.c.stars), sa.func.avg(ratings.c.stars),
                           sa.func.sum(sa.case((ratings.c.thumb == 1, 1), else_=0)),
                           sa.func.sum(sa.case((ratings.c.thumb == -1, 1), else_=0)))
                 .where(ratings.c.asset_sha256.in_(shas)).group_by(ratings.c.asset_sha256))
        with self.engine.connect() as conn:
            return {sha: {"n": int(n), "mean": float(mean) if mean is not None else None,
                          "up": int(up or 0), "down": int(down or 0)}
                    for sha, n, mean, up, down in conn.execute(query)}

    def summary(self, by: Sequence[str] = ("generator", "model", "preset"), *,
                user: str | None = None) -> list[dict[str, Any]]:
        """Mean stars with a 95% t-interval, thumbs-up share with a Wilson interval, per group."""
        allowed = {"generator", "model", "preset", "weights_sha256"}
        if not by or set(by) - allowed:
            raise InvalidInput(f"group feedback by some of {', '.join(sorted(allowed))}")
        groups: dict[tuple, dict[str, list]] = {}
        for row in self.iter_ratings(user=user):
            key = tuple(row[k] for k in by)
            g = groups.setdefault(key, {"stars": [], "thumbs": []})
            if row["stars"] is not None:
                g["stars"].append(row["stars"])
            if row["thumb"] is not None:
                g["thumbs"].append(row["thumb"])
        out = []
        for key, g in sorted(groups.items()):
            mean, lo, hi = mean_ci(g["stars"])
            up = sum(1 for t in g["thumbs"] if t == 1)
            share, slo, shi = wilson(up, len(g["thumbs"]))
            out.append({**dict(zip(by, key)), "n_stars": len(g["stars"]), "mean_stars": mean,
                        "stars_ci_low": lo, "stars_ci_high": hi, "n_thumbs": len(g["thumbs"]),
                        "thumbs_up_share": share, "up_ci_low": slo, "up_ci_high": shi})
        return out

    def ranking(self, *, generator: str | None = None, user: str | None = None) -> list[dict[str, Any]]:
        """Bradley-Terry strengths of variants from A/B votes (ties = half a win each way)."""
        votes = [c for c in self.iter_comparisons(generator=generator, user=user)
                 if c["a_variant"] != c["b_variant"]]
        return bradley_terry(votes)

    # -- exports (atomic) ------------------------------------------------------------------
    def export_jsonl(self, path: str | os.PathLike[str], *, user: str | None = None) -> int:
        """Every rating and vote (of `user`, if given), one JSON object a line (`"type"`: "rating"
        or "comparison")."""
        def write(fh: io.TextIOBase) -> int:
            n = 0
            for row in self.iter_ratings(user=user):
                fh.write(json.dumps({"type": "rating", **_jsonable(row)}, sort_keys=True) + "\n")
                n += 1
            for row in self.iter_comparisons(user=user):
                fh.write(json.dumps({"type": "comparison", **_jsonable(row)}, sort_keys=True) + "\n")
                n += 1
            return n
        return atomic_export(path, write)

    def export_csv(self, path: str | os.PathLike[str], *, user: str | None = None) -> int:
        """The ratings (of `user`, if given) as CSV (JSON-encoded params and tags), one row each."""
        columns = [c.name for c in ratings.columns]

        def write(fh: io.TextIOBase) -> int:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            n = 0
            for row in self.iter_ratings(user=user):
                flat = _jsonable(row)
                flat["params"] = json.dumps(flat["params"], sort_keys=True)
                flat["tags"] = json.dumps(flat["tags"])
                writer.writerow(flat)
                n += 1
            return n
        return atomic_export(path, write, newline="")

    def export_dpo(self, path: str | os.PathLike[str], *, user: str | None = None) -> int:
        """Preference pairs `{"prompt", "chosen", "rejected"}` for TRL's `DPOTrainer`.

        Ties carry no preference and are left out. Text outputs are inlined; other outputs
        are given by their file path.
        """
        def write(fh: io.TextIOBase) -> int:
            n = 0
            for c in self.iter_comparisons(user=user):
                if c["winner"] == "tie":
                    continue
                win, lose = ("a", "b") if c["winner"] == "a" else ("b", "a")
                prompt = c["prompt"] or json.dumps(c["params"], sort_keys=True)
                pair = {"prompt": prompt, "chosen": _output_content(c[f"{win}_path"]),
                        "rejected": _output_content(c[f"{lose}_path"])}
                fh.write(json.dumps(pair, ensure_ascii=False) + "\n")
                n += 1
            return n
        return atomic_export(path, write)


# --------------------------------------------------------------------------------------------
# Statistics.
# --------------------------------------------------------------------------------------------
def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """Mean and a Student-t confidence interval (None where undefined)."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = sum(values) / n
    if n == 1:
        return mean, None, None
    from scipy.special import stdtrit  # Student-t quantile; lighter to import than scipy.stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stdtrit(n - 1, 0.5 + level / 2)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float | None, float | None, float | None]:
    """Share and Wilson score interval (Wilson, 1927) for a binomial proportion."""
    if n == 0:
        return None, None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, centre - half, centre + half


def bradley_terry(votes: Sequence[Mapping[str, Any]], alpha: float = 0.01) -> list[dict[str, Any]]:
    """Fit Bradley-Terry strengths with choix's I-LSR; rows sorted best first.

    `alpha` is a small regulariser so a variant that never lost still gets a finite score.
    """
    items = sorted({v["a_variant"] for v in votes} | {v["b_variant"] for v in votes})
    if not items:
        return []
    index = {name: i for i, name in enumerate(items)}
    data: list[tuple[int, int]] = []
    wins = {name: 0.0 for name in items}
    games = {name: 0 for name in items}
    for v in votes:
        a, b = index[v["a_variant"]], index[v["b_variant"]]
        games[v["a_variant"]] += 1
        games[v["b_variant"]] += 1
        if v["winner"] == "a":
            data.append((a, b))
            wins[v["a_variant"]] += 1
        elif v["winner"] == "b":
            data.append((b, a))
            wins[v["b_variant"]] += 1
        else:  # a tie: half a win each way
            data += [(a, b), (b, a)]
            wins[v["a_variant"]] += 0.5
            wins[v["b_variant"]] += 0.5
    if len(items) == 1:
        strengths = [0.0]
    else:
        import choix

        strengths = [float(s) for s in choix.ilsr_pairwise(len(items), data, alpha=alpha)]
    rows = [{"variant": name, "strength": strengths[index[name]], "wins": wins[name], "games": games[name]}
            for name in items]
    rows.sort(key=lambda r: -r["strength"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


# --------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------
def atomic_export(path: str | os.PathLike[str], write: Callable[[io.TextIOBase], int],
                  newline: str | None = None) -> int:
    """Write through `write(fh)` into a hidden temp file beside `path`, fsync, rename over it.

    A crash midway leaves the previous export untouched (and at worst a stale temp file, which
    the next export removes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline=newline) as fh:
            n = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def _output_content(path: str) -> str:
    p = Path(path)
    if p.suffix.lower() in TEXT_SUFFIXES and p.is_file():
        try:
            return p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    return path


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("params", "tags"):
        if key in row and isinstance(row[key], str):
            try:
                row[key] = json.loads(row[key])
            except json.JSONDecodeError:
                pass
    created = row.get("created")
    if isinstance(created, _dt.datetime) and created.tzinfo is None:  # SQLite drops the zone
        row["created"] = created.replace(tzinfo=_dt.timezone.utc)
    return row


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, _dt.datetime) else v) for k, v in row.items()}
