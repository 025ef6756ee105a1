"""Checks shared by every generator that reads a creator's uploaded file, before any decoding."""
from __future__ import annotations

import os
from pathlib import Path

from generators.base import InvalidInput


def check_file(path: str | os.PathLike[str], what: str, max_bytes: int) -> Path:
    """The upload's path, or InvalidInput when it is missing, empty or larger than `max_bytes`."""
    if not str(path).strip():
        raise InvalidInput(f"no {what} was given")
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(f"the {what} file '{p.name}' does not exist")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInput(f"the {what} file '{p.name}' is empty")
    if size > max_bytes:
        raise InvalidInput(f"the {what} file '{p.name}' is {size / 2**20:.1f} MB; "
                           f"the limit is {max_bytes / 2**20:.0f} MB")
    return p
