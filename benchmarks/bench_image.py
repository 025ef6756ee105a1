"""Embedded text-to-image model (kanji-glyphs-64): conditioning, fidelity and speed.

    nice -n 5 python -m benchmarks.bench_image          # writes benchmarks/results/image.json

Conditioning: a small CNN learns to tell the K most common classical radicals (KANJIDIC2) apart
from real 64 px training glyphs; its accuracy on real held-out glyphs is the ceiling. Then, for
held-out glyphs of those K radicals (captions never trained on), the model draws one image from
each caption, at guidance 1 (no guidance) and 5, 20 DPM-Solver++ steps, through the studio's own
image generator, and the classifier labels them: accuracy against chance (1/K, and the share of
the most common class). Two kinds of prompt: the full caption (meaning + the parts KanjiVG names,
"a character meaning 'lake', with water on the left and ..."), and the bare meaning ("a character
meaning 'lake'"), which rarely says how the character is drawn. Fidelity: a Frechet distance (FID's formula) between Gaussians fitted to
the classifier's penultimate features of generated and real held-out glyphs, next to baselines:
the class-mean image of each radical, GAN samples (unconditional, 32 px upscaled), and real
training glyphs (the floor). Speed: one image and a batch of 4 at 64 px, 20 steps, guidance 5,
through `Diffusion.generate`, side by side (runs interleaved, so machine load hits all alike):
the generator as shipped (2 threads, UNet in channels_last on CPU), the UNet in the default
contiguous layout, and 1 thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.common import write_result
from generators.base import Progress, Rng
from generators.image import DEFAULT_MODEL, Diffusion, DiffusionParams
from training.image import data as cap_data


class RadicalNet(nn.Module):
    """64 -> 32 -> 16 -> 8 conv stack, 64-d features, K logits."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(256, 64), nn.ReLU())
        self.head = nn.Linear(64, k)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def to_input(ink: np.ndarray) -> torch.Tensor:
    """(N, 64, 64) ink in [0, 1] -> (N, 1, 64, 64)."""
    return torch.from_numpy(np.asarray(ink, dtype=np.float32))[:, None]


