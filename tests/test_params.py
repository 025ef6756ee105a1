"""Params: coercion, validation with clear messages, JSON round trip and schema."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from generators.base import InvalidInput, Params, param


@dataclass(frozen=True)
class Example(Params):
    prompt: str = param("a fox", "what to make", max_length=20)
    steps: int = param(10, "denoising steps", min=1, max=100)
    temperature: float = param(0.8, "sampling temperature", min=0.05, max=2.0)
    style: str = param("ink", "look", choices=("ink", "oil"))
    sharp: bool = param(False, "sharpen")
    mix: dict[str, float] = param(default_factory=dict, help="style weights")
    bars: tuple[int, ...] = param((), "bars to infill")
    model: str = param("", "model id", load=True)
    limit: int | None = param(None, "optional cap", min=1)


def test_coerces_cli_strings():
    p = Example.from_dict({"steps": "12", "temperature": "0.5", "sharp": "yes", "bars": "1, 3",
                           "mix": '{"ink": 0.5}', "limit": "none"})
    assert (p.steps, p.temperature, p.sharp, p.bars, p.mix, p.limit) == (12, 0.5, True, (1, 3), {"ink": 0.5}, None)


@pytest.mark.parametrize("data, words", [
    ({"steps": 0}, "steps must be between 1 and 100"),
    ({"steps": "many"}, "steps must be a whole number"),
    ({"temperature": "nan"}, "finite"),
    ({"style": "pastel"}, "style must be one of: ink, oil"),
    ({"prompt": "x" * 21}, "prompt is too long: 21 > 20"),
    ({"colour": "red"}, "unknown parameter(s) colour"),
    ({"sharp": "perhaps"}, "sharp must be true or false"),
    ({"steps": True}, "whole number"),
])
def test_bad_values_name_the_problem(data, words):
    with pytest.raises(InvalidInput) as err:
        Example.from_dict(data)
    assert words in str(err.value)


def test_json_round_trip_and_load_options():
    p = Example.from_dict({"mix": {"ink": 1.0}, "bars": [2], "model": "org/model"})
    again = Example.from_json(p.to_json())
    assert again == p
    assert p.load_options() == {"model": "org/model"}
    assert p.replace(steps=20).steps == 20


def test_schema_describes_fields_for_a_ui():
    schema = Example.json_schema()
    steps = schema["properties"]["steps"]
    assert steps == {"type": "integer", "description": "denoising steps", "default": 10, "minimum": 1, "maximum": 100}
    assert schema["properties"]["style"]["enum"] == ["ink", "oil"]
    assert schema["properties"]["model"]["x-load"] is True
    assert schema["properties"]["limit"]["anyOf"][1] == {"type": "null"}
    assert schema["additionalProperties"] is False
