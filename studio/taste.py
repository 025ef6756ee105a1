"""Taste models: what one creator likes from one generator, learned from their own feedback.

Every rated output becomes a feature vector (`studio.features`: MiniLM for text, style vector +
colour/edges for images, symbolic features for MIDI, stroke features for sketches). Stars and
thumbs give each output a score; every two outputs with different scores, and every blind A/B
vote, give a preference pair. The model is the Bradley-Terry / RankNet-style linear utility
u(x) = w.x fitted by L2-regularised logistic regression on pair differences
P(a > b) = sigmoid(w.(x_a - x_b)) (Bradley & Terry 1952; Herbrich et al. 2000, "Large margin rank
boundaries"; scikit-learn's `LogisticRegression`). Held-out accuracy comes from K-fold
cross-validation over outputs (test pairs never share an output with training pairs), with a
Wilson interval.

Models are per user and per generator: rows are filtered by the rating's user before anything
is fitted, so one creator's ratings never steer another's outputs. The user is the same identity
that owns outputs (studio.ui.context.UIContext.user): the logged-in name, else the per-browser
cookie identity ("browser:..."), so without a login each browser is its own creator, exactly as
its gallery is its own. Only the Python API and the CLI without a user ("" or "local") are the
machine owner's "local" creator.

`best_of` asks a generator for N candidates and returns the k the creator's model likes most,
with the score and the liked outputs each one is nearest to. It stays off (candidates in
generation order, with the reason) until the creator has rated enough outputs with real
differences between them.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from generators.base import InvalidInput, StudioError, file_sha256
from studio.feedback import FeedbackStore, atomic_export, wilson
from studio.features import FEATURE_VERSION, FeatureExtractor, kind_for

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

MODEL_VERSION = 1  # the taste model's own code version; part of every model's version string
MIN_RATED = 10  # rated outputs (of one user and generator) before best-of-N reranks by default
MIN_PAIRS = 5  # preference pairs (distinct scores or decisive A/B votes) needed as well
DEFAULT_C = 0.1  # inverse L2 strength; chosen by cross-validation from C_GRID when the data is small
C_GRID = (0.01, 0.1, 1.0)
SELECT_C_MAX_ITEMS = 300  # above this many outputs the default C is used (keeps a refit under 1 s)
MAX_PAIRS = 6000  # pairs from ratings are subsampled (seeded) beyond this: the fit stays fast
VOTE_WEIGHT = 2.0  # an explicit A/B vote says more than a difference in stars
THUMB_SCORE = 1.5  # a thumb up/down counts like 4.5 / 1.5 stars
MAX_BEST_OF = 32
NEAREST = 3  # liked outputs named in each candidate's "why"
SETTINGS = ("auto", "on", "off")  # auto: rerank once there is signal; on: require it; off: never


def taste_user(user: str | None) -> str:
    """The creator a rating belongs to: the user that owns outputs (a login name, a browser's
    "browser:..." identity, a session); no user at all is the machine owner's "local" creator."""
    user = (user or "").strip()
    return user or "local"


@dataclass
class Item:
    """One rated output."""

    sha256: str
    path: str
    scores: list[float] = field(default_factory=list)  # one per star/thumb rating

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


