"""Story adapters per creator: preference pairs from their own feedback, training as a studio job,
their adapters listed (with why one is unavailable), and the one they chose for their story jobs.

Pairs (for DPO, generators/story_dpo.py) come from this creator's story feedback only:
- two rated story outputs written from the same request (same document, prompt, mode, bible;
  the sampling settings and seed may differ) with different scores: the higher one is chosen;
- a blind A/B vote between two such outputs: the winner is chosen (ties say nothing).
The passage is what the model wrote (the output's text minus the document it was given), and the
request goes with it so the trainer rebuilds the exact prompt the model saw.

An adapter is an output of the `story_dpo` job, owned by the creator who trained it (so the
gallery, deletion and the input gate treat it like any output). The creator's choice is kept in
<home>/adapters/<user>/selected.json and applied to their story jobs that do not name an adapter
themselves; choosing none (or deleting the adapter) restores the base model. Identity is the same
as the outputs' owner (studio.taste.taste_user): one creator's adapter never steers another's jobs.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from generators.base import InvalidInput, StudioError

GENERATOR = "story_dpo"
# Story parameters that do not change what was asked for: outputs differing only in these are
# answers to the same request, so the creator's preference between them is a preference pair.
SAMPLING_KEYS = {"temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "stop", "max_attempts",
                 "model", "quantize", "adapter", "parent", "alternatives", "guided"}
TEXT_SUFFIXES = (".md", ".fountain", ".txt")
MIN_PAIRS = 4
TRAIN_TIMEOUT_S = 3600.0  # a training job's time limit (generation jobs keep settings.job_timeout_s)


def _safe(user: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", user)[:80] or "local"


def request_key(params: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in params.items() if k not in SAMPLING_KEYS}, sort_keys=True, default=str)


def passage_of(path: Path, params: Mapping[str, Any]) -> str | None:
    """What the model wrote in this output: its text minus the document it was given (None when
    the output does not continue that document, e.g. a rewrite in the middle)."""
    from studio.features.text import new_passage

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    given = str(params.get("text") or "")
    passage = new_passage(text, given)
    return passage if passage and (not given.strip() or passage != new_passage(text)) else None


class Adapters:
    """The story adapters of every creator of one studio (files are studio outputs)."""

    def __init__(self, studio: Any) -> None:
        self.studio = studio
        self.root = Path(studio.settings.home) / "adapters"

    # -- pairs ------------------------------------------------------------------------------------
    def pairs(self, user: str | None) -> list[dict[str, Any]]:
        """This creator's story preference pairs: {request, chosen, rejected} (see the module doc)."""
        from studio.taste import THUMB_SCORE, taste_user

        user = taste_user(user)
        taste = self.studio.taste
        outputs: dict[str, dict[str, Any]] = {}  # sha -> {path, params, scores}
        for row in taste.feedback.iter_ratings(generator="story"):
            if taste_user(row["user_id"]) != user:
                continue
            score = []
            if row["stars"] is not None:
                score.append(float(row["stars"]) - 3.0)
            if row["thumb"] is not None:
                score.append(THUMB_SCORE * row["thumb"])
            if score:
                item = outputs.setdefault(row["asset_sha256"], {"path": row["asset_path"], "params": row["params"],
                                                                "scores": []})
                item["scores"] += score
        groups: dict[str, list[dict[str, Any]]] = {}
        for sha, item in outputs.items():
            if isinstance(item["params"], dict) and Path(item["path"]).suffix.lower() in TEXT_SUFFIXES:
                groups.setdefault(request_key(item["params"]), []).append({**item, "sha": sha})
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for key, items in groups.items():
            for i, a in enumerate(items):
                for b in items[i + 1:]:
                    sa, sb = (sum(x["scores"]) / len(x["scores"]) for x in (a, b))
                    if abs(sa - sb) > 1e-9:
                        hi, lo = (a, b) if sa > sb else (b, a)
                        found[(hi["sha"], lo["sha"])] = self._pair(hi["path"], lo["path"], hi["params"])
        for c in taste.feedback.iter_comparisons(generator="story"):
            if taste_user(c["user_id"]) != user or c["winner"] == "tie" or not isinstance(c["params"], dict):
                continue
            win, lose = ("a", "b") if c["winner"] == "a" else ("b", "a")
            if Path(c[f"{win}_path"]).suffix.lower() in TEXT_SUFFIXES:
                found[(c[f"{win}_sha256"], c[f"{lose}_sha256"])] = self._pair(c[f"{win}_path"], c[f"{lose}_path"],
                                                                              c["params"])
        return [p for p in found.values() if p is not None]

    def _pair(self, chosen: str, rejected: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        resolve = self.studio.taste._resolve
        a, b = passage_of(Path(resolve(chosen)), params), passage_of(Path(resolve(rejected)), params)
        if not a or not b or a == b:
            return None
        request = {k: v for k, v in params.items() if k not in SAMPLING_KEYS or k == "model"}
        return {"request": request, "chosen": a, "rejected": b}

    # -- training ---------------------------------------------------------------------------------
    def train(self, user: str | None, *, name: str = "my taste", origin: str = "local",
              options: Mapping[str, Any] | None = None) -> Any:
        """Queue a DPO job on this creator's pairs; returns the Job (progress events, cancel)."""
        from studio.feedback import atomic_export
        from studio.taste import taste_user

        owner = taste_user(user)
        pairs = self.pairs(owner)
        if len(pairs) < MIN_PAIRS:
            raise InvalidInput(f"{len(pairs)} story preference pair(s) so far; training an adapter needs at least "
                               f"{MIN_PAIRS}. Rate several passages written from the same request (Regenerate or "
                               "Branch, then rate), or vote in A/B comparisons")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.root / _safe(owner) / f"pairs-{stamp}.jsonl"
        atomic_export(path, lambda fh: sum(1 for p in pairs if fh.write(json.dumps(p, ensure_ascii=False) + "\n")))
        params = {**dict(options or {}), "pairs_file": str(path), "name": name}
        # Training outlasts the studio's generation time limit (200 pairs: ~7 CPU-minutes, longer on a
        # busy machine, bench_dpo.py): give it an hour unless the studio allows more; cancel still works.
        timeout = max(float(self.studio.settings.job_timeout_s), TRAIN_TIMEOUT_S)
        return self.studio.submit(GENERATOR, params, user=None if owner == "local" else owner, origin="local",
                                  timeout=timeout)

    # -- listing and choosing ---------------------------------------------------------------------
    def list(self, user: str | None) -> list[dict[str, Any]]:
        """This creator's adapters, newest first, each checked: {path, name, available, reason, ...}."""
        from generators.story_lib import adapter as lora
        from studio.taste import taste_user

        owner = taste_user(user)
        rows = []
        for rec in self.studio.assets.history(generator=GENERATOR, limit=200):
            if taste_user(rec.get("owner")) != owner:
                continue
            path = Path(rec["path"])
            if not path.is_absolute():
                path = self.studio.assets.root / path
            row = {"path": str(path), "name": rec.get("label") or path.name, "created": rec.get("created"),
                   "available": True, "reason": None}
            try:
                found = lora.read(path)
                row.update(sha256=found["sha256"], pairs=found["recipe"].get("pairs"),
                           train_seconds=found["recipe"].get("train_seconds"))
            except StudioError as exc:
                row.update(available=False, reason=str(exc))
            rows.append(row)
        return rows

    def _selected_file(self, owner: str) -> Path:
        return self.root / _safe(owner) / "selected.json"

    def selected(self, user: str | None) -> str | None:
        """The adapter this creator chose for their story jobs (None: the base model)."""
        from studio.taste import taste_user

        path = self._selected_file(taste_user(user))
        try:
            chosen = json.loads(path.read_text()).get("path") if path.is_file() else None
        except (OSError, json.JSONDecodeError):
            return None
        return chosen if chosen and Path(chosen).is_file() else None  # deleted: the base again

    def select(self, user: str | None, path: str | None) -> str | None:
        """Choose one of this creator's adapters (or None: the base model) for their story jobs."""
        from studio.feedback import atomic_export
        from studio.taste import taste_user

        owner = taste_user(user)
        if path:
            mine = {r["path"]: r for r in self.list(owner)}
            row = mine.get(str(path))
            if row is None:
                raise InvalidInput("that adapter is not one of yours; train one from your ratings first")
            if not row["available"]:
                raise InvalidInput(row["reason"])
        atomic_export(self._selected_file(owner), lambda fh: fh.write(json.dumps({"path": path or None})) and 1)
        return path or None

    def apply(self, user: str | None, params: Any, origin: str = "local") -> tuple[Any, dict[str, Any] | None]:
        """Story params with this creator's chosen adapter (unless the request names one itself), and
        the provenance block naming the adapter the job will use (file name and sha256), or None.
        A browser or HTTP client may name only an adapter of its own user."""
        from studio.taste import taste_user

        if isinstance(params, Mapping) and "adapter" not in params:
            chosen = self.selected(user)
            if chosen:
                params = {**params, "adapter": chosen}
        path = params.get("adapter") if isinstance(params, Mapping) else getattr(params, "adapter", "")
        if not path or not Path(path).is_file():
            return params, None  # none; a missing file fails in the job with the reason
        if origin != "local" and taste_user(self.studio.assets.owner_of(path)) != taste_user(user):
            raise InvalidInput("that story adapter is not one of yours; train one from your ratings")
        from generators.base import file_sha256

        return params, {"file": Path(path).name, "sha256": file_sha256(path), "method": "dpo-lora"}


def events_text(job: Any) -> Iterator[str]:  # pragma: no cover - a convenience for the CLI
    for event in job.events():
        if getattr(event, "message", None):
            yield event.message
