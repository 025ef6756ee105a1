"""Music: folk-tune melodies from a token language model (folk-rnn, Sturm et al., 2016).

An LSTM (default: on the full-corpus run it has the lower held-out NLL, follows the requested key
more often and samples faster; benchmarks/results/music.json) or a small transformer, trained
here on the music21 corpus (folk tunes and Bach chorale melodies) in folk-rnn-style ABC tokens
(training/music/), conditioned on meter, mode and a DeepJ-style mixture of styles
(Mao et al., 2018). Three actions: compose from nothing, continue the creator's primer (ABC text,
a MIDI upload or a previous output), or infill chosen bars Coconet-style (Huang et al., 2017).
The tokens carry form, as folk-rnn's do (bar lines, `||`, repeats `|: :|`, first and second
endings): the model writes AABB tunes, and a tune ends at the end of a part once the requested
bars are written; earlier bars come back as often as real tunes bring them back through a bar
cache over the model (bar_cache.py, one weight fitted on held-out tunes). A grammar mask makes every bar exactly as long as the meter asks (or a pickup
and, at each part's end, its complement, as the corpus writes them), with no note shorter than
the corpus uses in that meter; the tonic ending is the model's own (its last bar is
redrawn until it ends on a held tonic, never squeezed); the octave is chosen so the tune sits in
the style's real range and the instrument's (register.py). Outputs per candidate: MIDI,
ABC, MusicXML, a WAV preview (tinysoundfont + TimGM6mb.sf2), the score as SVG (verovio) and a
piano-roll PNG.

No heavy imports here: torch, music21 & co. are imported inside `load()` / `generate()`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generators.base import (Generator, GeneratorUnavailable, InvalidInput, Output, Params, Progress,
                             Result, Rng, file_sha256, param)
from generators.music_lib import vocab as V
from generators.resources import assets_dir

ASSETS = assets_dir("music")
EMBEDDED = {"lstm": ASSETS / "lstm.safetensors", "transformer": ASSETS / "transformer.safetensors"}
REGISTER_ROUNDS = 4  # draws per candidate before a request whose ranges no tune fits is refused
KEYS = ("C", "C#", "Db", "D", "Eb", "E", "F", "F#", "Gb", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class MusicParams(Params):
    action: str = param("compose", "compose from nothing, continue a primer, or infill bars of a piece",
                        choices=("compose", "continue", "infill"))
    meter: str = param("6/8", "time signature of a new tune (continue/infill keep the piece's own)",
                       choices=tuple(V.METERS))
    key: str = param("D", "tonic of a new tune (continue/infill keep the piece's own)", choices=KEYS)
    scale: str = param("major", "mode of a new tune; folk music often uses dorian and mixolydian",
                       choices=V.MODES)
    style: str = param("oneill", "a corpus style or a mixture like 'oneill:0.7, essen:0.3' (DeepJ); "
                       "styles: " + ", ".join(V.STYLES), max_length=200)
    bars: int = param(16, "bars to compose, at least: the tune ends at the end of its part (bars added "
                      "after the primer when continuing)", min=1, max=64)
    tempo: int = param(120, "quarter notes per minute of the MIDI and audio", min=30, max=300)
    instrument: int = param(73, "General MIDI program of the MIDI and audio (0 piano, 40 violin, "
                            "73 flute, 109 bagpipe)", min=0, max=127)
    temperature: float = param(1.0, "sampling temperature: lower is safer and more repetitive",
                               min=0.1, max=2.0)
    top_k: int = param(0, "sample only among the k likeliest tokens (0 = all allowed tokens)",
                       min=0, max=V.VOCAB_SIZE)
    end_on_tonic: bool = param(True, "end on a held tonic, as folk tunes do: the model redraws its last "
                               "bar until it does (compose/continue); off keeps the model's own ending")
    candidates: int = param(1, "how many different tunes to make at once", min=1, max=4)
    primer_abc: str = param("", "ABC text to continue or infill (one tune with M: and K: lines)",
                            max_length=20000, widget="textarea")
    primer_midi: str = param("", "a MIDI file to continue or infill (its top line is used)", widget="midi")
    infill_bars: str = param("", "bars to rewrite when infilling, 1-based, e.g. '3-4, 7'", max_length=200)
    audio: bool = param(True, "render a WAV preview with a General MIDI soundfont")
    score: bool = param(True, "engrave the score as SVG (verovio) and export MusicXML")
    model: str = param("lstm", "'lstm' or 'transformer' (embedded, trained in training/music), or a local "
                       ".safetensors file / folder / Hugging Face repo id holding a model written by "
                       "training.music.train", load=True)

    def validate(self) -> None:
        super().validate()
        try:
            V.parse_style(self.style)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if self.action == "compose" and (self.primer_abc.strip() or self.primer_midi.strip()):
            raise InvalidInput("a primer was given but action is 'compose'; choose 'continue' or 'infill' "
                               "to use it, or clear it")
        if self.action != "infill" and self.infill_bars.strip():
            raise InvalidInput("infill_bars is only used when action is 'infill'")


class MusicComposer(Generator):
    name = "music"
    Params = MusicParams
    title = "Music"
    description = ("Folk-tune and chorale melodies (folk-rnn LSTM or transformer) to MIDI, ABC, MusicXML, "
                   "audio and score.")
    devices = ("cpu",)  # a 1-4 MB model sampled token by token: the CPU is the fast place for it
    cpu_threads = 1  # batch-1 LSTM decoding is fastest on one thread (shared/OFFLINE.md)

    @classmethod
    def missing(cls, cache_dir: Any = None) -> str | None:
        absent = [p.name for p in EMBEDDED.values() if not p.is_file()]
        return f"embedded music weights missing from {ASSETS}: {', '.join(absent)}" if absent else None

    def __init__(self, model: str = "lstm", *, _debug: bool = False) -> None:
        self.model_ref = model
        self._debug = _debug
        self._model: Any = None
        self.weights_path: Path | None = None
        self.copy_boost = 1.0  # the bar cache's beta for the loaded weights (bar_cache.fitted_beta)

    def _resolve(self, download: bool = False) -> Path:
        ref = self.model_ref.strip() or "lstm"
        if ref in EMBEDDED:
            return EMBEDDED[ref]
        p = Path(ref).expanduser()
        from generators.hub import is_hub_id

        if not p.exists() and download and is_hub_id(ref):
            p = self._from_hub(ref)
        if p.is_dir():
            found = sorted(p.glob("*.safetensors"))
            if len(found) != 1:
                raise GeneratorUnavailable(f"{p} should hold exactly one .safetensors music model, found {len(found)}")
            return found[0]
        if p.suffix == ".safetensors" and p.is_file():
            return p
        raise GeneratorUnavailable(f"music model {ref!r} is neither 'lstm', 'transformer', a local "
                                   ".safetensors file or folder, nor a Hugging Face repo holding one")

    @staticmethod
    def _from_hub(repo_id: str) -> Path:
        """A Hugging Face repo with one music .safetensors (written by training.music.train)."""
        from generators import hub

        return hub.snapshot(repo_id, allow_patterns=["*.safetensors", "*.json", "*.md"], what="music model")

    def load(self, device: Any, dtype: Any = None) -> None:
        if self._debug:
            import torch

            from generators.music_lib.model import ModelConfig, build

            cfg = ModelConfig(kind="lstm", vocab=V.VOCAB_SIZE, n_meters=len(V.METERS), n_modes=len(V.MODES),
                              n_styles=len(V.STYLES), d_model=16, n_layers=1, dropout=0.0, positions=True)
            with torch.random.fork_rng(devices=[]):  # fixed tiny weights without touching global RNG state
                torch.manual_seed(0)
                self._model = build(cfg).eval()
            with torch.no_grad():  # untrained debug tunes: one octave (G4-G5 over a C tonic, so they fit
                for i in V.PITCH_IDS:  # the default flute and style in any key), few form marks
                    if not 7 <= V.pitch_of(V.TOKENS[i]) <= 19:
                        self._model.head.bias[i] -= 8.0
                for t in V.FORM_TOKENS:
                    self._model.head.bias[V.TOKEN_ID[t]] -= 3.0
            self.weights_sha256 = None
            return
        from generators.music_lib import bar_cache
        from generators.music_lib.compose import load_model

        path = self._resolve(download=True)
        if not path.is_file():
            raise GeneratorUnavailable(f"music weights {path} are missing; run `studio train music`")
        self._model, _ = load_model(path)
        self.weights_path = path
        self.weights_sha256 = file_sha256(path)
        self.copy_boost = bar_cache.fitted_beta(self.weights_sha256)

    def unload(self) -> None:
        self._model = None

    def estimate_bytes(self) -> int:
        try:
            size = self._resolve().stat().st_size if not self._debug else 0
        except (GeneratorUnavailable, OSError):
            size = 8 << 20
        return 2 * size + (64 << 20)  # fp16 file -> fp32 weights, plus music21/verovio working set

    @classmethod
    def debug(cls) -> "MusicComposer":
        return cls(_debug=True)

    # ------------------------------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        if not isinstance(params, MusicParams):
            raise InvalidInput(f"music takes MusicParams, got {type(params).__name__}")
        params.validate()
        if self._model is None:
            raise GeneratorUnavailable("the music model is not loaded")
        from generators.music_lib import codec, compose, inputs, register

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # 1. the creator's material, checked before any model work
        source = None
        masked: list[int] = []
        if params.action in ("continue", "infill"):
            source = inputs.load_source(params.primer_abc, params.primer_midi)
            if params.action == "infill":
                masked = inputs.parse_bar_list(params.infill_bars, len(source.measures))
        meter = source.meter if source else params.meter
        tonic = source.tonic if source else params.key
        mode = source.mode if source else params.scale
        weights = V.parse_style(params.style)
        timings["read_input_s"] = time.perf_counter() - t0
        progress(0.05, "composing")

        # 2. sampling, then the ending and the register of each candidate
        t1 = time.perf_counter()
        min_dur = register.shortest(meter)
        lo, hi, median = register.allowed_range(weights, params.instrument)
        primer: list[str] = []
        if source is not None:
            primer = codec.tune_to_tokens(source)
            own = [p for m in source.measures for p, _q in m if p is not None]
            lo, hi = min([lo, *own]), max([hi, *own])  # the creator's own notes stay where they are
        if hi - lo < 12:
            raise InvalidInput(f"instrument {params.instrument} plays MIDI notes "
                               f"{register.INSTRUMENT_RANGE[params.instrument][0]}-"
                               f"{register.INSTRUMENT_RANGE[params.instrument][1]}, which leaves less than an "
                               f"octave inside this style's range; choose another instrument or style")
        # the notes the decoder may write: those inside the range at the planned octave (a
        # primer's octave is the creator's)
        planned = codec.tonic_shift(tonic) if source is not None else \
            register.planned_shift(weights, codec.tonic_pc(tonic), median)
        pitches = (lo - 60 - planned, hi - 60 - planned)
        gen = rng.torch_cpu()
        cond = compose.conditioning(self._model, meter, mode, V.style_vector(weights))
        expected = params.bars * 16 + 1
        on_step = lambda s: progress(0.05 + 0.6 * min(1.0, s / expected), "composing")  # noqa: E731
        kw = dict(temperature=params.temperature, top_k=params.top_k, gen=gen, pitches=pitches)
        # drafts ranked by form (compose.select): a draft the length control closed is drawn
        # again; one that does not end on the tonic is not (its last bar is redrawn below,
        # ~16 tokens a round instead of a whole new tune: rejecting whole drafts for their
        # ending doubled the sampling time, benchmarks/results/music.json "speed"). Earlier bars
        # come back as often as the bar cache fitted to these weights says real tunes bring them back
        form_kw = dict(prefer_tonic=False, copy_boost=self.copy_boost)

        def draw(k: int) -> list[list[str]]:
            if params.action == "compose":
                return compose.compose(self._model, cond, meter, params.bars, k, on_step=on_step,
                                       min_dur=min_dur, **form_kw, **kw)
            if params.action == "continue":
                return compose.continue_primer(self._model, cond, primer, meter, params.bars, k,
                                               on_step=on_step, min_dur=min_dur, **form_kw, **kw)
            return [compose.infill(self._model, cond, primer, masked, on_step=on_step, min_dur=min_dur, **kw)
                    for _ in range(k)]

        protect = len(V.units_of(compose.primer_prefix(primer, True))) if params.action == "continue" else 0
        bodies: list[list[str]] = []
        shifts: list[int] = []
        redrawn: list[bool] = []
        rejected = 0
        for _round in range(REGISTER_ROUNDS):
            for body in draw(params.candidates - len(bodies)):
                ending_redrawn = False
                if params.end_on_tonic and params.action != "infill":
                    body, ending_redrawn = compose.end_on_tonic(self._model, cond, body, meter, min_dur=min_dur,
                                                                protect=protect, **kw)
                shift = self._shift(body, tonic, source, lo, hi, median)
                if shift is None:
                    rejected += 1
                    continue
                bodies.append(body)
                shifts.append(shift)
                redrawn.append(ending_redrawn)
            if len(bodies) == params.candidates:
                break
        if len(bodies) < params.candidates:
            raise InvalidInput(f"no octave of {tonic} keeps these tunes inside both the style's range and "
                               f"instrument {params.instrument}'s (MIDI {lo}-{hi}); {rejected} drafts were "
                               "refused. Choose another instrument, style or key")
        timings["sample_s"] = time.perf_counter() - t1

        # 3. files
        outputs: list[Output] = []
        abcs: list[str] = []
        for i, body in enumerate(bodies):
            progress(0.7 + 0.3 * i / len(bodies), "rendering")
            outputs += self._render(body, meter, tonic, mode, shifts[i], params, i, len(bodies), abcs, timings)
        timings["total_s"] = time.perf_counter() - t0
        data = {"abc": abcs, "meter": meter, "key": f"{tonic} {mode}", "style_weights": weights,
                "bars": [len(V.bars_of(b)) for b in bodies], "tokens": [len(b) for b in bodies],
                "action": params.action, "infilled_bars": [i + 1 for i in masked],
                "form": [" ".join(t for t in b if t in V.FORM_TOKENS) for b in bodies],
                "ending_redrawn": redrawn, "drafts_out_of_range": rejected,
                "range": {"low": lo, "high": hi, "notes": [self._span(b, sh) for b, sh in zip(bodies, shifts)]},
                "model": self.model_ref if not self._debug else "debug",
                "timings": {k: round(v, 4) for k, v in timings.items()}}
        if source is not None:
            data["source_bars"] = len(source.measures)
        progress(1.0, "done")
        return Result(outputs=outputs, data=data)

    @staticmethod
    def _shift(body: list[str], tonic: str, source: Any, lo: int, hi: int, median: float) -> int | None:
        """The transposition of this body: a primer keeps its own octave (its notes are the
        creator's); a new tune takes the octave that fits the style and instrument (register)."""
        from generators.music_lib import codec, register

        rel = [V.pitch_of(t) for t in body if V.is_pitch(t)]
        if source is not None:
            shift = codec.tonic_shift(tonic)
            return shift if all(lo <= 60 + r + shift <= hi for r in rel) else None
        return register.choose_shift(rel, codec.tonic_pc(tonic), lo, hi, median)

    @staticmethod
    def _span(body: list[str], shift: int) -> list[int]:
        rel = [V.pitch_of(t) for t in body if V.is_pitch(t)]
        return [60 + min(rel) + shift, 60 + max(rel) + shift] if rel else []

    def _render(self, body: list[str], meter: str, tonic: str, mode: str, shift: int, p: MusicParams, i: int,
                n: int, abcs: list[str], timings: dict[str, float]) -> list[Output]:
        from generators.music_lib import codec, render

        label = f"candidate {i + 1}" if n > 1 else ""
        title = f"{p.style.split(':')[0].title()} {meter} in {tonic} {mode}" + (f" ({i + 1})" if n > 1 else "")
        t = time.perf_counter()
        tune = codec.tokens_to_tune(body, meter, tonic, mode, title, shift=shift)
        abc = codec.tune_to_abc(tune, tempo=p.tempo, index=i + 1)
        abcs.append(abc)
        mid = render.midi_bytes(tune, p.tempo, p.instrument, title)
        timings["convert_s"] = timings.get("convert_s", 0.0) + time.perf_counter() - t
        outs = [Output(".mid", mid, role="midi", label=label), Output(".abc", abc, role="abc", label=label)]
        if p.score:
            t = time.perf_counter()
            xml = render.musicxml_text(abc, p.instrument)
            timings["musicxml_s"] = timings.get("musicxml_s", 0.0) + time.perf_counter() - t
            t = time.perf_counter()
            svg = render.score_svg(xml)
            timings["svg_s"] = timings.get("svg_s", 0.0) + time.perf_counter() - t
            outs += [Output(".musicxml", xml, role="musicxml", label=label),
                     Output(".svg", svg, role="score", label=label)]
        if p.audio:
            t = time.perf_counter()
            outs.append(Output(".wav", render.wav_bytes(tune, p.tempo, p.instrument), role="preview", label=label))
            timings["audio_s"] = timings.get("audio_s", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        outs.append(Output(".png", render.piano_roll(tune, p.tempo), role="image", label=label))
        timings["png_s"] = timings.get("png_s", 0.0) + time.perf_counter() - t
        return outs
