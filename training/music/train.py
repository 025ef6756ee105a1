"""Train the music generator's embedded defaults: a folk-rnn LSTM and a small transformer.

    python -m training.music.train                      # both models, 25 min each, 1 thread
    python -m training.music.train --model lstm --minutes 5

Data: `training.music.data` (music21 corpus, parsed once and cached, fixed train/valid/test
split). Each model trains on random windows of the training tunes with AdamW and a cosine
schedule for at most `--minutes` wall-clock minutes, keeps the checkpoint with the best
validation loss, and is evaluated on the test split (NLL per token, nats) next to an
interpolated n-gram baseline fitted on the same training split. Weights go to
assets/music/<kind>.safetensors (fp16 storage, fp32 at load) with <kind>.json holding the
config, the command, the settings and the numbers; `studio train music` calls `main()`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "music"

DEFAULTS = {
    "lstm": {"d_model": 192, "n_layers": 2, "n_heads": 4, "dropout": 0.1, "lr": 3e-3},
    "transformer": {"d_model": 128, "n_layers": 2, "n_heads": 4, "dropout": 0.1, "lr": 3e-3},
}


@dataclass
class Settings:
    model: str = "both"
    minutes: float = 25.0  # wall-clock cap per model (the shipped runs; see assets/music/TRAINING.md)
    max_steps: int = 100000
    batch: int = 8
    seq: int = 256  # tokens per training window
    max_len: int = 256  # transformer positions (= seq: positions beyond the window are never trained)
    seed: int = 1234
    threads: int = 1
    eval_every: int = 100
    eval_tunes: int = 300  # validation tunes used for checkpoint selection
    out: str = str(ASSETS)
    limit: int = 0  # use only this many tunes (tests / smoke runs); 0 = all
    d_model: int = 0  # 0 = DEFAULTS[kind]
    n_layers: int = 0  # 0 = DEFAULTS[kind]
    lr: float = 0.0  # 0 = DEFAULTS[kind]
    mode_balance: float = 0.5  # tune sampling weight (share of its mode) ** -x; 0 = uniform
    limits: str = ""  # first N tunes of a collection, e.g. "essen=2000" (training.music.data.LIMITS)
    init: str = ""  # start from these weights (a model of the same kind, possibly an older vocabulary)


def mode_weights(data: list[tuple], power: float) -> list[float]:
    """Sampling weight per tune: (share of its mode) ** -power, so the rare modes (dorian and
    mixolydian are a few percent of the corpus) are seen more often; power 0 = uniform."""
    counts: dict[int, int] = {}
    for r in data:
        counts[r[2]] = counts.get(r[2], 0) + 1
    return [(counts[r[2]] / len(data)) ** -power for r in data]


def batches(data: list[tuple[list[int], int, int, int, list[int]]], s: Settings, rng: random.Random):
    import torch
    from generators.music_lib import vocab as V

    weights = mode_weights(data, s.mode_balance)
    while True:
        rows = rng.choices(data, weights=weights, k=s.batch)
        L = s.seq + 1
        ids = torch.full((s.batch, L), V.TOKEN_ID[V.PAD], dtype=torch.long)
        pos = torch.zeros((s.batch, L), dtype=torch.long)
        for i, (seq, _m, _k, _s, feat) in enumerate(rows):
            start = 0 if len(seq) <= L or rng.random() < 0.5 else rng.randrange(len(seq) - L + 1)
            w = seq[start:start + L]
            ids[i, :len(w)] = torch.tensor(w)
            pos[i, :len(w)] = torch.tensor(feat[start:start + L])
        meta = torch.tensor([r[1:4] for r in rows], dtype=torch.long)
        yield ids, pos, meta


def style_onehot(idx, n):
    import torch

    return torch.nn.functional.one_hot(idx, n).float()


def evaluate(model, data, max_len: int, batch: int = 16) -> float:
    """Mean NLL per predicted token (nats) over whole tunes.

    The LSTM reads each tune in one pass. The transformer sees at most `max_len` tokens, so long
    tunes are read in windows of max_len with a stride of max_len/2, each token scored once with
    at least max_len/2 tokens of context (the first window scores all its tokens), which is how
    it samples too (`FolkTransformer.step` slides the same way).
    """
    import torch
    from generators.music_lib import vocab as V

    model.eval()
    pad = V.TOKEN_ID[V.PAD]
    window = max_len + 1 if model.cfg.kind == "transformer" else 10 ** 9
    half = max_len // 2
    pieces = []  # (ids, first scored target index, meta, bar positions)
    for seq, m, k, st, feat in data:
        meta = [m, k, st]
        if len(seq) <= window:
            pieces.append((seq, 0, meta, feat))
            continue
        start = 0
        while True:
            chunk = seq[start:start + window]
            pieces.append((chunk, 0 if start == 0 else half, meta, feat[start:start + window]))
            if start + window >= len(seq):
                break
            start += half  # the next window scores the targets after this one's last
    total, n = 0.0, 0
    pieces.sort(key=lambda p: len(p[0]))
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
        for i in range(0, len(pieces), batch):
            rows = pieces[i:i + batch]
            T = max(len(r[0]) for r in rows)
            ids = torch.full((len(rows), T), pad, dtype=torch.long)
            pos = torch.zeros((len(rows), T), dtype=torch.long)
            mask = torch.zeros((len(rows), T - 1), dtype=torch.bool)
            for j, (w, first, _m, feat) in enumerate(rows):
                ids[j, :len(w)] = torch.tensor(w)
                pos[j, :len(w)] = torch.tensor(feat)
                mask[j, first:len(w) - 1] = True
            meta = torch.tensor([r[2] for r in rows], dtype=torch.long)
            cond = model.cond(meta[:, 0], meta[:, 1], style_onehot(meta[:, 2], model.cfg.n_styles))
            logits = model(ids[:, :-1], cond, pos[:, :-1] if model.cfg.positions else None)
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                                    reduction="none").view(len(rows), T - 1)
            total += float(nll[mask].sum())
            n += int(mask.sum())
    model.train()
    return total / max(n, 1)


def train_one(kind: str, splits, s: Settings, log=print, hyper: dict | None = None) -> tuple[object, dict]:
    import torch
    from generators.music_lib import vocab as V
    from generators.music_lib.model import ModelConfig, build, n_params

    torch.manual_seed(s.seed)
    rng = random.Random(s.seed)
    hp = {**DEFAULTS[kind], **(hyper or {})}
    cfg = ModelConfig(kind=kind, vocab=V.VOCAB_SIZE, n_meters=len(V.METERS), n_modes=len(V.MODES),
                      n_styles=len(V.STYLES), d_model=hp["d_model"], n_layers=hp["n_layers"],
                      n_heads=hp["n_heads"], dropout=hp["dropout"], max_len=s.max_len, positions=True)
    model = build(cfg)
    if s.init:
        log(f"[{kind}] starting from {s.init}: {warm_start(model, s.init)}")
    mkldnn = os.environ.get("STUDIO_MUSIC_MKLDNN", "0") == "1"  # oneDNN LSTM is slower here (see OFFLINE.md)
    opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=0.01)
    valid = splits["valid"][:s.eval_tunes]
    gen = batches(splits["train"], s, rng)
    t0 = time.time()
    budget = s.minutes * 60
    best = (float("inf"), None, 0)
    history = []
    step = 0
    while step < s.max_steps and time.time() - t0 < budget:
        frac = min((time.time() - t0) / budget, step / s.max_steps)
        lr = hp["lr"] * (min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, pos, meta = next(gen)
        cond = model.cond(meta[:, 0], meta[:, 1], style_onehot(meta[:, 2], cfg.n_styles))
        with torch.backends.mkldnn.flags(enabled=mkldnn):
            logits = model(ids[:, :-1], cond, pos[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), ids[:, 1:].reshape(-1),
                                                 ignore_index=V.TOKEN_ID[V.PAD])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % s.eval_every == 0 or step == s.max_steps:
            v = evaluate(model, valid, s.max_len)
            history.append({"step": step, "train_loss": round(loss.item(), 4), "valid_nll": round(v, 4),
                            "minutes": round((time.time() - t0) / 60, 2)})
            log(f"[{kind}] step {step} train {loss.item():.3f} valid {v:.3f} ({(time.time() - t0) / 60:.1f} min)")
            if v < best[0]:
                best = (v, {k: t.detach().clone() for k, t in model.state_dict().items()}, step)
    if best[1] is not None:
        model.load_state_dict(best[1])
    info = {"config": cfg.to_json(), "params": n_params(model), "steps": step, "best_step": best[2],
            "minutes": round((time.time() - t0) / 60, 2), "history": history, "hyper": hp}
    return model, info


def warm_start(model, path: str) -> str:
    """Copy weights from an earlier model of the same kind and width: tensors of the same shape
    whole, token tables (embedding, output layer) row by row for the token ids both vocabularies
    share (the form tokens were appended after the old ids); what is new (the form tokens' rows,
    the bar-position embedding) keeps its fresh initialisation, the position table starting at 0
    so the warm model begins exactly where the old one was."""
    import torch
    from safetensors.torch import load_file

    old = {k: v.float() for k, v in load_file(path).items()}
    if "emb.weight" in old:  # saved before the bar-position input existed
        old["emb.tok.weight"] = old.pop("emb.weight")
    state = model.state_dict()
    copied, rows = 0, 0
    with torch.no_grad():
        for k, v in state.items():
            if k not in old:
                if k == "emb.pos.weight":
                    v.zero_()
                continue
            o = old[k]
            if o.shape == v.shape:
                v.copy_(o)
                copied += 1
            elif o.dim() == v.dim() and o.shape[1:] == v.shape[1:] and o.shape[0] < v.shape[0]:
                v[:o.shape[0]].copy_(o)
                rows += 1
            else:
                raise ValueError(f"{path}: {k} has shape {tuple(o.shape)}, this model {tuple(v.shape)}")
    model.load_state_dict(state)
    return f"{copied} tensors copied, {rows} token tables extended"


def save(model, info: dict, out: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    kind = info["config"]["kind"]
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    path = out / f"{kind}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"config": json.dumps(info["config"])})
    tmp.replace(path)
    (out / f"{kind}.json").write_text(json.dumps(info, indent=1) + "\n")
    return path


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.music.train", description=__doc__.splitlines()[0])
    for f, default in asdict(Settings()).items():
        p.add_argument("--" + f.replace("_", "-"), type=type(default), default=default)
    s = Settings(**vars(p.parse_args(argv)))
    import torch
    from training.music import data as D
    from training.music.ngram import NGram

    torch.set_num_threads(s.threads)
    D.apply_limits(s.limits)
    rows = D.load_tunes()
    if s.limit:
        rows = rows[:s.limit]
    splits = D.tokenised(rows)
    counts = {k: (len(v), sum(len(r[0]) - 1 for r in v)) for k, v in splits.items()}
    print(f"tunes/tokens per split: {counts}")
    seq = lambda split: [r[0] for r in splits[split]]  # noqa: E731 - whole tunes, as for the models
    ng = NGram(5).fit(seq("train")).tune(seq("valid")[:s.eval_tunes])
    baseline = {"ngram_order": 5, "lambdas": [round(x, 4) for x in ng.lambdas],
                "valid_nll": round(ng.nll(seq("valid")), 4), "test_nll": round(ng.nll(seq("test")), 4)}
    print(f"n-gram baseline: {baseline}")
    kinds = ["lstm", "transformer"] if s.model == "both" else [s.model]
    out = Path(s.out)
    for kind in kinds:
        hyper = {k: v for k, v in (("d_model", s.d_model), ("n_layers", s.n_layers), ("lr", s.lr)) if v}
        model, info = train_one(kind, splits, s, hyper=hyper)
        info["test_nll"] = round(evaluate(model, splits["test"], s.max_len), 4)
        info["valid_nll"] = round(evaluate(model, splits["valid"], s.max_len), 4)
        info["baseline"] = baseline
        info["data"] = {"split_tunes_tokens": counts, "styles": list(D.V.STYLES),
                        "limits": dict(D.LIMITS)}
        info["settings"] = asdict(s)
        if s.init:
            info["init_sha256"] = file_sha256(Path(s.init))
        info["command"] = "python -m training.music.train " + " ".join(argv if argv is not None else sys.argv[1:])
        info["machine"] = {"python": platform.python_version(), "torch": torch.__version__,
                           "threads": s.threads, "cpu_count": os.cpu_count()}
        path = save(model, info, out)
        print(f"[{kind}] test NLL {info['test_nll']} (n-gram {baseline['test_nll']}) -> {path}")
        # the bar cache's beta is per weights (sha256): new weights decode without it until fitted
        print(f"[{kind}] written repeats: fit the bar cache for these weights with `python -m "
              f"training.music.bar_cache --model {kind} --weights {path}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
