"""Screenplay quality of the hierarchical co-writer (story_lib/hierarchy.py) on the embedded default.

Run: .venv/bin/python -m benchmarks.bench_screenplay [--seed 1] [--tokens 160] [--turns 4]
Writes benchmarks/results/screenplay.json. For each bible in prompts/bibles/ (3 bibles x 4 beats):
plan the scenes (mode 'plan', one scene per beat: 12 scenes), then write each planned scene
(mode 'scene', scene_number N) into one document, and play `--turns` interactive turns (prose).

Per scene (issue #18's measures):
- heading: the scene's heading is the plan's (INT./EXT. and the planned location);
- present: every character the plan puts in the scene speaks (a cue with words under it) or is
  named in an action line; `only_planned`: nobody else speaks;
- narration: speeches that narrate in the third person, by the generator's own rule
  (guided.narrates) and by a stricter one (any speech opening "He/She/They/His/Her/Their");
- leak: prompt labels (guided.PROMPT_LABEL_RE, story.LEAK_RE) or any 8-word run copied from the
  prompt the model read;
- loop: a word 4-gram three or more times, or a line three or more times;
- beat: MiniLM (all-MiniLM-L6-v2, studio/features/text.py) similarity of the scene's text (no
  heading, cues or markers) to its own beat vs the bible's other beats: closest to its own?
Per turn: ends at a sentence end with 2-4 sentences; names the action's verb or object
(story.mentions: the same stem rule the generator redraws by); how many turns the generator had
to open on the player's verb (no draft answered) is counted apart, with the share without them.
Targets: beat-closest >= 75% of scenes; turns >= 90% in form, >= 80% answering the action.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "screenplay.json"
BIBLES = ROOT / "prompts" / "bibles"
ACTIONS = {"the_keeper": ["I climb the stairs to the lamp", "I open the cottage door", "I shout at Crane",
                          "I search the rocky shore for the sailor"],
           "glass_orchard": ["I pick an apple from the tree", "I read the bank's letter", "I open the old chest",
                             "I show the deed to the crowd"],
           "europa_signal": ["I turn up the speakers", "I copy the recording", "I drive the rover onto the ice",
                             "I open the airlock"]}
CUE_RE = re.compile(r"^([A-Z][A-Z0-9 .'\-]{1,39})$")


def elements(passage: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(action paragraphs, [(cue, speech)]) of a Fountain scene body (blank-line separated blocks)."""
    from generators.story_lib import fountain

    actions, speeches = [], []
    for block in passage.split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines or fountain.HEADING_RE.match(lines[0]) or lines[0].startswith("[["):
            continue
        if CUE_RE.match(lines[0]) and len(lines) > 1:
            speeches.append((lines[0], " ".join(ln for ln in lines[1:] if not ln.startswith("("))))
        else:
            actions.append(" ".join(lines))
    return actions, speeches


def loops(lines: list[str]) -> bool:
    """A word 4-gram three or more times, or one line (speech or action) three or more times; cues
    and headings, which repeat by nature, are not counted."""
    words = re.findall(r"\w+", " ".join(lines).lower())
    grams = [" ".join(words[i:i + 4]) for i in range(len(words) - 3)]
    lines = [ln.strip().lower() for ln in lines if ln.strip()]
    return any(grams.count(g) >= 3 for g in set(grams)) or any(lines.count(ln) >= 3 for ln in set(lines))


