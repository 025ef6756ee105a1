"""Two small conditional language models over the folk-rnn-style tokens.

- `FolkLSTM`: folk-rnn (Sturm et al., 2016): embedding -> stacked LSTM -> softmax over tokens.
- `FolkTransformer`: a decoder-only transformer (nanoGPT layout: pre-norm blocks, causal
  self-attention, learned positions) with a key/value cache for sampling.

Both are conditioned, DeepJ-style (Mao et al., 2018), by a vector added to every input embedding:
meter embedding + mode embedding + a *mixture* of style embeddings (weights summing to 1), so
"60% O'Neill + 40% Essen" is a point between the two learned styles.
Models trained with form tokens also add an embedding of each token's bar position
(`vocab.Positions`: bar of the part, onset in the bar), given as `pos` ids of the same shape.
Shapes: ids (B, T) -> logits (B, T, V); `prime` reads a prefix (B, T) and returns the state;
`step` takes one token per row and a state.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from generators.music_lib.vocab import POS_IDS


@dataclass(frozen=True)
class ModelConfig:
    kind: str  # "lstm" | "transformer"
    vocab: int
    n_meters: int
    n_modes: int
    n_styles: int
    d_model: int = 256  # embedding / hidden width
    n_layers: int = 2
    n_heads: int = 4  # transformer only
    dropout: float = 0.1
    max_len: int = 1024  # transformer positions
    positions: bool = False  # bar-position feature (vocab.Positions) added to every input; old models: off

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Conditioning(nn.Module):
    """meter + mode + sum_i w_i * style_i, one vector per sequence: (B, D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.meter = nn.Embedding(cfg.n_meters, cfg.d_model)
        self.mode = nn.Embedding(cfg.n_modes, cfg.d_model)
        self.style = nn.Parameter(torch.zeros(cfg.n_styles, cfg.d_model))
        nn.init.normal_(self.style, std=0.02)

    def forward(self, meter: torch.Tensor, mode: torch.Tensor, style_w: torch.Tensor) -> torch.Tensor:
        return self.meter(meter) + self.mode(mode) + style_w @ self.style


class TokenInput(nn.Module):
    """Token embedding, plus the bar-position embedding when the model was trained with it."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
        self.pos = nn.Embedding(POS_IDS, cfg.d_model) if cfg.positions else None

    def forward(self, ids: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        x = self.tok(ids)
        if self.pos is not None:
            if pos is None:
                raise ValueError("this model needs the bar-position ids of its input")
            x = x + self.pos(pos)
        return x


class FolkLSTM(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.emb = TokenInput(cfg)
        self.cond = Conditioning(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = nn.LSTM(cfg.d_model, cfg.d_model, cfg.n_layers, batch_first=True,
                           dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        self.head = nn.Linear(cfg.d_model, cfg.vocab)

    def forward(self, ids: torch.Tensor, cond: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        x = self.drop(self.emb(ids, pos) + cond[:, None, :])  # (B, T, D)
        y, _ = self.rnn(x)
        return self.head(self.drop(y))  # (B, T, V)

    def step(self, ids: torch.Tensor, state: dict[str, Any], pos: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, Any]]:
        # callers disable oneDNN around sampling: it makes one-step LSTM calls 5-7x slower on CPU
        # one token: the layers' cells called directly (torch.lstm_cell, the same arithmetic as
        # nn.LSTM's) skip nn.LSTM's per-call checks and flattening, ~2x faster at batch 1
        # (the embedding and head as plain functions too: the same ops without nn.Module's
        # per-call hooks, which cost as much as the lookup itself at batch 1)
        inp = F.embedding(ids, self.emb.tok.weight)
        if self.emb.pos is not None:
            if pos is None:
                raise ValueError("this model needs the bar-position ids of its input")
            inp = inp + F.embedding(pos, self.emb.pos.weight)
        inp = inp + state["cond"]
        h, c = state["hc"]
        w = self.rnn._flat_weights  # per layer: w_ih, w_hh, b_ih, b_hh
        hs, cs = [], []
        for layer in range(self.cfg.n_layers):
            inp, c_l = torch.lstm_cell(inp, (h[layer], c[layer]), *w[4 * layer:4 * layer + 4])
            hs.append(inp)
            cs.append(c_l)
        return F.linear(inp, self.head.weight, self.head.bias), \
            {"cond": state["cond"], "hc": (torch.stack(hs), torch.stack(cs))}

    def prime(self, ids: torch.Tensor, cond: torch.Tensor, pos: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Run a whole prefix (B, T) at once: logits after its last token and the state."""
        y, hc = self.rnn(self.emb(ids, pos) + cond[:, None, :])
        return self.head(y[:, -1]), {"cond": cond, "hc": hc}

    @staticmethod
    def rows(state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        """The state of the rows `index` (repeats allowed): one row's state copied k times."""
        h, c = state["hc"]
        return {"cond": state["cond"][index], "hc": (h[:, index].contiguous(), c[:, index].contiguous())}

    def run(self, ids: torch.Tensor, state: dict[str, Any], pos: torch.Tensor | None = None) -> torch.Tensor:
        """Logits after each of `ids` (B, T) fed from `state` (B rows), in one call."""
        y, _ = self.rnn(self.emb(ids, pos) + state["cond"][:, None, :], state["hc"])
        return self.head(y)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(),
                                 nn.Linear(4 * cfg.d_model, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        self.p = cfg.dropout

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # one new token attends to everything before it
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.p if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, D)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, (k, v)


class FolkTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.emb = TokenInput(cfg)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.cond = Conditioning(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor, cond: torch.Tensor, bar_pos: torch.Tensor | None = None) -> torch.Tensor:
        T = ids.shape[1]
        if T > self.cfg.max_len:
            raise ValueError(f"sequence of {T} tokens is longer than the model's {self.cfg.max_len}")
        pos = torch.arange(T, device=ids.device)
        x = self.drop(self.emb(ids, bar_pos) + self.pos(pos)[None] + cond[:, None, :])
        for blk in self.blocks:
            x, _ = blk(x)
        return self.head(self.ln(x))

    def step(self, ids: torch.Tensor, state: dict[str, Any], bar_pos: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, Any]]:
        history = state["history"] + [ids]
        bar_history = state["bar_history"] + [bar_pos]
        pos = state["pos"]
        cache = state["cache"]
        if pos >= self.cfg.max_len:  # slide: re-encode the last half of the window from position 0
            keep = torch.stack(history[-self.cfg.max_len // 2:], dim=1)
            kept_bar = bar_history[-self.cfg.max_len // 2:]
            keep_bar = None if bar_pos is None else torch.stack(kept_bar, dim=1)
            x = self.emb(keep, keep_bar) + self.pos(torch.arange(keep.shape[1]))[None] + state["cond"][:, None]
            cache = []
            for blk in self.blocks:
                x, kv = blk(x)
                cache.append(kv)
            out = self.head(self.ln(x[:, -1]))
            return out, {"cond": state["cond"], "cache": cache, "pos": keep.shape[1],
                         "history": history[-self.cfg.max_len // 2:], "bar_history": kept_bar}
        x = self.emb(ids[:, None], None if bar_pos is None else bar_pos[:, None]) \
            + self.pos.weight[pos][None, None] + state["cond"][:, None]
        new_cache = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, cache[i] if cache is not None else None)
            new_cache.append(kv)
        return self.head(self.ln(x[:, -1])), {"cond": state["cond"], "cache": new_cache,
                                               "pos": pos + 1, "history": history,
                                               "bar_history": bar_history}

    def prime(self, ids: torch.Tensor, cond: torch.Tensor, bar_pos: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Run a whole prefix (B, T) at once: logits after its last token and the KV cache."""
        long = ids.shape[1] > self.cfg.max_len
        keep = ids[:, -(self.cfg.max_len // 2):] if long else ids
        keep_bar = None if bar_pos is None else bar_pos[:, -(self.cfg.max_len // 2):] if long else bar_pos
        x = self.emb(keep, keep_bar) + self.pos(torch.arange(keep.shape[1]))[None] + cond[:, None]
        cache = []
        for blk in self.blocks:
            x, kv = blk(x)
            cache.append(kv)
        return self.head(self.ln(x[:, -1])), {"cond": cond, "cache": cache, "pos": keep.shape[1],
                                               "history": list(keep.unbind(1)),
                                               "bar_history": list(keep_bar.unbind(1)) if keep_bar is not None
                                               else [None] * keep.shape[1]}


    @staticmethod
    def rows(state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        """The state of the rows `index` (repeats allowed): one row's state copied k times."""
        return {"cond": state["cond"][index], "pos": state["pos"],
                "cache": [(k[index], v[index]) for k, v in state["cache"]],
                "history": [h[index] for h in state["history"]],
                "bar_history": [None if h is None else h[index] for h in state["bar_history"]]}

    def run(self, ids: torch.Tensor, state: dict[str, Any], pos: torch.Tensor | None = None) -> torch.Tensor:
        """Logits after each of `ids` (B, T) fed from `state` (B rows), one step at a time."""
        out = []
        for t in range(ids.shape[1]):
            logits, state = self.step(ids[:, t], state, None if pos is None else pos[:, t])
            out.append(logits)
        return torch.stack(out, dim=1)


def build(cfg: ModelConfig) -> nn.Module:
    if cfg.kind == "lstm":
        return FolkLSTM(cfg)
    if cfg.kind == "transformer":
        return FolkTransformer(cfg)
    raise ValueError(f"unknown model kind {cfg.kind!r}")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
