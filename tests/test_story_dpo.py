"""Story adapters from ratings (issue #15, item 3): DPO with TRL on a PEFT LoRA, per creator.

Tiny random Llama (2 layers, 32 wide), a handful of pairs, one or two optimiser steps: the real
TRL/PEFT code path, fast. No timed assertions (speed and quality: benchmarks/bench_dpo.py).
"""
from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from generators.base import GeneratorUnavailable, InvalidInput, Progress, Rng
from generators.story import StoryParams, StoryWriter
from generators.story_dpo import StoryDPO, StoryDPOParams, read_pairs
from generators.story_lib import adapter as lora
from studio.api import Studio
from studio.assets import restore
from studio.config import Settings
from tests.ui_fixtures import TinyStoryWriter, _tiny_llama

pytest.importorskip("trl")
pytest.importorskip("peft")


class TinyStoryDPO(StoryDPO):
    """The real trainer on the tests' shared tiny Llama (deep-copied for each job)."""

    def __init__(self, model: str = "") -> None:
        super().__init__(model="")
        self.model_ref = "debug:tiny-llama"

    def estimate_bytes(self) -> int:
        return 64 << 20

    def load(self, device: Any, dtype: Any = None) -> None:
        self._preloaded = _tiny_llama()
        super().load(device, dtype)


def _pairs_file(tmp_path, n=4):
    rows = [{"request": {"mode": "continue", "format": "prose", "text": f"Opening {i}.\n\n"},
             "chosen": '"Go!" she said.', "rejected": "The long grey afternoon went on without end."}
            for i in range(n)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def _train(tmp_path, **options: Any) -> Any:
    trainer = TinyStoryDPO()
    trainer.load("cpu")
    events = []
    params = StoryDPOParams(pairs_file=str(_pairs_file(tmp_path)), batch_size=2, max_length=400, name="punchy",
                            **options)
    result = trainer.generate(params, rng=Rng(1, torch.device("cpu")), progress=Progress(sink=events.append))
    return result, events


def test_trainer_writes_a_verified_adapter_that_changes_the_model(tmp_path):
    # two epochs: the reference log-probs are precomputed once; only the top layer is adapted
    result, events = _train(tmp_path, epochs=2, lora_layers=1)
    (out,) = result.outputs
    assert out.suffix == ".safetensors" and out.role == "adapter"
    assert any("training step 4/4" in (e.message or "") for e in events)  # progress per optimiser step
    path = tmp_path / "a.safetensors"
    path.write_bytes(out.data)
    found = lora.read(path)
    recipe = found["recipe"]
    assert recipe["method"] == "dpo-lora" and recipe["pairs"] == 4 and recipe["steps"] == 4
    assert recipe["reference_log_probs"] == "precomputed" and recipe["layers_to_transform"] == [1]
    assert len(recipe["losses"]) == 4 and all(x > 0 for x in recipe["losses"])
    assert set(recipe["versions"]) == {"trl", "peft", "transformers", "torch"}
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in found["state"].items())  # it learned something
    assert all(".layers.1." in k for k in found["state"])  # the bottom layer is the base's own

    base, tuned = StoryWriter.debug(), StoryWriter.debug()
    tuned.adapter_path = str(path)
    base.load("cpu")
    tuned.load("cpu")
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert not torch.allclose(base.model(ids).logits, tuned.model(ids).logits)
    params = StoryParams(mode="continue", format="prose", text="Hi.\n\n", max_new_tokens=6)
    got = tuned.generate(params, rng=Rng(2, torch.device("cpu")), progress=Progress(sink=lambda e: None))
    assert got.data["adapter"]["sha256"] == found["sha256"] and got.data["adapter"]["pairs"] == 4
    assert base.generate(params, rng=Rng(2, torch.device("cpu")),
                         progress=Progress(sink=lambda e: None)).data["adapter"] is None


def test_completion_only_scoring_gives_the_same_log_probs():
    """The CPU switch to TRL's completion-only LM head (generators/story_dpo.py) changes the cost,
    not the numbers: per-token log-probs and their gradients match scoring every position."""
    import trl.trainer.utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    from generators.story_dpo import _score_completions_only

    model, _ = _tiny_llama()
    import copy

    model = copy.deepcopy(model)
    add_fused_lm_head(model)
    ids = torch.randint(3, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :7] = -100  # a prompt of 7 tokens: not scored

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        out = model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs
        out.sum().backward()
        return out.detach(), model.model.norm.weight.grad.clone()

    cpu = torch.device("cpu")
    assert not trl_utils._use_triton(cpu)
    full = run()
    with _score_completions_only():
        assert trl_utils._use_triton(cpu)
        compact = run()
    assert not trl_utils._use_triton(cpu)  # restored
    assert torch.allclose(full[0], compact[0], atol=1e-5) and torch.allclose(full[1], compact[1], atol=1e-5)
    assert (full[0][:, :6] == 0).all() and (full[0][:, 6:] != 0).all()


