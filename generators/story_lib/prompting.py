"""Prompts as data: Jinja templates in prompts/story/, wrapped in the model's own chat template.

Instruction-tuned models (SmolLM2-Instruct and most Hugging Face chat models) ship a chat
template in their tokenizer; `tokenizer.apply_chat_template` formats system + user turns the
way the model was trained. Base models without one (GPT-2) get prompts/story/plain.j2.
"""
from __future__ import annotations

import functools
from typing import Any

from generators.story_lib.bible import PROMPTS_DIR


@functools.lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROMPTS_DIR)), autoescape=False,
                              undefined=jinja2.StrictUndefined, trim_blocks=False, lstrip_blocks=False)


def render(template: str, **variables: Any) -> str:
    """Render prompts/story/<template> with `variables` (missing variables are an error)."""
    return _env().get_template(template).render(**variables).strip()


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def build_prompt(tokenizer: Any, system: str, task: str, prefix: str = "") -> str:
    """The full prompt text: chat template when the model has one, else the plain frame.

    `prefix` starts the model's answer (e.g. the last words before the cursor), so a base model
    continues it verbatim; chat models get it after the assistant header.
    """
    if has_chat_template(tokenizer):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": task}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text) + prefix
    return render("plain.j2", system=system, task=task) + "\n\n" + prefix


def encode(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a built prompt (chat templates already hold their special tokens)."""
    special = not has_chat_template(tokenizer)
    return list(tokenizer(prompt, add_special_tokens=special)["input_ids"])