def train_classifier(x: np.ndarray, y: np.ndarray, k: int, epochs: int, seed: int = 0) -> RadicalNet:
    torch.manual_seed(seed)
    net = RadicalNet(k)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    rng = np.random.default_rng(seed)
    xt, yt = to_input(x), torch.from_numpy(y)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(order), 64):
            b = order[i:i + 64]
            # small random shifts: generated glyphs need not sit exactly where real ones do
            dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
            xb = torch.roll(xt[b], shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net(xb), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def predict(net: RadicalNet, ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = torch.cat([net.features(to_input(ink[i:i + 128])) for i in range(0, len(ink), 128)])
    return net.head(feats).argmax(1).numpy(), feats.numpy().astype(np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(Ca + Cb - 2 (Ca Cb)^1/2) (Heusel et al. 2017), via eigenvalues."""
    from scipy import linalg

    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(mu @ mu + np.trace(ca + cb - 2 * covmean))


def generated_ink(gen: Diffusion, captions: list[str], guidance: float, seed: int, batch: int) -> np.ndarray:
    """One image per caption (seed + index), as ink in [0, 1] (black ink on white paper -> 1).
    Captions go through the loaded pipeline `batch` at a time (the studio's generator takes one
    prompt per job); the speed test below goes through `Diffusion.generate` itself."""
    pipe = gen._pipe.for_mode("text")
    out = []
    for i in range(0, len(captions), batch):
        caps = captions[i:i + batch]
        gens = [torch.Generator("cpu").manual_seed(seed + i + j) for j in range(len(caps))]
        with torch.inference_mode():
            imgs = pipe(caps, num_inference_steps=20, guidance_scale=guidance, generator=gens,
                        output_type="pil", clean_caption=False).images
        out += [1.0 - np.asarray(im.convert("L"), dtype=np.float32) / 255.0 for im in imgs]
    return np.stack(out)


def gan_ink(n: int, seed: int) -> np.ndarray | None:
    """GAN samples (32 px) upscaled to 64 px, or None when the GAN weights are absent."""
    from PIL import Image

    from generators.gan import DEFAULT_WEIGHTS, GANParams, GlyphGAN

    if not DEFAULT_WEIGHTS.is_file():
        return None
    g = GlyphGAN()
    g.load(torch.device("cpu"))
    r = g.generate(GANParams.from_dict({"count": n, "scale": 1, "invert": False}), rng=Rng(seed),
                   progress=Progress.none())
    imgs = [o.data for o in r.outputs if o.role == "image"][:n]
    return np.stack([np.asarray(im.convert("L").resize((64, 64), Image.BILINEAR), dtype=np.float32) / 255.0
                     for im in imgs])


def speed(gen: Diffusion, threads: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per `generate` call for each setting, and each one's ratio to the shipped."""
    unet = gen._pipe.base.unet
    shipped = unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    settings = {"shipped": (threads, shipped), "contiguous_unet" if shipped else "channels_last_unet":
                (threads, not shipped), "1_thread": (1, shipped)}
    res: dict[str, dict[str, float]] = {}
    for batch in (1, 4):
        p = DiffusionParams.from_dict({"prompt": "a character meaning 'water'", "steps": 20, "guidance": 5.0,
                                       "batch": batch})
        times: dict[str, list[float]] = {k: [] for k in settings}
        for r in range(repeats + 1):  # the first round warms up
            for name, (n, cl) in settings.items():
                torch.set_num_threads(n)
                unet.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
                t0 = time.perf_counter()
                gen.generate(p, rng=Rng(r), progress=Progress.none())
                if r:
                    times[name].append(time.perf_counter() - t0)
        for name, ts in times.items():
            res.setdefault(name, {})[f"batch{batch}_median_s"] = float(np.median(ts))
    unet.to(memory_format=torch.channels_last if shipped else torch.contiguous_format)
    torch.set_num_threads(threads)
    for name in settings:
        for batch in (1, 4):
            res[name][f"batch{batch}_vs_shipped"] = res[name][f"batch{batch}_median_s"] / res["shipped"][f"batch{batch}_median_s"]
        res[name]["threads"], res[name]["channels_last"] = settings[name][0], settings[name][1]
    return res


def model_step(folder: str = "") -> int | None:
    """Training steps of the model, from the training.json saved beside its folder."""
    import json
    from pathlib import Path

    from generators.image import EMBEDDED

    log = (Path(folder) if folder else EMBEDDED[DEFAULT_MODEL]).parent / "training.json"
    return json.loads(log.read_text(encoding="utf-8")).get("steps") if log.is_file() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classes", type=int, default=10, help="the K most common radicals")
    ap.add_argument("--per-class", type=int, default=4, help="held-out captions drawn per radical")
    ap.add_argument("--epochs", type=int, default=8, help="classifier training epochs")
    ap.add_argument("--repeats", type=int, default=2, help="speed repetitions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="",
                    help="a candidate pipeline folder (e.g. a training run's --out) instead of the shipped "
                         "model; its results go to image_candidate.json, without the speed part (same UNet)")
    ap.add_argument("--speed-only", action="store_true",
                    help="only time generation, replacing the speed part of the existing image.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.time()
    if args.speed_only:
        import json

        from benchmarks.common import RESULTS

        gen = Diffusion()
        gen.load(torch.device("cpu"))
        old = json.loads((RESULTS / "image.json").read_text())
        for k in ("benchmark", "when", "machine"):
            old.pop(k, None)
        old["speed_64px_20_steps_guidance_5"] = {
            **speed(gen, threads=Diffusion.cpu_threads, repeats=args.repeats),
            "target_batch1_s": 1.0, "target_batch4_s": 2.0, "load_average": os.getloadavg()[0],
            "command": f"nice -n 5 python -m benchmarks.bench_image --speed-only --repeats {args.repeats}"}
        write_result("image", old)
        return 0

    ds = cap_data.load()
    train, held = ds.subset(~ds.heldout), ds.subset(ds.heldout)
    counts = np.bincount(train.radicals, minlength=215)
    top = [int(r) for r in np.argsort(-counts)[:args.classes]]
    label = {r: i for i, r in enumerate(top)}
    tr_mask = np.isin(train.radicals, top)
    he_mask = np.isin(held.radicals, top)
    x_tr, y_tr = train.images[tr_mask], np.array([label[r] for r in train.radicals[tr_mask]])
    x_he, y_he = held.images[he_mask], np.array([label[r] for r in held.radicals[he_mask]])
    net = train_classifier(x_tr, y_tr, len(top), args.epochs, args.seed)
    pred_he, f_he = predict(net, x_he)
    real_acc = float((pred_he == y_he).mean())
    print(f"classifier: {len(x_tr)} train glyphs, held-out real accuracy {real_acc:.3f}", flush=True)

    # the prompts: up to --per-class held-out captions of each radical
    rng = np.random.default_rng(args.seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(y_he == c))[:args.per_class] for c in range(len(top))])
    prompts = {"full": [held.captions[np.flatnonzero(he_mask)[i]] for i in pick],
               "meaning_only": [held.short[np.flatnonzero(he_mask)[i]] for i in pick]}
    y_pick = y_he[pick]

    gen = Diffusion(args.model)  # none given: the embedded default, the studio's own code path
    gen.load(torch.device("cpu"))
    torch.set_num_threads(1)
    results: dict[str, object] = {}
    fids: dict[str, float] = {}
    for kind, g in (("full", 1.0), ("full", 5.0), ("meaning_only", 5.0)):
        t0 = time.time()
        ink = generated_ink(gen, prompts[kind], g, args.seed, 8)
        pred, feats = predict(net, ink)
        acc = float((pred == y_pick).mean())
        key = f"guidance_{g:g}" if kind == "full" else f"{kind}_guidance_{g:g}"
        fids[f"generated_{key}"] = frechet(feats, f_he)
        results[key] = {"accuracy": acc, "n": len(pick), "seconds": time.time() - t0,
                        "ink_share": float(ink.mean())}
        print(f"{kind} captions, guidance {g}: accuracy {acc:.3f} ({time.time() - t0:.0f}s)", flush=True)
        if key == "guidance_5":
            from PIL import Image

            tiles = 1.0 - ink[:40]
            tiles = np.concatenate([tiles, np.ones(((-len(tiles)) % 8, 64, 64), np.float32)])
            grid = tiles.reshape(-1, 8, 64, 64).transpose(0, 2, 1, 3).reshape(-1, 8 * 64)
            Image.fromarray((grid * 255).astype(np.uint8)).save(
                os.path.join(os.path.dirname(__file__), "results",
                             "image_candidate_samples.png" if args.model else "image_samples.png"))
    class_mean = np.stack([x_tr[y_tr == y_pick[i]].mean(0) for i in range(len(pick))])
    fids["baseline_class_mean_image"] = frechet(predict(net, class_mean)[1], f_he)
    mean_acc = float((predict(net, class_mean)[0] == y_pick).mean())
    gan = gan_ink(len(pick), args.seed)
    if gan is not None:
        fids["baseline_gan_unconditional_32px_upscaled"] = frechet(predict(net, gan)[1], f_he)
    sub = rng.permutation(len(x_tr))[:len(pick)]
    fids["reference_real_training_glyphs"] = frechet(predict(net, x_tr[sub])[1], f_he)

    chance = 1.0 / len(top)
    majority = float(np.bincount(y_pick).max() / len(y_pick))
    g5 = results["guidance_5"]["accuracy"]  # type: ignore[index]
    spd = None if args.model else speed(gen, threads=Diffusion.cpu_threads, repeats=args.repeats)
    write_result("image_candidate" if args.model else "image", {
        "model": args.model or DEFAULT_MODEL,
        "model_step": model_step(args.model),
        "method": "radical classifier (CNN) on real 64 px training glyphs; prompts = held-out captions "
                  "(guidance_*: meaning + parts; meaning_only_*: the bare meaning)",
        "prompt_examples": prompts["full"][:2] + prompts["meaning_only"][:2],
        "real_heldout_ink_share": float(x_he.mean()),
        "classes": {"k": len(top), "kangxi_radicals": top, "chance": chance, "majority_share": majority},
        "classifier_accuracy_real_heldout": real_acc,
        "conditioning": results,
        "conditioning_gain_over_chance_guidance_5": g5 / chance,
        "class_mean_image_accuracy": mean_acc,
        "frechet_distance_to_real_heldout": fids,
        **({} if spd is None else {"speed_64px_20_steps_guidance_5": {**spd, "target_batch1_s": 1.0,
                                                                      "target_batch4_s": 2.0}}),
        "load_average_at_end": os.getloadavg()[0],
        "seconds": time.time() - t_start,
        "command": "nice -n 5 python -m benchmarks.bench_image " + " ".join(argv if argv is not None else sys.argv[1:]),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