def test_damaged_adapters_are_unavailable_with_a_reason(tmp_path):
    result, _ = _train(tmp_path)
    blob = bytearray(result.outputs[0].data)
    flipped = tmp_path / "flipped.safetensors"
    blob[-5] ^= 0xFF  # inside the last tensor's bytes
    flipped.write_bytes(bytes(blob))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(result.outputs[0].data[:100])
    stranger = tmp_path / "other.safetensors"
    from safetensors.torch import save

    stranger.write_bytes(save({"x": torch.zeros(2)}))
    for path, why in ((flipped, "do not match the hash"), (truncated, "damaged"), (stranger, "not a studio story"),
                      (tmp_path / "gone.safetensors", "not on disk")):
        with pytest.raises(GeneratorUnavailable, match=why) as err:
            lora.read(path)
        assert "base model still works" in str(err.value)
        writer = StoryWriter.debug()
        writer.adapter_path = str(path)
        with pytest.raises(GeneratorUnavailable):
            writer.load("cpu")
    with pytest.raises(GeneratorUnavailable, match="other base weights"):
        lora.read(tmp_path / "ok.safetensors" if (tmp_path / "ok.safetensors").write_bytes(
            lora.pack({}, {}, {}, "a" * 64)) else None, "b" * 64)


def test_pairs_file_errors_are_sentences(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"chosen": "a"}\n')
    with pytest.raises(InvalidInput, match="line 1 .*'chosen' and 'rejected'"):
        read_pairs(bad)
    with pytest.raises(InvalidInput, match="needs at least 4"):
        read_pairs(_pairs_file(tmp_path, n=2))


def test_train_from_my_ratings_is_per_creator_and_removable(tmp_path):
    studio = Studio(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache"),
                    registry={"story": TinyStoryWriter, "story_dpo": TinyStoryDPO})
    try:
        request = {"mode": "continue", "format": "prose", "text": "Mara turned to Joe.\n\n", "max_new_tokens": 8}
        amy, bob = "browser:amy", "browser:bob"
        for i, stars in enumerate((5, 4, 2, 1)):  # four answers to one request, rated: six pairs
            (md,) = [p for p in studio.generate("story", request, seed=10 + i, user=amy).assets if p.suffix == ".md"]
            studio.taste.feedback.rate({**restore(md).record, "path": str(md)}, stars=stars, user=amy)
        pairs = studio.adapters.pairs(amy)
        assert len(pairs) == 6 and all(p["request"]["text"] == request["text"] for p in pairs)
        assert all("studio-provenance" not in p["chosen"] + p["rejected"] for p in pairs)  # passages only
        assert studio.adapters.pairs(bob) == []
        with pytest.raises(InvalidInput, match="needs at least 4"):
            studio.train_adapter(user=bob)
        job = studio.train_adapter(user=amy, name="punchy", options={"batch_size": 4, "max_length": 400})
        assert job.timeout >= 3600  # training may outlast a generation job's time limit
        (path,) = job.result().assets
        assert studio.adapters.list(bob) == []
        (row,) = studio.adapters.list(amy)
        assert row["available"] and row["name"] == "punchy" and row["pairs"] == 6
        with pytest.raises(InvalidInput, match="not one of yours"):
            studio.adapters.select(bob, str(path))
        studio.adapters.select(amy, str(path))
        mine = studio.generate("story", request, seed=1, user=amy)
        record = restore(mine.assets[0]).record
        assert record["params"]["adapter"] == str(path) and mine.data["adapter"]["sha256"] == row["sha256"]
        assert record["adapter"]["sha256"] == row["sha256"] and record["adapter"]["file"] == path.name
        assert restore(studio.generate("story", request, seed=1, user=bob).assets[0]).record["adapter"] is None
        with pytest.raises(InvalidInput, match="not one of yours"):  # a browser may not name another's adapter
            studio.submit("story", {**request, "adapter": str(path)}, user=bob, origin="remote")
        assert studio.generate("story", request, seed=1, user=bob).data["adapter"] is None  # never bob's
        # a damaged adapter: unavailable with the reason; the base still writes once it is deselected
        blob = bytearray(path.read_bytes())
        blob[-3] ^= 0xFF
        path.write_bytes(bytes(blob))
        (row,) = studio.adapters.list(amy)
        assert not row["available"] and "do not match the hash" in row["reason"]
        with pytest.raises(GeneratorUnavailable, match="unavailable"):
            studio.generate("story", request, seed=1, user=amy)
        studio.adapters.select(amy, None)
        assert studio.generate("story", request, seed=1, user=amy).data["adapter"] is None
    finally:
        studio.close()


def test_story_workspace_adapter_drawer(tmp_path):
    from types import SimpleNamespace

    from studio.ui.app import create_app
    from studio.ui.ws_story_adapter import BASE

    studio = Studio(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache"),
                    registry={"story": TinyStoryWriter, "story_dpo": TinyStoryDPO})
    try:
        ctx = create_app(studio).studio_context
        drawer = ctx.workspaces["story"].adapter
        me = SimpleNamespace(session_hash="s1", username=None)
        choice, status = drawer.handlers["refresh"](me)
        assert choice["choices"] == [(BASE, BASE)] and "Base model" in status
        (progress, job, _, status), = list(drawer.handlers["train"]("mine", me))
        assert job == "" and "needs at least 4" in status  # nothing to learn from yet: a sentence, no job
        assert "nothing to cancel" in drawer.handlers["cancel"]("", me)
    finally:
        studio.close()
