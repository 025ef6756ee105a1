"""The output store: server-named files, a JSON provenance sidecar each, the record embedded.

A job's files, sidecars and index line land as one unit (a journal, hidden temp files, renames,
then the index line; `sweep()` at start finishes or undoes whatever a crash interrupted), so a
crash or a bad output never leaves a half-written file or a file without its provenance.
An append-only `index.jsonl` makes history survive restarts without scanning the tree.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from generators.base import InvalidInput, Output, Result
from studio import embed
from studio.version import code_version

SIDECAR_SUFFIX = ".json"
JOURNAL_SUFFIX = ".pending"  # <day>/.<group>.pending: the files one write is about to make
PROVENANCE_FORMAT = "studio-provenance/1"


@dataclass(frozen=True)
class Restored:
    """What `restore(path)` gives back: enough to run the same generation again.

    `source` says where the recipe came from ("sidecar" or "embedded"); `note` is a sentence
    for the creator when something is off (the file was edited after the studio wrote it).
    """

    generator: str
    params: dict[str, Any]
    seed: int | None
    record: dict[str, Any]
    source: str = "sidecar"
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"generator": self.generator, "params": self.params, "seed": self.seed, "record": self.record,
                "source": self.source, "note": self.note}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_asset_id() -> str:
    """Sortable by time, unique without coordination: yyyymmddThhmmss-<16 hex>. The file route
    serves an output to whoever names its path, so the 64 random bits are what keeps one
    creator's files from being found by another (with the index and sidecars never served)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(8)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` whole or not at all (a crash leaves the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _write_synced(tmp, data)
    os.replace(tmp, path)


def _to_bytes(output: Output) -> bytes:
    data = output.data
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if hasattr(data, "save") and hasattr(data, "mode"):  # a PIL image
        if output.suffix != ".png":
            raise InvalidInput(f"an image output must be written as .png, not {output.suffix}")
        return embed.png_bytes(data)
    raise TypeError(f"output data must be bytes, str or a PIL image, got {type(data).__name__}")


_SAFE = re.compile(r"[^a-z0-9_-]+")