def copied_runs(passage: str, prompt: str, n: int = 8) -> list[str]:
    p = re.findall(r"\w+", prompt.lower())
    grams = {" ".join(p[i:i + n]) for i in range(len(p) - n + 1)}
    w = re.findall(r"\w+", passage.lower())
    return sorted({" ".join(w[i:i + n]) for i in range(len(w) - n + 1)} & grams)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=160, help="max_new_tokens per scene")
    ap.add_argument("--turns", type=int, default=4, help="interactive turns per bible")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from generators.base import Progress, Rng
    from generators.story import LEAK_RE, StoryParams, StoryWriter, mentions
    from generators.story_lib import guided, sampling
    from generators.story_lib.bible import parse_bible
    from studio.features.text import TextEmbedder

    g = StoryWriter()
    g.load(torch.device("cpu"))
    embedder = TextEmbedder()
    strict = re.compile(r"^(?:He|She|They|His|Her|Their)\b")
    scenes: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for path in sorted(BIBLES.glob("*.json")):
        bible = json.loads(path.read_text())
        t = time.perf_counter()
        planned = g.generate(StoryParams(mode="plan", bible=bible, scenes_per_beat=1), rng=Rng(args.seed),
                             progress=Progress.none())
        plan_bible = planned.data["bible"]
        plans.append({"bible": path.stem, "seconds": round(time.perf_counter() - t, 1), "scenes": plan_bible["scenes"]})
        parsed = parse_bible(plan_bible)
        beat_vecs = [embedder.embed(f"{b.name}: {b.description}") for b in parsed.beats]
        doc = ""
        for n, sc in enumerate(parsed.scenes, 1):
            params = StoryParams(mode="scene", scene_number=n, bible=plan_bible, text=doc, max_new_tokens=args.tokens)
            ids, _plan, _b = g.build_prompt(params)
            prompt_text = g.tokenizer.decode(ids, skip_special_tokens=True)
            t = time.perf_counter()
            r = g.generate(params, rng=Rng(args.seed + n), progress=Progress.none())
            seconds = time.perf_counter() - t
            doc = r.data["text"]
            passage = r.data["passage"]
            actions, speeches = elements(passage)
            names = list(sc.characters)
            heading = next((ln for ln in passage.split("\n") if ln.strip()), "")
            spoke = {cue for cue, speech in speeches if re.search(r"[A-Za-z]", speech)}
            acted = {nm.upper() for nm in names for a in actions if re.search(rf"\b{re.escape(nm)}\b", a)}
            body = "\n".join(actions + [s for _c, s in speeches])
            sims = [float(np.dot(embedder.embed(body), v)) for v in beat_vecs]
            own = next(i for i, b in enumerate(parsed.beats) if b.name == sc.beat)
            leaks = [m.group(0) for m in guided.PROMPT_LABEL_RE.finditer(passage)] + \
                [m.group(0) for m in LEAK_RE.finditer(passage)]
            copied = copied_runs(body, prompt_text)
            scenes.append({
                "bible": path.stem, "scene": n, "beat": sc.beat, "planned_heading": sc.heading, "heading": heading,
                "heading_ok": heading == sc.heading, "int_ext": sc.int_ext, "characters": names,
                "spoke": sorted(spoke), "acted": sorted(acted),
                "present_ok": all(nm.upper() in spoke | acted for nm in names),
                "only_planned": {c.split(" (")[0] for c in spoke} <= {nm.upper() for nm in names},
                "speeches": len(speeches), "actions": len(actions),
                "narration_rule": sum(guided.narrates(s, [nm.title() for nm in names]) for _c, s in speeches),
                "narration_strict": sum(bool(strict.match(s)) for _c, s in speeches),
                "leaks": leaks, "copied_8grams": copied, "loop": loops(actions + [s for _c, s in speeches]),
                "beat_similarity": [round(x, 3) for x in sims], "closest_beat_ok": int(np.argmax(sims)) == own,
                "new_tokens": r.data["new_tokens"], "seconds": round(seconds, 1), "passage": passage})
            print(f"{path.stem} scene {n}: heading {scenes[-1]['heading_ok']} present {scenes[-1]['present_ok']} "
                  f"beat {scenes[-1]['closest_beat_ok']} ({seconds:.0f}s)", flush=True)
        story = "\n\n".join(a for a in re.split(r"\n\n", doc) if not a.startswith("[[") and not a.startswith("INT"))
        for k, action in enumerate(ACTIONS.get(path.stem, [])[:args.turns]):
            t = time.perf_counter()
            r = g.generate(StoryParams(mode="turn", format="prose", bible=plan_bible, text=story[-1500:],
                                       action=action, max_new_tokens=100), rng=Rng(args.seed + 100 + k),
                           progress=Progress.none())
            answer = r.data["passage"]
            n_sent = len(sampling.sentence_ends(answer + " "))
            turns.append({"bible": path.stem, "action": action, "answer": answer, "sentences": n_sent,
                          "form_ok": 2 <= n_sent <= 4 and bool(re.search(r"[.!?…][\"'”’)]*$", answer.strip())),
                          "mentions_action": mentions(action, answer),
                          "opened_on_verb": r.data.get("layout") == ["turn:opened-on-verb"],
                          "leak": bool(LEAK_RE.search(answer) or guided.PROMPT_LABEL_RE.search(answer)),
                          "loop": loops(re.split(r"(?<=[.!?])\s+", answer)),
                          "seconds": round(time.perf_counter() - t, 1)})
            print(f"turn {action!r}: {turns[-1]['form_ok']} {turns[-1]['mentions_action']}", flush=True)

    def share(key: str, rows: list[dict[str, Any]]) -> float:
        return round(sum(bool(r[key]) for r in rows) / max(1, len(rows)), 3)

    n_speech = sum(s["speeches"] for s in scenes)
    summary = {
        "scenes": len(scenes), "heading_ok": share("heading_ok", scenes), "present_ok": share("present_ok", scenes),
        "only_planned_speak": share("only_planned", scenes),
        "speeches": n_speech, "narrating_speeches_rule": sum(s["narration_rule"] for s in scenes),
        "narrating_speeches_strict": sum(s["narration_strict"] for s in scenes),
        "scenes_with_label_leaks": sum(bool(s["leaks"]) for s in scenes),
        "scenes_with_copied_8grams": sum(bool(s["copied_8grams"]) for s in scenes),
        "scenes_with_loops": sum(s["loop"] for s in scenes),
        "closest_to_own_beat": share("closest_beat_ok", scenes), "closest_to_own_beat_target": 0.75,
        "ext_scenes": sum(s["int_ext"] == "EXT" for s in scenes),
        "turns": len(turns), "turn_form_ok": share("form_ok", turns), "turn_form_target": 0.9,
        "turn_mentions_action": share("mentions_action", turns), "turn_mentions_target": 0.8,
        "turns_opened_on_verb": sum(t["opened_on_verb"] for t in turns),
        "turn_mentions_action_model_only": round(sum(t["mentions_action"] and not t["opened_on_verb"]
                                                     for t in turns) / max(1, len(turns)), 3),
        "turn_leaks": sum(t["leak"] for t in turns), "turn_loops": sum(t["loop"] for t in turns),
    }
    result = {"benchmark": "screenplay", "command": "python -m benchmarks.bench_screenplay "
              + " ".join(argv or []), "seed": args.seed, "max_new_tokens": args.tokens,
              "model": "embedded SmolLM2-135M-Instruct", "engine": g.engine.name, "precision": g.precision,
              "machine": platform.platform(), "seconds": round(time.perf_counter() - t0, 1),
              "summary": summary, "plans": plans, "scenes": scenes, "turns": turns}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
