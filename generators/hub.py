"""One policy for a model a creator names by Hugging Face id (`owner/name`).

1. The local Hugging Face cache first: a model fetched once loads offline ever after.
2. Then the Hub, only where the generator allows downloads (small models; a multi-GB diffusion
   pipeline is fetched by the creator ahead of time instead) and `HF_HUB_OFFLINE` is not set.
   `snapshot_download` fails in about a second when the Hub cannot be reached, where
   `hf_hub_download` retries for ~23 s, so every fetch goes through it, limited by
   `allow_patterns` to the files the generator reads.
3. Every failure is a GeneratorUnavailable that says which of these went wrong.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from generators.base import GeneratorUnavailable

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
ETAG_TIMEOUT_S = 5  # per request to the Hub; unreachable hosts fail at once anyway


def is_hub_id(text: str, bare_names: bool = False) -> bool:
    """`owner/name` (or a legacy bare `name` where bare_names: generators with named embedded
    models say "unknown model" for a bare word instead), and not a path meant as a folder."""
    m = HUB_ID_RE.match(text)
    return bool(m) and (bare_names or m.group(1) is not None) and not text.startswith((".", "/", "~"))


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def snapshot(repo_id: str, *, allow_patterns: Sequence[str] | None = None, what: str = "model",
             download: bool = True, advice: str = "") -> Path:
    """The local folder of `repo_id` (cache first, then the Hub where allowed); see the module doc."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    tail = f" {advice}" if advice else ""
    if not is_hub_id(repo_id, bare_names=True):
        raise GeneratorUnavailable(f"{repo_id!r} is not a Hugging Face id (owner/name).{tail}")
    patterns = list(allow_patterns) if allow_patterns else None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        pass  # not cached yet
    except HFValidationError:
        raise GeneratorUnavailable(f"{repo_id!r} is not a valid Hugging Face id.{tail}") from None
    if not download:
        raise GeneratorUnavailable(f"the {what} {repo_id!r} is not in the local Hugging Face cache, and the "
                                   f"studio does not download it for you.{tail}")
    if offline():
        raise GeneratorUnavailable(f"the {what} {repo_id!r} is not in the local Hugging Face cache, and "
                                   f"downloads are off (HF_HUB_OFFLINE is set).{tail}")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=ETAG_TIMEOUT_S))
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise GeneratorUnavailable(f"the Hugging Face Hub has no {what} {repo_id!r} (or it is private).{tail}") \
            from None
    except LocalEntryNotFoundError:
        raise GeneratorUnavailable(f"the {what} {repo_id!r} is not in the local Hugging Face cache and the Hub "
                                   f"could not be reached.{tail}") from None
    except Exception as exc:  # noqa: BLE001 - disk full, permissions, a broken proxy: say what it was
        raise GeneratorUnavailable(f"could not fetch the {what} {repo_id!r} from the Hugging Face Hub: "
                                   f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{tail}") \
            from None


def file(repo_id: str, name: str, *, also: Sequence[str] = (), what: str = "model") -> Path:
    """One named file of a Hub repo (fetched with the `also` files beside it), or a clear error."""
    folder = snapshot(repo_id, allow_patterns=[name, *also], what=what)
    if not (folder / name).is_file():
        raise GeneratorUnavailable(f"the Hugging Face repo {repo_id!r} has no {name}")
    return folder / name