@dataclass
class TrainingData:
    """A user's usable feedback for one generator, with what was left out and why."""

    user: str
    generator: str
    items: dict[str, Item]  # sha256 -> item (rated or voted on)
    votes: dict[tuple[str, str], int]  # (sha a, sha b) with a < b -> net votes for a (negative: b)
    n_ratings: int = 0
    n_votes: int = 0
    contradicted: int = 0  # output pairs whose votes cancel out
    missing: list[str] = field(default_factory=list)  # rated outputs no longer on disk / unreadable
    fingerprint: str = ""

    def rated(self) -> list[Item]:
        return [i for i in self.items.values() if i.scores]

    def pairs(self, rng_seed: int = 0) -> list[tuple[str, str, float]]:
        """(preferred sha, other sha, weight): rating differences (subsampled) and decisive votes."""
        import numpy as np

        rated = self.rated()
        out: list[tuple[str, str, float]] = []
        n = len(rated)
        total = n * (n - 1) // 2
        if total:
            rng = np.random.default_rng(rng_seed)
            if total <= MAX_PAIRS:
                idx = [(i, j) for i in range(n) for j in range(i + 1, n)]
            else:
                a = rng.integers(0, n, size=2 * MAX_PAIRS)
                b = rng.integers(0, n, size=2 * MAX_PAIRS)
                idx = list(dict.fromkeys((min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist()) if x != y))
                idx = idx[:MAX_PAIRS]
            for i, j in idx:
                si, sj = rated[i].score, rated[j].score
                if abs(si - sj) < 1e-9:
                    continue
                hi, lo = (rated[i], rated[j]) if si > sj else (rated[j], rated[i])
                out.append((hi.sha256, lo.sha256, min(abs(si - sj), 2.0)))
        for (a, b), net in self.votes.items():
            if net:
                out.append((a, b, VOTE_WEIGHT * abs(net)) if net > 0 else (b, a, VOTE_WEIGHT * abs(net)))
        return out


@dataclass
class TasteModel:
    """A fitted linear utility over standardised features."""

    user: str
    generator: str
    kind: str
    version: str
    mean: "np.ndarray"
    scale: "np.ndarray"
    coef: "np.ndarray"
    C: float
    shas: list[str]
    paths: list[str]
    item_scores: list[float | None]  # mean rating score (None: only voted on)
    Z: "np.ndarray"  # standardised features of the training outputs
    n_ratings: int
    n_votes: int
    n_pairs: int
    fit_seconds: float
    evaluation: dict[str, Any] = field(default_factory=dict)

    def standardise(self, X: "np.ndarray") -> "np.ndarray":
        return (X - self.mean) / self.scale

    def utility(self, X: "np.ndarray") -> "np.ndarray":
        return self.standardise(X) @ self.coef

    def explain(self, x: "np.ndarray", k: int = NEAREST) -> list[dict[str, Any]]:
        """The liked training outputs most similar to `x` (cosine over standardised features, each
        weighted by how much the model uses it)."""
        import numpy as np

        liked = [i for i, s in enumerate(self.item_scores) if s is not None and s > 0]
        if not liked:
            return []
        weight = np.abs(self.coef)  # similar in what this model cares about, not in every feature
        z = self.standardise(x[None])[0] * weight
        L = self.Z[liked] * weight
        sims = L @ z / (np.linalg.norm(L, axis=1) * max(float(np.linalg.norm(z)), 1e-9) + 1e-9)
        order = np.argsort(-sims)[:k]
        return [{"sha256": self.shas[liked[o]], "path": self.paths[liked[o]], "similarity": round(float(sims[o]), 3),
                 "rating_score": round(float(self.item_scores[liked[o]]), 2)} for o in order]

    def learned(self, k: int = 5) -> dict[str, list[dict[str, Any]]]:
        """The training outputs the model scores highest and lowest (what it has learned)."""
        import numpy as np

        u = self.Z @ self.coef
        order = np.argsort(-u)
        row = lambda i: {"sha256": self.shas[i], "path": self.paths[i], "utility": round(float(u[i]), 3),  # noqa: E731
                         "rating_score": None if self.item_scores[i] is None else round(self.item_scores[i], 2)}
        return {"liked": [row(i) for i in order[:k]], "disliked": [row(i) for i in order[::-1][:k]]}

    def to_json(self) -> dict[str, Any]:
        return {"format": "studio-taste-model", "model_version": MODEL_VERSION, "feature_version": FEATURE_VERSION,
                "version": self.version, "user": self.user, "generator": self.generator, "kind": self.kind,
                "C": self.C, "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "training_outputs": self.shas, "n_ratings": self.n_ratings, "n_votes": self.n_votes,
                "n_pairs": self.n_pairs, "evaluation": self.evaluation}


