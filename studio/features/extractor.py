"""Which extractor reads which output, and a disk cache of vectors keyed by the file's sha256."""
from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import InvalidInput, file_sha256

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

FEATURE_VERSION = 2  # bump when any extractor changes: cached vectors of older versions are ignored
# 2: text features read the new passage only, without the embedded provenance record (1 embedded the
#    record's JSON and the creator's own opening along with what the model wrote)
KINDS = ("text", "image", "music", "sketch")

# The medium of each generator's candidates; generators not listed are judged by file suffix.
GENERATOR_KINDS = {"story": "text", "breeder": "image", "gan": "image", "image": "image", "style": "image",
                   "music": "music", "sketch": "sketch"}
SUFFIX_KINDS = {".txt": "text", ".md": "text", ".fountain": "text", ".png": "image", ".jpg": "image",
                ".jpeg": "image", ".webp": "image", ".mid": "music", ".midi": "music", ".svg": "sketch"}
ACCEPTED_SUFFIXES = {"text": (".fountain", ".md", ".txt"), "image": (".png", ".jpg", ".jpeg", ".webp"),
                     "music": (".mid", ".midi"), "sketch": (".svg",)}


def kind_for(generator: str, path: str | os.PathLike[str]) -> str:
    """The feature kind for an output of `generator` stored at `path`, or InvalidInput."""
    suffix = Path(path).suffix.lower()
    kind = GENERATOR_KINDS.get(generator) or SUFFIX_KINDS.get(suffix)
    if kind is None or suffix not in ACCEPTED_SUFFIXES[kind]:
        raise InvalidInput(f"the taste model cannot read {Path(path).name!r} ({generator or 'unknown'} output): "
                           f"it learns from text, images, MIDI and sketch SVGs")
    return kind


def _given_text(path: Path) -> str:
    """The document a story output was asked to continue (its provenance params.text), or ""."""
    try:
        from studio.assets import restore

        params = restore(path).record.get("params") or {}
    except Exception:  # noqa: BLE001 - no or unreadable record: features of the whole text
        return ""
    given = params.get("text") if isinstance(params, dict) else ""
    return given if isinstance(given, str) else ""


class FeatureExtractor:
    """Feature vectors for output files; the heavy models load on first use and stay with this object."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._text: Any = None
        self._image: Any = None
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str], Any] = {}  # (kind, sha) -> vector: refits read no files

    MEMORY_ITEMS = 20_000  # ~10-30 MB of vectors; beyond this the disk cache alone serves

    def vector(self, path: str | os.PathLike[str], kind: str, sha256: str | None = None) -> "np.ndarray":
        """The feature vector of one file (from the cache when this file was seen before)."""
        path = Path(path)
        if kind not in KINDS:
            raise InvalidInput(f"unknown feature kind {kind!r}; one of {', '.join(KINDS)}")
        if sha256 and (kind, sha256) in self._memory and path.is_file():
            return self._memory[(kind, sha256)]
        vec = self._vector(path, kind, sha256)
        if len(self._memory) < self.MEMORY_ITEMS:
            self._memory[(kind, sha256 or file_sha256(path))] = vec
        return vec

    def _vector(self, path: Path, kind: str, sha256: str | None) -> "np.ndarray":
        import numpy as np

        if not path.is_file():
            raise InvalidInput(f"the output {path.name!r} is no longer on disk")
        sha = sha256 if sha256 and len(sha256) == 64 else file_sha256(path)
        cached = self._cache_path(kind, sha)
        if cached is not None and cached.is_file():
            try:
                return np.load(cached, allow_pickle=False)
            except (OSError, ValueError):
                pass  # a damaged cache entry: compute again
        vec = np.asarray(self._compute(path, kind), dtype=np.float32)
        if not np.all(np.isfinite(vec)):
            raise InvalidInput(f"could not compute features for {path.name!r} (non-finite values)")
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{secrets.token_hex(4)}.tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, vec, allow_pickle=False)
            os.replace(tmp, cached)
        return vec

    def _cache_path(self, kind: str, sha: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"v{FEATURE_VERSION}" / kind / sha[:2] / f"{sha}.npy"

    def _compute(self, path: Path, kind: str) -> Any:
        if kind == "text":
            from studio.features import text

            with self._lock:
                if self._text is None:
                    self._text = text.TextEmbedder()
            return text.features(path.read_text(encoding="utf-8", errors="replace"), self._text,
                                 given=_given_text(path))
        if kind == "image":
            from studio.features import image

            with self._lock:
                if self._image is None:
                    self._image = image.StyleVectors()
            return image.features(path, self._image)
        if kind == "music":
            from studio.features import music

            return music.features(path)
        from studio.features import sketch

        return sketch.features(path)
