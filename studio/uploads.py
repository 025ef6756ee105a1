"""Upload cleanup: browser uploads are kept for a while, never forever.

Gradio stores every upload under the studio's upload folder (`<home>/cache/uploads`, one
sub-folder per file hash) and never deletes it. `sweep_uploads` removes files older than the
age limit, then the oldest while the folder is over its size limit, then the emptied folders.
`UploadSweeper` runs it at launch and then every `interval_s` on one daemon thread.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def sweep_uploads(folder: str | os.PathLike[str], *, max_age_s: float, max_total_bytes: int,
                  now: float | None = None, keep: frozenset[str] = frozenset()) -> dict[str, int]:
    """Delete old uploads, then the oldest until under `max_total_bytes`. Returns counts.

    `keep`: resolved paths never deleted: the copies Gradio made of the app's own static
    pictures (style swatches) when the page was built; the page points at them for its lifetime."""
    root = Path(folder)
    now = time.time() if now is None else now
    files: list[tuple[float, int, Path]] = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if keep and str(path.resolve()) in keep:
                continue
            try:
                st = path.lstat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, path))
    files.sort()  # oldest first
    removed = freed = 0
    total = sum(size for _, size, _ in files)
    for mtime, size, path in files:
        if now - mtime <= max_age_s and total <= max_total_bytes:
            break  # the rest are newer, and the folder fits
        try:
            path.unlink()
        except OSError:
            continue
        removed += 1
        freed += size
        total -= size
    for dirpath, dirnames, names in sorted(os.walk(root), key=lambda t: -len(t[0])):
        if Path(dirpath) != root and not names and not dirnames:
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    return {"removed": removed, "freed_bytes": freed, "kept_bytes": total}


class UploadSweeper:
    def __init__(self, folder: str | os.PathLike[str], *, max_age_s: float, max_total_bytes: int,
                 interval_s: float = 3600.0, keep: frozenset[str] = frozenset()) -> None:
        self.folder = folder
        self.keep = keep
        self.max_age_s = max_age_s
        self.max_total_bytes = max_total_bytes
        self.interval_s = interval_s
        self._stop = threading.Event()
        self.last: dict[str, int] = self.sweep()
        self._thread = threading.Thread(target=self._run, name="studio-upload-sweeper", daemon=True)
        self._thread.start()

    def sweep(self) -> dict[str, int]:
        self.last = sweep_uploads(self.folder, max_age_s=self.max_age_s, max_total_bytes=self.max_total_bytes,
                                  keep=self.keep)
        return self.last

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - a sweep that fails is retried next interval
                pass

    def stop(self) -> None:
        self._stop.set()
