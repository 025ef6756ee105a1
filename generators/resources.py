"""Data that ships with the studio: trained default weights, face models, prompt templates.

In a built wheel they live in two data packages, `studio_assets` (the repository's `assets/`)
and `studio_prompts` (`prompts/`), mapped in setup.py and found through importlib.resources,
so an installed studio reads them exactly as a checkout does. In a source checkout (this file
sits next to pyproject.toml) the checkout's own folders win: a worktree run with PYTHONPATH must
see its own assets, not those of whichever checkout the venv was installed from.
"""
from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

ASSETS_PACKAGE = "studio_assets"
PROMPTS_PACKAGE = "studio_prompts"
_CHECKOUT = Path(__file__).resolve().parents[1]


def _root(package: str, folder: str) -> Path:
    local = _CHECKOUT / folder
    if (_CHECKOUT / "pyproject.toml").is_file() and local.is_dir():
        return local
    if importlib.util.find_spec(package) is not None:
        # pip installs wheels unzipped, so the Traversable is a real folder on disk
        return Path(str(importlib.resources.files(package)))
    return local  # missing: callers report the exact file they could not find


def assets_dir(*parts: str) -> Path:
    """<assets>/<parts...>: committed trained weights and model files (may not exist)."""
    return _root(ASSETS_PACKAGE, "assets").joinpath(*parts)


def prompts_dir(*parts: str) -> Path:
    """<prompts>/<parts...>: story templates and beat sheets (may not exist)."""
    return _root(PROMPTS_PACKAGE, "prompts").joinpath(*parts)
