"""Train the embedded Sketch-RNN defaults (Ha & Eck, 2018) on CPU, from data that packages ship.

    nice -n 10 python -m training.sketch.train --dataset kanji --minutes 15
    nice -n 10 python -m training.sketch.train --dataset kanji --baseline --minutes 6

Trains one model per data set (`kanji`, `hershey`; see training/sketch/data.py). `--baseline`
trains the paper's decoder-only model (no encoder, no latent code) on the same data, the
comparison point for held-out reconstruction loss. Writes `<out>/<name>.safetensors` (config in
its metadata) and `<name>.json` with the settings, the command and the held-out numbers.
The paper's recipe, scaled down: Adam (lr 1e-3, decay 0.9999/step to 1e-5), gradient clip 1.0,
KL weight (default 0.5) annealed from 1% of it, KL floor 0.2, and the paper's augmentation:
random x/y scaling by up to 15% and dropping interior points with probability 0.1.
For issue #17 (a latent that carries the drawing) three options: `--input-dropout` (zero a
share of the decoder's input rows so it must read z), `--partial-encoder` (a share of the
encoder's inputs are the sketch's first strokes, so a creator's partial drawing encodes to a code
of the whole one: what `complete` uses), and `--select recon` (keep the checkpoint whose
validation reconstructions are most often closest to their own inputs, generators/sketch_metrics.py).
`--init` continues from earlier weights of the same sizes.
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


def drop_points(s3: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """The paper's augmentation: drop interior pen-down points with probability `prob`.

    A dropped point's offset is carried into the next point, so the rest of the drawing stays
    where it was; the first two points of each stroke and every stroke's last point are kept.
    """
    if prob <= 0 or len(s3) < 4:
        return s3
    out = s3.copy()
    keep = np.ones(len(s3), dtype=bool)
    run = 0  # points since the last pen lift
    for i in range(len(s3) - 1):
        lifted_before = i == 0 or s3[i - 1, 2] > 0.5
        run = 0 if lifted_before else run + 1
        if s3[i, 2] < 0.5 and run >= 2 and rng.random() < prob:
            keep[i] = False
            out[i + 1, :2] += out[i, :2]
    return out[keep]


def first_strokes(s3: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The first k strokes of a drawing (k uniform in 1..strokes-1); the drawing itself if one stroke."""
    ends = np.flatnonzero(s3[:, 2] > 0.5)
    if len(ends) < 2:
        return s3
    k = int(rng.integers(1, len(ends)))
    return s3[:ends[k - 1] + 1]


def augment(s3: np.ndarray, rng: np.random.Generator, random_scale: float, drop_prob: float) -> np.ndarray:
    """The paper's augmentation: random x/y scaling, then point dropping (frame units)."""
    out = drop_points(s3, drop_prob, rng) if drop_prob > 0 else s3.copy()
    if random_scale > 0:
        out[:, :2] *= rng.uniform(1 - random_scale, 1 + random_scale, size=(1, 2))
    return out


