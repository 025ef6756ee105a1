"""Settings from defaults, a TOML file and STUDIO_* environment variables, in that order."""
from __future__ import annotations

import pytest

from generators.base import InvalidInput
from studio.config import Settings, parse_bytes


def test_env_overrides_file_overrides_defaults(tmp_path):
    (tmp_path / "studio.toml").write_text('max_queue = 5\nram_budget = "2GiB"\ndevice = "cpu"\n')
    s = Settings.load(env={"STUDIO_HOME": str(tmp_path), "STUDIO_MAX_QUEUE": "9"})
    assert (s.home, s.max_queue, s.ram_budget, s.device) == (tmp_path, 9, 2 << 30, "cpu")
    assert s.host == "127.0.0.1"
    assert Settings.load(env={"STUDIO_HOME": str(tmp_path)}, max_queue=3).max_queue == 3


@pytest.mark.parametrize("env, words", [
    ({"STUDIO_MAX_QUEUE": "lots"}, "max_queue has a bad value"),
    ({"STUDIO_MAX_QUEUE": "0"}, "max_queue must be at least 1"),
    ({"STUDIO_RAM_BUDGET": "big"}, "memory size"),
    ({"STUDIO_DTYPE": "int3"}, "dtype must be"),
])
def test_bad_settings_are_named(tmp_path, env, words):
    with pytest.raises(InvalidInput, match=words):
        Settings.load(env={"STUDIO_HOME": str(tmp_path), **env})


def test_unknown_key_in_file(tmp_path):
    (tmp_path / "studio.toml").write_text("colour = 1\n")
    with pytest.raises(InvalidInput, match="unknown setting"):
        Settings.load(env={"STUDIO_HOME": str(tmp_path)})


def test_parse_bytes():
    assert parse_bytes("6GB") == 6 * 10**9 and parse_bytes("512 MiB") == 512 << 20 and parse_bytes(1024) == 1024


def test_cache_dir_setting_reaches_generators(tmp_path, monkeypatch):
    """A cache_dir from the TOML file (not the environment) reaches the generators the session
    manager makes, for their one-off conversions; scripts run alone read the environment."""
    from generators import paths
    from generators.story_lib import loading
    from studio.session import SessionManager
    from tests import fakes

    monkeypatch.delenv("STUDIO_CACHE_DIR", raising=False)
    monkeypatch.delenv("STUDIO_CACHE", raising=False)
    toml = tmp_path / "studio.toml"
    toml.write_text(f'cache_dir = "{tmp_path / "from-toml"}"\n')
    settings = Settings.load(toml)
    manager = SessionManager(settings, registry={"steps": fakes.Steps})
    try:
        manager.submit("steps", {}, seed=1).result(timeout=30)
        entry = next(iter(manager.cache._entries.values()))
        assert entry.generator.cache_dir == tmp_path / "from-toml"
    finally:
        manager.close()
    assert loading.converted_dir(tmp_path / "from-toml").is_relative_to(tmp_path / "from-toml" / "story")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "older-name"))
    assert paths.cache_root() == tmp_path / "older-name" and Settings().cache_dir == tmp_path / "older-name"
    from training.sketch.data import cache_dir as sketch_cache

    assert sketch_cache() == tmp_path / "older-name" / "sketch"
