"""Train the embedded Sketch-RNN defaults (Ha & Eck, 2018) on CPU, from data that packages ship.

    nice -n 10 python -m training.sketch.train --dataset kanji --minutes 15
    nice -n 10 python -m training.sketch.train --dataset kanji --baseline --minutes 6

Trains one model per data set (`kanji`, `hershey`; see training/sketch/data.py). `--baseline`
trains the paper's decoder-only model (no encoder, no latent code) on the same data, the
comparison point for held-out reconstruction loss. Writes `<out>/<name>.safetensors` (config in
its metadata) and `<name>.json` with the settings, the command and the held-out numbers.
The paper's recipe, scaled down: Adam (lr 1e-3, decay 0.9999/step to 1e-5), gradient clip 1.0,
KL weight 0.5 annealed from 0.01, KL floor 0.2, random x/y scaling by up to 15%.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from generators.sketch_model import SketchConfig, SketchRNN, save_model
from generators.sketch_strokes import stroke3_to_stroke5
from training.sketch.data import DATASETS, RDP_EPSILON, load_dataset

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "sketch"


def to_batch(drawings: list[np.ndarray], scale: float, pad_to: int | None = None,
             rng: np.random.Generator | None = None, random_scale: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """stroke-3 (frame units) -> padded stroke-5 tensor in model units, and the lengths."""
    lengths = [len(d) for d in drawings]
    steps = pad_to or max(lengths) + 1
    out = np.zeros((len(drawings), steps, 5), dtype=np.float32)
    for i, d in enumerate(drawings):
        s3 = d.copy()
        s3[:, :2] /= scale
        if rng is not None and random_scale > 0:
            s3[:, :2] *= rng.uniform(1 - random_scale, 1 + random_scale, size=(1, 2))
        out[i] = stroke3_to_stroke5(s3, steps)
    return torch.from_numpy(out), torch.tensor(lengths)


@torch.no_grad()
def evaluate(model: SketchRNN, drawings: list[np.ndarray], batch: int = 256, seed: int = 0) -> dict[str, float]:
    """Held-out L_R (= L_s + L_p, normalised by N_max over N_max padded steps) and L_KL.

    For the VAE, `l_r` uses z = mu (the encoder's mean); `l_r_sampled` draws z ~ q(z|x).
    """
    model.eval()
    cfg = model.cfg
    totals: dict[str, float] = {}
    torch.manual_seed(seed)  # only for l_r_sampled's draws; training has already finished using it
    for start in range(0, len(drawings), batch):
        chunk = drawings[start:start + batch]
        x, lengths = to_batch(chunk, cfg.scale_factor, pad_to=cfg.max_len)
        det = model.loss(x, lengths, sample_z=False)
        parts = {k: float(v) for k, v in det.items() if k != "loss"}
        if cfg.z_dim > 0:
            parts["l_r_sampled"] = float(model.loss(x, lengths, sample_z=True)["l_r"])
        for k, v in parts.items():
            totals[k] = totals.get(k, 0.0) + v * len(chunk)
    model.train()
    return {k: v / len(drawings) for k, v in totals.items()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.sketch.train", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=DATASETS, default="kanji")
    p.add_argument("--baseline", action="store_true", help="decoder-only model with no latent code")
    p.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget")
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--enc-hidden", type=int, default=128)
    p.add_argument("--dec-hidden", type=int, default=256)
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--mixtures", type=int, default=20)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--kl-weight", type=float, default=0.5)
    p.add_argument("--kl-min", type=float, default=0.2)
    p.add_argument("--kl-anneal", type=float, default=0.999, help="eta_step = 1 - 0.99 * R^step")
    p.add_argument("--random-scale", type=float, default=0.15)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--name", default="", help="file stem; default <dataset>[-baseline]")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    splits = load_dataset(args.dataset)
    train, valid, test = splits["train"].drawings, splits["valid"].drawings, splits["test"].drawings
    offsets = np.vstack(train)[:, :2]
    scale = float(np.std(offsets))
    max_len = max(len(d) for d in train + valid + test) + 1
    cfg = SketchConfig(enc_hidden=args.enc_hidden, dec_hidden=args.dec_hidden,
                       z_dim=0 if args.baseline else args.z_dim, n_mixtures=args.mixtures,
                       max_len=max_len, dropout=args.dropout, scale_factor=scale, dataset=args.dataset)
    model = SketchRNN(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    name = args.name or (args.dataset + ("-baseline" if args.baseline else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {len(train)} train / {len(valid)} valid / {len(test)} test sketches, N_max {max_len}, "
          f"scale {scale:.3f}, {n_params:,} parameters", flush=True)

    best = math.inf
    best_state = None
    history = []
    t0 = time.monotonic()
    step = 0
    while step < args.max_steps and time.monotonic() - t0 < args.minutes * 60:
        idx = rng.integers(0, len(train), size=args.batch)
        x, lengths = to_batch([train[i] for i in idx], scale, rng=rng, random_scale=args.random_scale)
        eta = 1 - 0.99 * args.kl_anneal ** step
        out = model.loss(x, lengths, kl_weight=args.kl_weight * eta, kl_min=args.kl_min)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in opt.param_groups:
            group["lr"] = (args.lr - 1e-5) * 0.9999 ** step + 1e-5
        opt.step()
        step += 1
        if step % args.eval_every == 0:
            val = evaluate(model, valid)
            score = val["l_r"] + (val.get("l_kl", 0.0) if cfg.z_dim else 0.0)
            history.append({"step": step, "minutes": round((time.monotonic() - t0) / 60, 2),
                            "train_loss": round(float(out["loss"].detach()), 4), **{k: round(v, 4) for k, v in val.items()}})
            print(json.dumps(history[-1]), flush=True)
            if score < best:
                best = score
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    minutes = (time.monotonic() - t0) / 60
    test_metrics = evaluate(model, test)
    valid_metrics = evaluate(model, valid)
    command = "python -m training.sketch.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    weights = args.out / f"{name}.safetensors"
    save_model(model.eval(), weights, extra={"dataset": args.dataset, "command": command})
    report = {"name": name, "command": command, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "config": cfg.to_dict(), "parameters": n_params, "steps": step, "minutes": round(minutes, 2),
              "threads": args.threads, "torch": torch.__version__, "rdp_epsilon": RDP_EPSILON,
              "data": {k: len(v) for k, v in splits.items()},
              "test": {k: round(v, 4) for k, v in test_metrics.items()},
              "valid": {k: round(v, 4) for k, v in valid_metrics.items()}, "history": history}
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"saved": str(weights), "steps": step, "test": report["test"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
