"""Where generators and training scripts keep their caches: one answer for all of them.

The studio's `cache_dir` setting (from the TOML file or STUDIO_CACHE_DIR) reaches a generator as
its `cache_dir` attribute, set by the session manager; a generator used on its own and the
training scripts read the environment here. Converted models, parsed corpora and preprocessed
data live in the cache, never in the repository.
"""
from __future__ import annotations

import os
from pathlib import Path

def cache_root(configured: str | os.PathLike[str] | None = None) -> Path:
    """`configured` (a generator's cache_dir) when given, else `default_cache_root()`."""
    return Path(configured).expanduser() if configured else default_cache_root()


def default_cache_root() -> Path:
    """$STUDIO_CACHE_DIR, else $STUDIO_CACHE (older name), else $XDG_CACHE_HOME/studio, else
    ~/.cache/studio."""
    for key in ("STUDIO_CACHE_DIR", "STUDIO_CACHE"):
        if os.environ.get(key):
            return Path(os.environ[key]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "studio"


def cache_path(*parts: str, create: bool = True, root: str | os.PathLike[str] | None = None) -> Path:
    """<cache root>/<parts...>, created unless create=False; `root` as for cache_root()."""
    path = cache_root(root).joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