def to_batch(drawings: list[np.ndarray], scale: float, pad_to: int | None = None,
             rng: np.random.Generator | None = None, random_scale: float = 0.0,
             drop_prob: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """stroke-3 (frame units) -> padded stroke-5 tensor in model units, and the lengths."""
    if rng is not None and drop_prob > 0:
        drawings = [drop_points(d, drop_prob, rng) for d in drawings]
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


def reconstruction_measures(model: SketchRNN, drawings: list[np.ndarray], index=None) -> dict[str, float]:
    """Low-temperature reconstructions of `drawings` (sketch_metrics): the share closest to their own
    input, and the mean rank of the own input among all (0 = nearest; a graded, less noisy view)."""
    from generators.sketch_metrics import reconstruction_ranks

    model.eval()
    ranks = np.array(reconstruction_ranks(model, drawings, index=index))
    model.train()
    return {"recon_share": float(np.mean(ranks == 0)), "recon_mean_rank": float(np.mean(ranks)) / max(len(drawings) - 1, 1)}


@torch.no_grad()
def prior_stroke_ratio(model: SketchRNN, real_strokes: float, n: int = 64, temperature: float = 0.1) -> float:
    """Mean strokes of n drawings from z ~ N(0, I) over the real mean: a checkpoint whose prior no longer
    draws characters (a small KL weight lets the codes drift from N(0, I)) is not kept."""
    from generators.sketch_metrics import rows_to_strokes

    model.eval()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, model.cfg.z_dim, generator=gen)
    rows = model.sample(z, batch=n, max_steps=model.cfg.max_len, temperature=temperature, generator=gen)
    model.train()
    return float(np.mean([len(rows_to_strokes(r, model.cfg.scale_factor)) for r in rows])) / real_strokes


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
    p.add_argument("--drop-points", type=float, default=0.1, help="the paper's point-dropping augmentation")
    p.add_argument("--input-dropout", type=float, default=0.0, help="share of decoder input rows zeroed")
    p.add_argument("--partial-encoder", type=float, default=0.0,
                   help="share of sketches whose encoder sees only their first strokes (for completion)")
    p.add_argument("--select", choices=("elbo", "recon"), default="elbo",
                   help="keep the checkpoint with the best validation -ELBO, or the lowest mean rank of the "
                        "validation reconstructions' own inputs (the share of hits is too coarse early on)")
    p.add_argument("--stroke-tolerance", type=float, default=0.2,
                   help="with --select recon, keep only checkpoints whose unconditional drawings (temperature "
                        "0.1) have strokes within this share of the real mean")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, default=None,
                   help="start from these weights (same sizes), e.g. to continue a run under a new recipe")
    p.add_argument("--widen-from", type=Path, default=None,
                   help="start from these weights with the decoder widened to --dec-hidden (training/sketch/widen.py); "
                        "other sizes must match")
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
    if args.init is not None:
        from generators.sketch_model import load_model

        start = load_model(args.init)
        if start.cfg.to_dict() != cfg.to_dict():
            raise SystemExit(f"--init {args.init}: its config {start.cfg.to_dict()} differs from {cfg.to_dict()}")
        model.load_state_dict(start.state_dict())
    elif args.widen_from is not None:
        from generators.sketch_model import load_model
        from training.sketch.widen import widen_decoder

        small = load_model(args.widen_from)
        wide = widen_decoder(small, args.dec_hidden, seed=args.seed)
        if wide.cfg.to_dict() != cfg.to_dict():
            raise SystemExit(f"--widen-from {args.widen_from}: widened config {wide.cfg.to_dict()} differs from {cfg.to_dict()}")
        model.load_state_dict(wide.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    name = args.name or (args.dataset + ("-baseline" if args.baseline else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {len(train)} train / {len(valid)} valid / {len(test)} test sketches, N_max {max_len}, "
          f"scale {scale:.3f}, {n_params:,} parameters", flush=True)

    valid_index = None
    if cfg.z_dim:
        from generators.sketch_metrics import ChamferIndex
        from generators.sketch_strokes import stroke3_to_strokes

        valid_index = ChamferIndex([stroke3_to_strokes(d) for d in valid])
        real_strokes = float(np.mean([d[:, 2].sum() for d in valid]))
    best = math.inf
    best_state = None
    history = []
    t0 = time.monotonic()
    step = 0
    while step < args.max_steps and time.monotonic() - t0 < args.minutes * 60:
        idx = rng.integers(0, len(train), size=args.batch)
        items = [augment(train[i], rng, args.random_scale, args.drop_points) for i in idx]
        x, lengths = to_batch(items, scale)
        enc_x = enc_lengths = None
        if args.partial_encoder > 0 and cfg.z_dim:
            # A share of the encoder's inputs are the sketch's first strokes; the decoder still
            # reconstructs the whole sketch, so the code of a prefix predicts its completion.
            enc_items = [first_strokes(d, rng) if rng.random() < args.partial_encoder else d for d in items]
            enc_x, enc_lengths = to_batch(enc_items, scale)
        eta = 1 - 0.99 * args.kl_anneal ** step
        out = model.loss(x, lengths, kl_weight=args.kl_weight * eta, kl_min=args.kl_min,
                         enc_x=enc_x, enc_lengths=enc_lengths, input_dropout=args.input_dropout)
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
            if cfg.z_dim:  # the measure that matters: does the code carry the drawing?
                val.update(reconstruction_measures(model, valid, valid_index))
                val["prior_stroke_ratio"] = prior_stroke_ratio(model, real_strokes)
                if args.select == "recon":
                    in_range = abs(val["prior_stroke_ratio"] - 1) <= args.stroke_tolerance
                    score = val["recon_mean_rank"] if in_range else math.inf
            history.append({"step": step, "minutes": round((time.monotonic() - t0) / 60, 2),
                            "train_loss": round(float(out["loss"].detach()), 4), **{k: round(v, 4) for k, v in val.items()}})
            print(json.dumps(history[-1]), flush=True)
            # the latest weights too, so a long run cut short can be evaluated and continued
            save_model(model, args.out / f"{name}.last.safetensors", extra={"dataset": args.dataset, "step": str(step)})
            if score < best:
                best = score
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                # best so far on disk too, so a run stopped early still leaves its best weights
                save_model(model, args.out / f"{name}.best.safetensors",
                           extra={"dataset": args.dataset, "step": str(step)})
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