def _fit_pairs(Z: "np.ndarray", pairs: list[tuple[int, int, float]], C: float) -> "np.ndarray":
    """Weights w of P(a > b) = sigmoid(w.(z_a - z_b)), fitted on both orientations of each pair."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    w = np.array([p[2] for p in pairs])
    # Each pair once, its orientation alternating: without an intercept (d, 1) and (-d, 0) have the
    # same logistic loss, so this is the stacked-both-ways fit at half the rows (and half the data
    # weight against the L2 term), with both classes present as scikit-learn requires.
    sign = np.where(np.arange(len(pairs)) % 2 == 0, 1.0, -1.0)
    X = (Z[a] - Z[b]) * sign[:, None]
    y = (sign > 0).astype(np.int64)
    if len(set(y.tolist())) < 2:  # a single pair: add its mirror so both classes exist
        X, y, w = np.vstack([X, -X]), np.r_[y, 1 - y], np.r_[w, w]
    from threadpoolctl import threadpool_limits

    clf = LogisticRegression(C=C, fit_intercept=False, max_iter=500, tol=1e-4)
    with threadpool_limits(1):  # a small problem: BLAS threads only spin (measured: 6x the CPU time)
        clf.fit(X, y, sample_weight=w)
    return clf.coef_[0]


def _cv(Z: "np.ndarray", pairs: list[tuple[int, int, float]], n_items: int, C: float, folds: int,
        seed: int = 0) -> tuple[int, int, list[float]]:
    """K-fold over outputs: (correct, tested, per-fold accuracies) on pairs within each held-out fold."""
    import numpy as np

    k = max(2, min(folds, n_items))
    fold = np.random.default_rng(seed).permutation(n_items) % k
    correct = tested = 0
    per_fold = []
    for f in range(k):
        train = [p for p in pairs if fold[p[0]] != f and fold[p[1]] != f]
        test = [p for p in pairs if fold[p[0]] == f and fold[p[1]] == f]
        if not test or len({(p[0], p[1]) for p in train}) < 2:
            continue
        w = _fit_pairs(Z, train, C)
        ok = sum(1 for a, b, _ in test if float((Z[a] - Z[b]) @ w) > 0)
        correct += ok
        tested += len(test)
        per_fold.append(ok / len(test))
    return correct, tested, per_fold


class Taste:
    """Taste models for every user and generator of one studio home (fitted on demand, cached)."""

    def __init__(self, feedback: FeedbackStore, home: str | os.PathLike[str], *,
                 outputs_root: str | os.PathLike[str] | None = None, extractor: FeatureExtractor | None = None,
                 min_rated: int = MIN_RATED) -> None:
        self.feedback = feedback
        self.home = Path(home)
        self.root = self.home / "taste"
        self.outputs_root = Path(outputs_root) if outputs_root else None
        self.extractor = extractor or FeatureExtractor(self.root / "features")
        self.min_rated = min_rated
        self._models: dict[tuple[str, str, str], TasteModel] = {}
        self._verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256
        self._lock = threading.Lock()

    # -- data -----------------------------------------------------------------------------------
    def _resets(self) -> dict[str, str]:
        path = self.root / "resets.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, json.JSONDecodeError):
            return {}

    def reset(self, user: str | None, generator: str) -> str:
        """Forget this user's taste for `generator`: feedback so far stays stored but is no longer used."""
        import datetime as _dt

        user = taste_user(user)
        resets = self._resets()
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat()
        resets[f"{user}\x1f{generator}"] = stamp
        atomic_export(self.root / "resets.json", lambda fh: fh.write(json.dumps(resets, indent=1)) and 1)
        with self._lock:
            self._models = {k: v for k, v in self._models.items() if k[:2] != (user, generator)}
        return stamp

    def _resolve(self, path: str) -> str:
        p = Path(path)
        if not p.is_absolute() and self.outputs_root is not None:
            p = self.outputs_root / p
        return str(p)

    def _readable(self, item: Item) -> None:
        """Refuse files outside the studio's outputs and files changed since they were rated."""
        p = Path(item.path)
        if self.outputs_root is not None and not p.resolve().is_relative_to(self.outputs_root.resolve()):
            raise InvalidInput("not a studio output (outside the outputs folder)")
        try:
            st = p.stat()
        except OSError:
            return  # missing: the extractor says so
        key = (str(p), st.st_size, st.st_mtime_ns)
        if key not in self._verified:
            self._verified[key] = file_sha256(p)  # hashed once per file version, not per refit
        if self._verified[key] != item.sha256:
            raise InvalidInput("the file changed after it was rated")

    def data(self, user: str | None, generator: str) -> TrainingData:
        """This user's ratings and votes for `generator` (after their last reset)."""
        user = taste_user(user)
        since = self._resets().get(f"{user}\x1f{generator}")
        data = TrainingData(user=user, generator=generator, items={}, votes={})
        digest = hashlib.sha256(f"{MODEL_VERSION}/{FEATURE_VERSION}/{user}/{generator}/{since}".encode())
        for row in self.feedback.iter_ratings(generator=generator):
            if taste_user(row["user_id"]) != user or (since and row["created"].isoformat() < since):
                continue
            digest.update(row["uid"].encode())
            scores = []
            if row["stars"] is not None:
                scores.append(float(row["stars"]) - 3.0)
            if row["thumb"] is not None:
                scores.append(THUMB_SCORE * row["thumb"])
            if not scores:
                continue  # a tag or comment alone says nothing about better or worse
            item = data.items.setdefault(row["asset_sha256"], Item(row["asset_sha256"], self._resolve(row["asset_path"])))
            item.scores += scores
            data.n_ratings += 1
        for row in self.feedback.iter_comparisons(generator=generator):
            if taste_user(row["user_id"]) != user or (since and row["created"].isoformat() < since):
                continue
            digest.update(row["uid"].encode())
            data.n_votes += 1
            if row["winner"] == "tie":
                continue
            a, b = row["a_sha256"], row["b_sha256"]
            data.items.setdefault(a, Item(a, self._resolve(row["a_path"])))
            data.items.setdefault(b, Item(b, self._resolve(row["b_path"])))
            key, sign = ((a, b), 1) if a < b else ((b, a), -1)
            data.votes[key] = data.votes.get(key, 0) + (sign if row["winner"] == "a" else -sign)
        data.contradicted = sum(1 for v in data.votes.values() if v == 0)
        data.fingerprint = digest.hexdigest()
        return data

    def _features(self, data: TrainingData) -> tuple[str | None, dict[str, "np.ndarray"]]:
        vectors: dict[str, "np.ndarray"] = {}
        kind = None
        for sha, item in data.items.items():
            try:
                k = kind_for(data.generator, item.path)
                self._readable(item)
                if kind is not None and k != kind:
                    raise InvalidInput(f"{Path(item.path).name} is a {k} output, not {kind}")
                vectors[sha] = self.extractor.vector(item.path, k, sha)
                kind = k
            except InvalidInput as exc:
                data.missing.append(f"{Path(item.path).name or sha[:12]}: {exc}")
        return kind, vectors

    # -- status ---------------------------------------------------------------------------------
    def status(self, user: str | None, generator: str) -> dict[str, Any]:
        """Whether best-of-N may rerank for this user and generator now, and a sentence saying why."""
        data = self.data(user, generator)
        out = self._check(data)
        if out["ready"]:
            try:
                model = self.model(user, generator, data=data)
            except InvalidInput as exc:
                return {**out, "ready": False, "reason": str(exc)}
            ev = model.evaluation
            out.update(version=model.version, cv_accuracy=ev.get("accuracy"), cv_ci=ev.get("ci"),
                       cv_pairs=ev.get("tested"), n_pairs=model.n_pairs)
            if ev.get("tested", 0) >= 10 and ev["ci"][1] < 0.5:
                out.update(ready=False, reason=(
                    f"the taste model predicts your held-out ratings worse than chance "
                    f"({ev['accuracy']:.0%} of {ev['tested']} pairs), so it does not rerank yet; keep rating"))
        return out

    def _check(self, data: TrainingData) -> dict[str, Any]:
        rated = data.rated()
        base = {"user": data.user, "generator": data.generator, "ready": False, "n_ratings": data.n_ratings,
                "n_votes": data.n_votes, "n_rated_outputs": len(rated), "min_rated": self.min_rated,
                "version": None}
        who = "you" if data.user == "local" or data.user.startswith(("browser:", "session:")) else f"{data.user!r}"
        if not data.n_ratings and not data.n_votes:
            return {**base, "reason": f"no ratings yet from {who} for {data.generator}: rate at least "
                                      f"{self.min_rated} outputs and best-of-N will start choosing for you"}
        decisive = sum(1 for v in data.votes.values() if v)
        if len(rated) == 1 and not decisive:
            return {**base, "reason": f"only one rated {data.generator} output so far; a taste needs "
                                      f"comparisons: rate at least {self.min_rated}"}
        levels = {round(i.score, 6) for i in rated}
        if len(levels) <= 1 and not decisive:
            if data.votes and data.contradicted == len(data.votes):
                return {**base, "reason": "your A/B votes contradict each other (each pair won as often as it "
                                          "lost), so they say nothing about your taste yet"}
            if rated:
                stars = rated[0].score
                return {**base, "reason": f"all {len(rated)} rated {data.generator} outputs got the same score "
                                          f"({_score_words(stars)}), so there is nothing to tell apart yet: "
                                          "rate some you like more or less"}
            return {**base, "reason": "the A/B votes so far are all ties, so they carry no preference"}
        if len(rated) + 2 * decisive < self.min_rated:
            return {**base, "reason": f"{len(rated)} rated {data.generator} output(s) and {decisive} decisive A/B "
                                      f"vote(s) so far; best-of-N starts reranking at {self.min_rated} "
                                      "(each vote counts as two)"}
        return {**base, "ready": True, "reason": "enough ratings with real differences: best-of-N reranks"}

    # -- fitting --------------------------------------------------------------------------------
    def model(self, user: str | None, generator: str, *, data: TrainingData | None = None,
              evaluate: bool = True) -> TasteModel:
        """The fitted model for this user and generator (cached until their feedback changes)."""
        data = data or self.data(user, generator)
        key = (data.user, generator, data.fingerprint)
        with self._lock:
            cached = self._models.get(key)
        if cached is not None and (cached.evaluation or not evaluate):
            return cached
        model = self.fit(data, evaluate=evaluate)
        with self._lock:
            self._models = {k: v for k, v in self._models.items() if k[:2] != key[:2]}
            self._models[key] = model
        self._save(model)
        return model

    def fit(self, data: TrainingData, *, evaluate: bool = True, C: float | None = None) -> TasteModel:
        """Fit (and by default cross-validate) a model on `data`; InvalidInput when there is no signal."""
        import numpy as np

        kind, vectors = self._features(data)
        for sha in [s for s in data.items if s not in vectors]:
            data.items.pop(sha)
        data.votes = {k: v for k, v in data.votes.items() if k[0] in vectors and k[1] in vectors}
        shas = list(vectors)
        index = {s: i for i, s in enumerate(shas)}
        pairs = [(index[a], index[b], w) for a, b, w in data.pairs()]
        if kind is None or len(shas) < 2 or not pairs:
            reason = self._check(data)["reason"] if not self._check(data)["ready"] else \
                "no two usable outputs differ in rating"
            extra = f" ({len(data.missing)} rated output(s) unreadable: {data.missing[0]})" if data.missing else ""
            raise InvalidInput(f"cannot learn a taste for {data.generator} yet: {reason}{extra}")
        X = np.stack([vectors[s] for s in shas]).astype(np.float64)
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-8] = 1.0
        Z = (X - mean) / scale
        t0 = time.perf_counter()
        evaluation: dict[str, Any] = {}
        if C is None:
            C = DEFAULT_C
            if evaluate and len(shas) <= SELECT_C_MAX_ITEMS and len(pairs) >= 10:
                scores = {c: _cv(Z, pairs, len(shas), c, folds=3, seed=1)[:2] for c in C_GRID}
                scores = {c: ok / n for c, (ok, n) in scores.items() if n}
                if scores:
                    C = max(scores, key=lambda c: (scores[c], -abs(math.log10(c / DEFAULT_C))))
        coef = _fit_pairs(Z, pairs, C)
        fit_s = time.perf_counter() - t0
        if evaluate:
            ok, n, per_fold = _cv(Z, pairs, len(shas), C, folds=5, seed=2)
            acc, lo, hi = wilson(ok, n)
            evaluation = {"accuracy": acc, "ci": [lo, hi] if n else None, "tested": n, "folds": len(per_fold),
                          "fold_sd": float(np.std(per_fold)) if per_fold else None,
                          "method": "5-fold over outputs; pairs within each held-out fold; Wilson 95% interval"}
        version = f"taste{MODEL_VERSION}-f{FEATURE_VERSION}-{data.fingerprint[:12]}"
        return TasteModel(user=data.user, generator=data.generator, kind=kind, version=version, mean=mean,
                          scale=scale, coef=coef, C=C, shas=shas, paths=[data.items[s].path for s in shas],
                          item_scores=[data.items[s].score if data.items[s].scores else None for s in shas],
                          Z=Z, n_ratings=data.n_ratings, n_votes=data.n_votes, n_pairs=len(pairs),
                          fit_seconds=fit_s, evaluation=evaluation)

    def _save(self, model: TasteModel) -> Path:
        """Write the model as JSON (weights, scaler, training outputs) so its version names a file."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model.user)[:80] or "local"
        path = self.root / "models" / safe / f"{model.generator}-{model.version}.json"
        if not path.exists():
            atomic_export(path, lambda fh: fh.write(json.dumps(model.to_json())) and 1)
        return path

    # -- using ----------------------------------------------------------------------------------
    def rank(self, model: TasteModel, paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
        """Score candidate outputs, best first, each with its utility and nearest liked outputs."""
        import numpy as np

        rows = []
        for p in paths:
            sha = file_sha256(p)
            x = self.extractor.vector(p, kind_for(model.generator, p), sha).astype(np.float64)
            rows.append((str(p), sha, x))
        if not rows:
            return []
        X = np.stack([r[2] for r in rows])
        u = model.utility(X)
        train_u = model.Z @ model.coef
        median = float(np.median(train_u))
        out = [{"path": path, "sha256": sha, "score": round(float(u[i]), 4),
                "p_preferred_over_typical": round(1 / (1 + math.exp(-(float(u[i]) - median))), 3),
                "why": model.explain(x)} for i, (path, sha, x) in enumerate(rows)]
        out.sort(key=lambda r: -r["score"])
        for rank, row in enumerate(out, 1):
            row["rank"] = rank
        return out


def _score_words(score: float) -> str:
    return f"{score + 3:g} stars" if abs(score - round(score)) < 1e-9 and -2 <= score <= 2 else f"score {score:+.2f}"


# ------------------------------------------------------------------------------------------------
# Best-of-N through the studio.
# ------------------------------------------------------------------------------------------------
def candidate_assets(generator: str, paths: Iterable[Path]) -> list[Path]:
    """The outputs of one result a creator would judge: one file per candidate, no grids or previews."""
    from studio.assets import restore

    out, seen = [], set()
    for p in paths:
        try:
            kind_for(generator, p)
            record = restore(p).record
        except InvalidInput:
            continue
        if record.get("role") == "grid":
            continue
        label = (record.get("group"), record.get("label") or "")
        if label in seen:  # the .md beside a .fountain of the same draft
            continue
        seen.add(label)
        out.append(Path(p))
    return out


def _payload(name: str, path: Path, result: Any) -> dict[str, Any]:
    """What a creator needs to carry on from a candidate: the breeder's genome, the GAN's latent."""
    from studio.assets import restore

    label = restore(path).record.get("label") or ""
    match = re.search(r"(\d+)$", label)
    i = int(match.group(1)) - 1 if match else 0
    data = result.data or {}
    if name == "breeder" and i < len(data.get("genomes") or []):
        return {"genome": data["genomes"][i]}
    if name == "gan" and data.get("mode") == "sample" and i < len(data.get("latents") or []):
        return {"latent": data["latents"][i]}
    return {}


def best_of(studio: Any, name: str, params: Mapping[str, Any] | None = None, *, n: int = 8, keep: int = 1,
            seed: int | None = None, user: str | None = None, taste: str = "auto",
            timeout: float | None = None) -> dict[str, Any]:
    """Generate `n` candidates and return the `keep` best by this user's taste model.

    taste="auto" reranks once the user's feedback has signal (else keeps generation order and says
    why); "on" refuses to run without signal; "off" never reranks. Every candidate's provenance
    carries the setting and the model version.

    Evolution that follows taste: with the breeder's `mode="breed"` (or the GAN's samples), ask for
    a few times more candidates than the grid shows and keep the grid's worth: the children the
    creator's model rates highest come back, each with its genome (breeder) or latent (GAN) to
    pick and breed from next. Proposals are biased by selection, so the generators stay unchanged.
    """
    import secrets

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_BEST_OF:
        raise InvalidInput(f"best-of needs 1 to {MAX_BEST_OF} candidates, got {n!r}")
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= n:
        raise InvalidInput(f"keep must be a whole number from 1 to n ({n}), got {keep!r}")
    if taste not in SETTINGS:
        raise InvalidInput(f"taste must be one of {', '.join(SETTINGS)}, got {taste!r}")
    from studio.features.extractor import GENERATOR_KINDS

    if name not in GENERATOR_KINDS:
        raise InvalidInput(f"best-of-N works with {', '.join(sorted(GENERATOR_KINDS))}; {name!r} outputs "
                           "have no taste features")
    tastes: Taste = studio.taste
    status = tastes.status(user, name) if taste != "off" else {"ready": False, "reason": "taste is off",
                                                              "version": None, "user": taste_user(user)}
    if taste == "on" and not status["ready"]:
        raise InvalidInput(f"cannot pick by taste yet: {status['reason']}")
    active = taste != "off" and status["ready"]
    model = tastes.model(user, name) if active else None
    # (no user in it: this block goes into every candidate's provenance, which files carry)
    block = {"setting": taste, "best_of": n, "keep": keep, "active": active,
             "model": model.version if model else None, "feature_version": FEATURE_VERSION,
             "reason": status["reason"]}
    seed = secrets.randbelow(2**32) if seed is None else seed
    candidates: list[Path] = []
    payloads: dict[str, dict[str, Any]] = {}
    results = []
    jobs_run = 0
    while len(candidates) < n and jobs_run < n:
        batch = 1 if not results else min(n - jobs_run, math.ceil((n - len(candidates)) / max(1, per_job)))
        jobs = [studio.submit(name, params, seed=(seed + jobs_run + i) % 2**32, user=user, timeout=timeout,
                              provenance={"taste": block}) for i in range(batch)]
        jobs_run += batch
        for job in jobs:
            result = job.result()
            results.append(result)
            for p in candidate_assets(name, result.assets):
                candidates.append(p)
                payloads[str(p)] = _payload(name, p, result)
        per_job = max(1, len(candidates) // max(1, len(results)))
        if not candidates:
            raise StudioError(f"{name} produced no outputs the taste model can judge")
    candidates = candidates[:n]
    if model is not None:
        ranked = tastes.rank(model, candidates)
    else:
        ranked = [{"path": str(p), "sha256": file_sha256(p), "score": None, "rank": i + 1, "why": []}
                  for i, p in enumerate(candidates)]
    for row in ranked:
        row.update(payloads.get(row["path"], {}))
    return {"generator": name, "user": taste_user(user), "taste": block, "seed": seed, "n": len(candidates),
            "keep": ranked[:keep], "candidates": ranked,
            "evaluation": model.evaluation if model else None}
