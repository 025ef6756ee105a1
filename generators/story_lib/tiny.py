"""Tiny random causal LMs and an offline tokenizer, for tests and `StoryWriter.debug()`.

As diffusers' and transformers' own fast tests do: a model built from a small config with random
weights (here drawn from a local torch.Generator, so every process builds the same model), and a
byte-level BPE tokenizer trained in memory with `tokenizers` on the prompt templates, so nothing
comes from the Hub.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from generators.story_lib.bible import PROMPTS_DIR

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
SPECIALS = ["<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|pad|>"]
SAMPLE = """INT. LIGHTHOUSE - NIGHT

Mara climbs the spiral stairs. The lamp is dark.

MARA
(whispering)
Is anyone up here?

JONAH
Only me. Only ever me.

CUT TO:
"""


def train_tokenizer(vocab_size: int = 400, chat: bool = True) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` trained on the story templates (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [p.read_text(encoding="utf-8") for p in sorted(PROMPTS_DIR.rglob("*")) if p.is_file()]
    corpus.append(SAMPLE)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>", pad_token="<|pad|>")
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_llama(chat: bool = True, seed: int = 0, arch: str = "llama", hidden: int = 32) -> tuple[Any, Any]:
    """(model, tokenizer): a 2-layer, `hidden`-wide random Llama (or 32-wide GPT-2) with a trained tiny
    tokenizer; 4 heads, so 64 wide gives the head size of 16 ONNX Runtime's attention needs."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(chat=chat)
    vocab = len(tokenizer)
    eos = tokenizer.convert_tokens_to_ids("<|end|>")
    pad = tokenizer.convert_tokens_to_ids("<|pad|>")
    if arch == "gpt2":
        config = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=2048,
                            bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                             bos_token_id=eos, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=True)
        model = LlamaForCausalLM(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    model.generation_config.eos_token_id = eos
    return model.eval(), tokenizer


def save_tiny(folder: str | Path, chat: bool = True, arch: str = "llama", hidden: int = 64) -> Path:
    """Save a tiny model + tokenizer as a Hugging Face folder (safetensors), as a user's would be
    (64 wide, so the ONNX Runtime engine converts and runs it too)."""
    folder = Path(folder)
    model, tokenizer = tiny_llama(chat=chat, arch=arch, hidden=hidden)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
