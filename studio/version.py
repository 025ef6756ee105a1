"""Which code made an output: the package version and, in a git checkout, the commit."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from studio import __version__


@functools.lru_cache(maxsize=1)
def code_commit() -> str | None:
    """The git commit of this checkout (with '-dirty' when it has uncommitted changes), or None."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def code_version() -> dict[str, str | None]:
    return {"studio_version": __version__, "code_commit": code_commit()}
