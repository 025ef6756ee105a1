"""One Hugging Face policy for every generator (generators/hub.py): cache first, clear errors."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from generators import hub
from generators.base import GeneratorUnavailable, InvalidInput

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hub"


def cache_repo(hub_cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """The Hugging Face cache layout: models--owner--name/snapshots/<commit>, refs/main."""
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snap


def test_ids_and_paths_are_told_apart() -> None:
    assert hub.is_hub_id("owner/name") and hub.is_hub_id("gpt2", bare_names=True)
    assert not hub.is_hub_id("gpt2") and not hub.is_hub_id("./owner/name") and not hub.is_hub_id("a/b/c")
    assert not hub.is_hub_id("not a model!", bare_names=True)


def test_cached_snapshot_is_found_offline(hub_cache: Path) -> None:
    snap = cache_repo(hub_cache, "org/tiny", {"config.json": b"{}"})
    assert hub.snapshot("org/tiny", allow_patterns=["config.json"]) == snap


def test_missing_model_fails_fast_and_says_why(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start = time.perf_counter()
    with pytest.raises(GeneratorUnavailable, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        hub.snapshot("org/absent")
    with pytest.raises(GeneratorUnavailable, match="does not download it for you. Fetch it first"):
        hub.snapshot("org/absent", download=False, advice="Fetch it first.")
    with pytest.raises(GeneratorUnavailable, match="not a Hugging Face id"):
        hub.snapshot("no spaces/allowed here")
    assert time.perf_counter() - start < 5  # never the ~23 s of hf_hub_download's retries


def test_every_generator_names_the_same_failure(hub_cache: Path) -> None:
    """gan, sketch, music, image and story all resolve an unknown id through the same policy."""
    from generators.diffusion_pipeline import resolve_model
    from generators.gan import _resolve_weights as resolve_weights
    from generators.music import MusicComposer
    from generators.sketch_rnn import SketchRNN
    from generators.story import StoryWriter

    for call in (lambda: resolve_weights("org/absent"), lambda: SketchRNN(model="org/absent")._weights_path(),
                 lambda: MusicComposer(model="org/absent")._resolve(download=True),
                 lambda: resolve_model("org/absent")):
        with pytest.raises(GeneratorUnavailable, match="'org/absent' is not in the local Hugging Face cache"):
            call()
    with pytest.raises(InvalidInput, match="unknown model 'org/absent'.*not in the local Hugging Face cache"):
        StoryWriter(model="org/absent").estimate_bytes()


def test_gan_weights_load_from_a_cached_repo(hub_cache: Path) -> None:
    from generators.gan import DEFAULT_WEIGHTS, WEIGHTS_NAME, _resolve_weights as resolve_weights

    snap = cache_repo(hub_cache, "org/glyphs", {WEIGHTS_NAME: DEFAULT_WEIGHTS.read_bytes()})
    assert resolve_weights("org/glyphs") == snap / WEIGHTS_NAME
    cache_repo(hub_cache, "org/empty", {"README.md": b"no weights here"})
    with pytest.raises(GeneratorUnavailable, match="'org/empty' has no generator.safetensors"):
        resolve_weights("org/empty")
