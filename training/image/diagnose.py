"""Can the embedded image UNet learn to use its caption at all? A bounded overfit test.

    nice -n 5 python -m training.image.diagnose --minutes 25      # prints the gap every --eval-every steps

Starts from the cached training state (`python -m training.image.train` leaves it), takes the
8 most common classical radicals x 32 training glyphs (256; captions "water radical. a character
meaning ..., with ..."), and fine-tunes on them only, at the noise levels where the caption decides
the layout (t >= --t-min), with the caption pathways (cross-attention, pooled caption) at
--cond-lr x the learning rate. Every --eval-every steps: the epsilon loss on those 256 glyphs with
their own captions, with another radical's caption (rolled by 32 = one radical block) and with
the empty caption, same timesteps and noise; and the same on up to 64 held-out glyphs of those
radicals. If the loss with the right captions falls below the shuffled one on memorised glyphs,
the architecture can read the caption and the full run's trouble is the strength of the signal;
if not, the wiring is at fault. Nothing is saved.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from training.image import data as cap_data
from training.image import standardize as std
from training.image import text_encoder as te
from training.image import train as T


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.image.diagnose", description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=25.0, help="wall-clock budget")
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--cond-lr", type=float, default=10.0)
    ap.add_argument("--t-min", type=int, default=500)
    ap.add_argument("--drop", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from generators.paths import cache_path

    enc_dir = cache_path("image_train") / "text_encoder_build"
    text_model, tok = te.build(enc_dir / "text_encoder", enc_dir / "tokenizer")
    ds = cap_data.load()
    tr, he = np.flatnonzero(~ds.heldout), np.flatnonzero(ds.heldout)
    counts = np.bincount(ds.radicals[tr], minlength=215)
    top = [int(r) for r in np.argsort(-counts)[:args.classes]]
    idx = np.concatenate([tr[ds.radicals[tr] == r][:args.per_class] for r in top])
    hidx = np.concatenate([he[ds.radicals[he] == r][:8] for r in top])
    feats = te.encode(text_model, tok, [ds.captions[i] for i in idx] + [ds.captions[i] for i in hidx] + [""]).float()
    e_tr, e_he, empty = feats[:len(idx)], feats[len(idx):-1], feats[-1:]
    x_tr, x_he = T.to_pixels(ds.images[idx]), T.to_pixels(ds.images[hidx])
    print(f"radicals {top}: {len(idx)} training glyphs, {len(hidx)} held-out; e.g. {ds.captions[idx[0]]!r}", flush=True)

    st = torch.load(cache_path("image_train") / "train_state.pt", weights_only=False)  # our own cache file
    unet = T.make_unet()
    unet.load_state_dict(st["ema"])
    print(f"from the cached state at step {st['step']}", flush=True)
    if st.get("text_stats") is not None:  # the state was trained on standardised caption features
        e_tr, e_he, empty = (std.apply(f, *st["text_stats"]) for f in (e_tr, e_he, empty))
    sched, _ = T.make_schedulers(st.get("prediction", "epsilon"))
    is_cond = lambda n: n.startswith("add_embedding.") or ".attn2." in n  # noqa: E731
    opt = torch.optim.AdamW([{"params": [p for n, p in unet.named_parameters() if not is_cond(n)], "lr": args.lr},
                             {"params": [p for n, p in unet.named_parameters() if is_cond(n)],
                              "lr": args.lr * args.cond_lr}], weight_decay=0.0)
    per = args.per_class

    def gap(step: int) -> None:
        unet.eval()
        out = []
        for name, x, e, roll in (("memorised", x_tr, e_tr, per), ("held-out", x_he, e_he, 8)):
            right = T.eval_loss(unet, sched, x, e, seed=7, t_min=args.t_min)
            shuf = T.eval_loss(unet, sched, x, torch.roll(e, roll, 0), seed=7, t_min=args.t_min)
            none = T.eval_loss(unet, sched, x, empty.expand(len(x), -1, -1), seed=7, t_min=args.t_min)
            out.append(f"{name}: right {right:.5f} other radical {shuf:.5f} empty {none:.5f} "
                       f"(gap {100 * (shuf - right) / right:+.1f}%)")
        print(f"step {step} t>={args.t_min}: " + "; ".join(out), flush=True)
        unet.train()

    gap(0)
    rng = np.random.default_rng(0)
    t0, step = time.time(), 0
    while time.time() - t0 < args.minutes * 60:
        b = rng.integers(0, len(idx), args.batch)
        emb = e_tr[b].clone()
        emb[torch.from_numpy(rng.random(args.batch) < args.drop)] = empty
        t = torch.randint(args.t_min, T.NUM_TRAIN_TIMESTEPS, (args.batch,))
        loss = T.diffusion_loss(unet, sched, x_tr[b], emb, t, torch.randn_like(x_tr[b]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        step += 1
        if step % args.eval_every == 0:
            gap(step)
    gap(step)
    print(f"{step} steps in {(time.time() - t0) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