class AssetStore:
    """Writes and finds studio outputs under `root` (the studio home's outputs folder)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.index_path = self.root / "index.jsonl"
        self._lock = threading.Lock()
        self._lookup = _IndexLookup(self.index_path)

    # -- writing -------------------------------------------------------------------------
    def write(self, result: Result, base_record: dict[str, Any], owner: str | None = None) -> list[Path]:
        """Write every output of `result` with its provenance; return the paths (main first).

        `base_record` carries generator, params, seed, weights sha256, parents, timings and job
        id. Each file gets its own id, role and sha256 on top. `owner` (who asked) goes only into
        the index, which is never served: the files and sidecars name no user.

        One unit: a journal naming every final file is written first (and held locked), then
        each file and sidecar lands under a hidden temp name, then all are renamed, the index
        line is appended, and the journal goes. A crash at any point leaves a journal that
        `sweep()` completes (everything was written) or rolls back (it was not), so no output
        ever exists without its sidecar and index entry.
        """
        day = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
        folder = self.root / day
        folder.mkdir(parents=True, exist_ok=True)
        group = new_asset_id()
        written: list[Path] = []
        records: list[dict[str, Any]] = []
        blobs: list[tuple[Path, bytes]] = []
        for index, output in enumerate(result.outputs):
            role = _SAFE.sub("-", output.role.lower()).strip("-") or "out"
            generator = _SAFE.sub("-", str(base_record.get("generator", "out")).lower())
            asset_id = f"{group}-{index}"
            path = folder / f"{generator}-{asset_id}-{role}{output.suffix}"
            record = {"format": PROVENANCE_FORMAT, **base_record, **code_version(), "id": asset_id,
                      "group": group, "role": output.role, "label": output.label, "file": path.name,
                      "created": _now(), "ai_generated": True}
            if output.extra.get("parameters"):
                record["parameters"] = output.extra["parameters"]
            data = embed.embed(output.suffix, _to_bytes(output), record, output.extra)
            written.append(path)
            blobs.append((path, data))
            records.append({**record, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                            "siblings": []})
        names = [p.name for p in written]
        for path, sidecar in zip(written, records):
            sidecar["siblings"] = [n for n in names if n != path.name]
            blobs.append((path.with_name(path.name + SIDECAR_SUFFIX),
                          json.dumps(sidecar, indent=1, sort_keys=True).encode()))
        journal = folder / f".{group}{JOURNAL_SUFFIX}"
        temps: list[tuple[Path, Path]] = []
        with open(journal, "w", encoding="utf-8") as jf:
            fcntl.flock(jf, fcntl.LOCK_EX)  # held until done: a sweep never touches a live write
            json.dump({"files": [str(p.relative_to(self.root)) for p, _ in blobs], "owner": owner}, jf)
            jf.flush()
            os.fsync(jf.fileno())
            try:
                for path, data in blobs:
                    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
                    temps.append((tmp, path))
                    _write_synced(tmp, data)
                for tmp, path in temps:  # sidecars are renamed after their files (blobs order)
                    os.replace(tmp, path)
                self._append_index(records, written, owner)
            except BaseException:
                for tmp, path in temps:
                    tmp.unlink(missing_ok=True)
                    path.unlink(missing_ok=True)
                journal.unlink(missing_ok=True)
                raise
            journal.unlink()
        return written

    def sweep(self) -> dict[str, int]:
        """Finish or undo writes a crash interrupted (see `write`); remove stray temp files.

        Run at start. Returns counts: {"completed", "rolled_back", "temps"}."""
        counts = {"completed": 0, "rolled_back": 0, "temps": 0}
        indexed: set[str] | None = None
        for journal in sorted(self.root.glob(f"*/.*{JOURNAL_SUFFIX}")):
            try:
                jf = open(journal, "r+", encoding="utf-8")
            except OSError:
                continue
            with jf:
                try:
                    fcntl.flock(jf, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # another process is writing this group right now
                try:
                    plan = json.loads(jf.read() or "{}")
                except json.JSONDecodeError:
                    plan = {}  # the crash came while writing the journal: nothing was renamed yet
                files = [self.root / f for f in plan.get("files", [])]
                if files and all(f.is_file() for f in files):
                    if indexed is None:
                        indexed = {str(Path(r["path"]).relative_to(self.root)) for r in self.records()}
                    mains = [f for f in files if not f.name.endswith(SIDECAR_SUFFIX)]
                    missing = [f for f in mains if str(f.relative_to(self.root)) not in indexed]
                    if missing:
                        recs = [json.loads(f.with_name(f.name + SIDECAR_SUFFIX).read_text()) for f in missing]
                        self._append_index(recs, missing, plan.get("owner"))
                    counts["completed"] += 1
                else:
                    for f in files:
                        f.unlink(missing_ok=True)
                    counts["rolled_back"] += 1
                journal.unlink(missing_ok=True)
        for tmp in self.root.glob("*/.*.tmp"):
            tmp.unlink(missing_ok=True)
            counts["temps"] += 1
        return counts

    def _append_index(self, records: list[dict[str, Any]], paths: list[Path], owner: str | None = None) -> None:
        extra = {"owner": owner} if owner else {}
        self._append_lines("".join(json.dumps({**rec, **extra, "path": str(p.relative_to(self.root))},
                                              sort_keys=True) + "\n" for rec, p in zip(records, paths)))

    def _append_lines(self, lines: str) -> None:
        """Append whole index lines, durably, under a lock other studio processes honour too."""
        with self._lock, open(self.index_path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # several studio processes may share one home
            try:
                fh.write(lines)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- reading -------------------------------------------------------------------------
    def records(self) -> Iterator[dict[str, Any]]:
        """Every indexed asset that still exists, oldest first."""
        if not self.index_path.exists():
            return
        with open(self.index_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash; the files themselves are intact
                path = self.root / rec.get("path", "")
                if path.is_file():
                    rec["path"] = str(path)
                    yield rec

    def records_newest_first(self) -> Iterator[dict[str, Any]]:
        """Every indexed record, newest first, read from the end of the index as needed, so a
        page of recent history costs the page, not the whole index (3.8 s at 50,000 outputs
        when it was read whole). Unlike `records()`, files are not checked here: callers check
        the few they keep."""
        for line in _lines_from_end(self.index_path):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash

    def history(self, *, generator: str | None = None, text: str | None = None, seed: int | None = None,
                limit: int = 100, main_only: bool = False, owner: str | None = None) -> list[dict[str, Any]]:
        """Newest first; with `owner`, only that user's outputs."""
        needle = text.lower() if text else None
        out: list[dict[str, Any]] = []
        for rec in self.records_newest_first():
            if owner is not None and rec.get("owner") != owner:
                continue
            if generator and rec.get("generator") != generator:
                continue
            if seed is not None and rec.get("seed") != seed:
                continue
            if main_only and not rec.get("id", "").endswith("-0"):
                continue
            if needle and needle not in json.dumps(rec.get("params", {})).lower() \
                    and needle not in rec.get("file", "").lower():
                continue
            path = self.root / rec.get("path", "")
            if not path.is_file():  # deleted by hand since: the index outlives it
                continue
            rec["path"] = str(path)
            out.append(rec)
            if len(out) >= limit:
                break
        return out

    def owner_of(self, path: str | os.PathLike[str]) -> str | None:
        """Who made the output at `path` (from the index), or None if unknown."""
        try:
            rel = Path(os.path.realpath(path)).relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        return self._lookup.owner(rel)

    # -- deleting (with undo) ------------------------------------------------------------
    TRASH = ".trash"  # inside the outputs folder: a delete is a move, so it can be undone

    def delete(self, ref: str | os.PathLike[str]) -> dict[str, Any]:
        """Delete the whole job that wrote `ref`: its files, their sidecars and their index lines.

        Everything moves into `<outputs>/.trash/<group>/` (files and the removed index lines), so
        `undelete(group)` puts it all back. Returns {"group", "files"}.
        """
        path = self.resolve(ref)
        record = restore(path).record
        group = str(record.get("group") or "")
        if not group or not re.fullmatch(r"[0-9A-Za-z_-]+", group):
            raise InvalidInput(f"{path.name} has no job id in its record, so it cannot be deleted here")
        trash = self.root / self.TRASH / group
        with self._lock, open(self.index_path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                lines = fh.readlines()
                gone = [ln for ln in lines if _group_of(ln) == group]
                kept = [ln for ln in lines if _group_of(ln) != group]
                names = {json.loads(ln)["path"] for ln in gone}
                files = [self.root / n for n in names if (self.root / n).is_file()]
                if not files:
                    raise InvalidInput(f"nothing of job {group} is left to delete")
                trash.mkdir(parents=True, exist_ok=True)
                _atomic_write(trash / "index.jsonl", "".join(gone).encode())
                for f in files:
                    for p in (f, f.with_name(f.name + SIDECAR_SUFFIX)):
                        if p.exists():
                            rel = p.relative_to(self.root)
                            (trash / rel).parent.mkdir(parents=True, exist_ok=True)
                            os.replace(p, trash / rel)
                _atomic_write(self.index_path, "".join(kept).encode())
                self._lookup.reset()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return {"group": group, "files": [str(f) for f in sorted(files)]}

    def trashed_owner(self, group: str) -> str | None:
        """Who made the deleted job `group` (from its saved index lines), or None."""
        if not re.fullmatch(r"[0-9A-Za-z_-]+", group or ""):
            raise InvalidInput(f"{group!r} is not a job id")
        saved = self.root / self.TRASH / group / "index.jsonl"
        try:
            first = saved.read_text(encoding="utf-8").splitlines()[0]
            return json.loads(first).get("owner")
        except (OSError, IndexError, json.JSONDecodeError):
            return None

    def undelete(self, group: str) -> list[Path]:
        """Put a deleted job back: its files, sidecars and index lines. Returns the files."""
        if not re.fullmatch(r"[0-9A-Za-z_-]+", group or ""):
            raise InvalidInput(f"{group!r} is not a job id")
        trash = self.root / self.TRASH / group
        saved = trash / "index.jsonl"
        if not saved.is_file():
            raise InvalidInput(f"job {group} is not in the trash (already restored, or never deleted)")
        lines = saved.read_text(encoding="utf-8")
        restored = []
        for p in sorted(trash.rglob("*")):
            if p.is_file() and p != saved:
                target = self.root / p.relative_to(trash)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(p, target)
                if not target.name.endswith(SIDECAR_SUFFIX):
                    restored.append(target)
        self._append_lines(lines)
        import shutil

        shutil.rmtree(trash, ignore_errors=True)
        return restored

    def resolve(self, ref: str | os.PathLike[str]) -> Path:
        """A path inside the store for an asset id, relative path or absolute path; else refuse."""
        text = os.fspath(ref)
        rel = self._lookup.path_of(text)
        if rel is not None and (self.root / rel).is_file():
            return self.root / rel
        candidate = Path(text) if os.path.isabs(text) else self.root / text
        real = candidate.resolve()
        if not real.is_relative_to(self.root.resolve()) or not real.is_file():
            raise InvalidInput(f"{text!r} is not a studio output")
        return real


def _group_of(line: str) -> str:
    try:
        return str(json.loads(line).get("group") or "")
    except json.JSONDecodeError:
        return ""


MAX_SIDECAR_BYTES = embed.MAX_RECORD_BYTES


def _read_sidecar(sidecar: Path) -> dict[str, Any] | None:
    try:
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise InvalidInput(f"{sidecar.name} is far larger than any studio sidecar; it was not read")
        return embed.parse_record(sidecar.read_bytes(), "sidecar")
    except OSError:
        return None


def restore(path: str | os.PathLike[str]) -> Restored:
    """Generator, params and seed from any studio output: its sidecar, or the embedded record.

    A sidecar is trusted only while the file's sha256 still matches it; after an edit the
    embedded record (which travels with the file) is used and `note` says what happened.
    Foreign or hostile metadata raises InvalidInput with a sentence, in well under a second.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    note: str | None = None
    sidecar = _read_sidecar(path.with_name(path.name + SIDECAR_SUFFIX))
    if sidecar is not None and sidecar.get("sha256") and sidecar.get("sha256") != embed.file_sha256(path):
        note = (f"{path.name} was changed after the studio wrote it (its sha256 no longer matches "
                f"{path.name}{SIDECAR_SUFFIX})")
        embedded = embed.read_embedded(path)
        if embedded is not None:
            return _restored(embedded, "embedded", note + "; the recipe comes from the record inside the file")
        return _restored(sidecar, "sidecar", note + "; the recipe comes from the sidecar of the original")
    if sidecar is not None:
        return _restored(sidecar, "sidecar", None)
    embedded = embed.read_embedded(path)
    if embedded is None:
        raise InvalidInput(f"no studio provenance in this file: {path.name} carries no studio record "
                           "(was it made by the studio?)")
    return _restored(embedded, "embedded", None)


def _restored(record: dict[str, Any], source: str, note: str | None) -> Restored:
    generator, params, seed = record.get("generator"), record.get("params", {}), record.get("seed")
    if not record.get("format", PROVENANCE_FORMAT).startswith(embed.FORMAT_PREFIX) or generator is None:
        raise InvalidInput("no studio provenance in this file: its metadata is not a studio record")
    if not isinstance(generator, str) or not generator.strip() or len(generator) > 100:
        raise InvalidInput("the studio record in this file is damaged: its generator is not a name")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput("the studio record in this file is damaged: its params are not an object")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInput("the studio record in this file is damaged: its seed is not a whole number")
    return Restored(generator=generator, params=dict(params), seed=seed, record=record, source=source, note=note)


class _IndexLookup:
    """Output path -> owner and asset id -> path, kept in memory and brought up to date by reading
    only what was appended to the index since the last look (the index is append-only, except
    delete/undelete, which replace the file: a new inode, read again whole). Rating a file or
    serving a private one asks who owns it; reading the whole index for that cost seconds at
    50,000 outputs."""

    def __init__(self, index_path: Path) -> None:
        self.index_path = index_path
        self._lock = threading.Lock()
        self._inode: tuple[int, int] | None = None
        self._offset = 0
        self._owners: dict[str, str | None] = {}
        self._ids: dict[str, str] = {}

    def _refresh(self) -> None:
        try:
            st = os.stat(self.index_path)
        except FileNotFoundError:
            self._inode, self._offset, self._owners, self._ids = None, 0, {}, {}
            return
        inode = (st.st_dev, st.st_ino)
        if inode != self._inode or st.st_size < self._offset:  # replaced or rewritten: start over
            self._inode, self._offset, self._owners, self._ids = inode, 0, {}, {}
        if st.st_size == self._offset:
            return
        with open(self.index_path, "rb") as fh:
            if self._offset:  # a replaced index can reuse the old inode: our last line must still end here
                fh.seek(self._offset - 1)
                if fh.read(1) != b"\n":
                    self._offset, self._owners, self._ids = 0, {}, {}
            fh.seek(self._offset)
            data = fh.read(st.st_size - self._offset)
        complete = data.rfind(b"\n") + 1  # a line still being written waits for the next look
        for line in data[:complete].splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rel = rec.get("path")
            if isinstance(rel, str):
                self._owners[rel] = rec.get("owner")
                if rec.get("id"):
                    self._ids[str(rec["id"])] = rel
        self._offset += complete

    def reset(self) -> None:
        """The index was rewritten by this process (delete, undelete): read it again whole."""
        with self._lock:
            self._inode, self._offset, self._owners, self._ids = None, 0, {}, {}

    def owner(self, rel: str) -> str | None:
        with self._lock:
            self._refresh()
            return self._owners.get(rel)

    def path_of(self, asset_id: str) -> str | None:
        with self._lock:
            self._refresh()
            return self._ids.get(asset_id)


def _lines_from_end(path: Path, block: int = 1 << 16) -> Iterator[str]:
    """The lines of a text file, last first, reading it backwards in blocks (a line never splits:
    a block's partial first line waits for the block before it)."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        end = fh.seek(0, os.SEEK_END)
        tail = b""
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            chunk = fh.read(end - start) + tail
            end = start
            lines = chunk.split(b"\n")
            tail = lines.pop(0) if start > 0 else b""  # maybe the end of a line in the block before
            for raw in reversed(lines):
                if raw.strip():
                    yield raw.decode("utf-8", errors="replace")
        if tail.strip():
            yield tail.decode("utf-8", errors="replace")

