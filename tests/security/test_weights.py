"""Break 9 of issue 12: embedded weights are verified against their recorded sha256."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from studio import weights


def test_committed_manifest_matches_the_committed_weights() -> None:
    recorded = weights.manifest()
    assert recorded, "assets/WEIGHTS.sha256 is missing"
    on_disk = {p.relative_to(weights.ASSETS).as_posix() for p in weights.ASSETS.rglob("*")
               if p.is_file() and p.suffix in weights.WEIGHT_SUFFIXES}
    assert set(recorded) == on_disk, "weights added or removed: run `python -m studio.weights --write`"
    bad = [p for g in {n.split("/")[0] for n in recorded} for p in weights.problems(g)]
    assert not bad, f"{bad}: if these were retrained on purpose, run `python -m studio.weights --write`"


def test_flipped_bytes_make_the_generator_unavailable_with_the_reason(tmp_path) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(weights.ASSETS / "sketch", assets / "sketch")
    shutil.copy(weights.MANIFEST, assets / weights.MANIFEST.name)
    assert weights.problems("sketch", assets=assets) == []
    kanji = assets / "sketch" / "kanji.safetensors"
    data = bytearray(kanji.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside a tensor: it would still load
    kanji.write_bytes(bytes(data))
    [problem] = weights.problems("sketch", assets=assets)
    assert "assets/sketch/kanji.safetensors is damaged" in problem
    kanji.unlink()
    assert "missing" in weights.problems("sketch", assets=assets)[0]


def test_studio_list_says_damaged_weights_are_not_ready(tmp_path, monkeypatch) -> None:
    """`studio list` in a copy of the repository whose kanji weights have a flipped byte."""
    repo = Path(__file__).resolve().parents[2]
    copy = tmp_path / "repo"
    for part in ("studio", "generators", "assets"):
        shutil.copytree(repo / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo / "pyproject.toml", copy)  # a checkout: its own assets win over the installed ones
    kanji = copy / "assets" / "sketch" / "kanji.safetensors"
    data = bytearray(kanji.read_bytes())
    data[-100] ^= 0xFF
    kanji.write_bytes(bytes(data))
    out = subprocess.run([sys.executable, "-m", "studio.cli", "--home", str(tmp_path / "home"), "list"],
                         cwd=copy, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(copy)})
    line = next(l for l in out.stdout.splitlines() if l.startswith("sketch"))
    assert "unavailable" in line and "kanji.safetensors is damaged" in line, out.stdout + out.stderr
    gan = next(l for l in out.stdout.splitlines() if l.startswith("gan"))
    assert "ready" in gan


def test_a_configured_default_model_is_not_judged_by_the_embedded_weights(tmp_path, monkeypatch) -> None:
    """The creator's own sketch model replaces the embedded one, so a damaged embedded file must
    not mark sketch unavailable (the job path never opens it); other generators still are."""
    from studio.api import Studio
    from studio.config import Settings

    monkeypatch.setattr(weights, "problems", lambda name, **_: [f"assets/{name}/x.safetensors is damaged"])
    studio = Studio(Settings(home=tmp_path / "home", default_models=("sketch=/models/my-sketch",)))
    try:
        rows = {row["name"]: row for row in studio.generators()}
    finally:
        studio.close()
    assert "damaged" not in str(rows["sketch"]["reason"])
    assert not rows["gan"]["available"] and "damaged" in rows["gan"]["reason"]
