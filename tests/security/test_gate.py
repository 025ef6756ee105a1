"""The input gate on its own (no server): confinement, listed models, size bounds."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from generators.base import InvalidInput, Params, param
from studio.config import Settings
from studio.gate import LOCAL, REMOTE, Gate, cached_hub_ids, check_abc_size


@dataclass(frozen=True)
class P(Params):
    image: str = param("", "a picture", widget="image")
    model: str = param("", "which model", load=True)
    offload: str = param("none", "a choice", choices=("none", "model"), load=True)


@pytest.fixture
def gate(tmp_path) -> Gate:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    models = tmp_path / "models"
    (models / "my-model").mkdir(parents=True)
    settings = Settings(home=tmp_path, cache_dir=tmp_path / "cache", model_dirs=(str(models),),
                        default_models=("x=org/default",))
    return Gate(settings, outputs)


def test_files_are_confined_by_real_path(gate, tmp_path) -> None:
    inside = tmp_path / "outputs" / "a.png"
    inside.write_bytes(b"png")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    (tmp_path / "outputs" / "link.png").symlink_to(outside)
    got = gate.check("x", P(image=str(tmp_path / "outputs" / "." / "a.png")), REMOTE)
    assert got.image == str(inside.resolve())  # what is opened later is what was checked
    for bad in (str(outside), str(tmp_path / "outputs" / "link.png"), f"{tmp_path}/outputs/../secret.png",
                "/etc/passwd", "a\x00b"):
        with pytest.raises(InvalidInput, match="must be a file uploaded"):
            gate.check("x", P(image=bad), REMOTE)
    assert gate.check("x", P(image=str(outside)), LOCAL).image == str(outside)  # the owner's own files
    gate.add_root(tmp_path)
    assert gate.check("x", P(image=str(outside)), REMOTE).image == str(outside.resolve())
    with pytest.raises(InvalidInput, match="origin"):
        gate.check("x", P(), "somewhere")


def test_missing_file_inside_says_so_without_an_oracle_outside(gate, tmp_path) -> None:
    with pytest.raises(InvalidInput, match="not in this studio"):
        gate.check("x", P(image=str(tmp_path / "outputs" / "gone.png")), REMOTE)
    with pytest.raises(InvalidInput, match="must be a file uploaded"):  # same answer, exists or not
        gate.check("x", P(image=str(tmp_path / "nope.png")), REMOTE)


def test_load_options_must_be_listed_for_remote_callers(gate, tmp_path, monkeypatch) -> None:
    hub = tmp_path / "hf" / "hub"
    (hub / "models--org--cached").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    assert "org/cached" in cached_hub_ids()
    for ok in ("", "org/default", "org/cached", "my-model", str(tmp_path / "models" / "my-model")):
        gate.check("x", P(model=ok), REMOTE)
    gate.check("x", P(offload="model"), REMOTE)  # a choice: validated by the params already
    for bad in ("/etc", "org/other", "../models/my-model", str(tmp_path)):
        with pytest.raises(InvalidInput, match="not a model this studio offers"):
            gate.check("x", P(model=bad), REMOTE)
    gate.check("x", P(model="/anything"), LOCAL)
    open_gate = Gate(gate.settings.replace(remote_models="any"), tmp_path / "outputs")
    open_gate.check("x", P(model="org/other"), REMOTE)


def test_embedded_names_come_from_the_generator(tmp_path) -> None:
    from generators.music import MusicComposer, MusicParams
    from studio.gate import embedded_names

    assert {"lstm", "transformer"} <= set(embedded_names(MusicComposer))
    Gate(Settings(home=tmp_path), tmp_path).check("music", MusicParams(model="transformer"), REMOTE,
                                                  MusicComposer)


def test_abc_bound_counts_without_parsing() -> None:
    check_abc_size("X:1\nM:6/8\nL:1/8\nK:D\n" + "dfa afd|" * 100)
    with pytest.raises(InvalidInput, match="longer than 128 bars"):
        check_abc_size("X:1\nL:1/8\nK:C\nZ200|\n")  # a 200-bar multi-measure rest
    with pytest.raises(InvalidInput, match="longer than 128 bars"):
        check_abc_size("X:1\nK:C\n" + "C64 " * 200)
