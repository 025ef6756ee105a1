"""Embedded weights are checked against the sha256 recorded when they were committed.

`assets/WEIGHTS.sha256` (sha256sum format, paths relative to `assets/`) lists every weights
file the studio ships. Before a generator loads its embedded model, and when `studio list`
asks whether it can run, the files under `assets/<generator>/` are hashed and compared: a file
with flipped bytes (a bad copy, a partial download, tampering) makes the generator unavailable
with a sentence that says which file, instead of loading and drawing blanks.

Hashes are cached per (path, size, mtime), so a check costs one read of ~9 MB per process.
Regenerate the manifest after retraining: `python -m studio.weights --write`.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

from generators.resources import assets_dir

ASSETS = assets_dir()  # the checkout's assets/, or the installed `studio_assets` package
MANIFEST = ASSETS / "WEIGHTS.sha256"
WEIGHT_SUFFIXES = (".safetensors", ".tflite", ".onnx", ".gguf", ".bin")
_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _cache:
            return _cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _lock:
        _cache[key] = digest
    return digest


def manifest(path: Path = MANIFEST) -> dict[str, str]:
    """relative path -> sha256 from the manifest ({} when there is none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            out[name.strip()] = digest
    return out


def problems(generator: str, *, assets: Path = ASSETS, recorded: dict[str, str] | None = None) -> list[str]:
    """Sentences about embedded weights of `generator` (files under assets/<generator>/) that are
    missing or differ from their recorded sha256; [] when all match or none are recorded."""
    recorded = manifest(assets / MANIFEST.name) if recorded is None else recorded
    prefix = f"{generator}/"
    out = []
    for name, digest in sorted(recorded.items()):
        if not name.startswith(prefix):
            continue
        path = assets / name
        if not path.is_file():
            out.append(f"the embedded weights file assets/{name} is missing")
        elif file_sha256(path) != digest:
            out.append(f"the embedded weights file assets/{name} is damaged (its sha256 differs from the "
                       "one recorded when it was made); reinstall the studio or retrain it")
    return out


def write_manifest(assets: Path = ASSETS) -> Path:
    files = sorted(p for p in assets.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    lines = [f"{file_sha256(p)}  {p.relative_to(assets).as_posix()}\n" for p in files]
    (assets / MANIFEST.name).write_text("".join(lines), encoding="utf-8")
    return assets / MANIFEST.name


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        print(write_manifest())
    else:
        bad = [p for name in sorted({n.split("/")[0] for n in manifest()}) for p in problems(name)]
        print("\n".join(bad) or f"all {len(manifest())} embedded weights files match {MANIFEST.name}")
        sys.exit(1 if bad else 0)
