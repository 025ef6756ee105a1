"""The image model's training command end to end on a few glyphs (real data, real text encoder):
it writes a standard diffusers folder that predicts v, whose own text encoder produces the
standardised caption features the UNet was trained on, and it resumes from its cached state."""
from __future__ import annotations

import json

import torch

from training.image import train as T


def test_two_steps_write_a_loadable_v_prediction_pipeline_and_resume(tmp_path, monkeypatch) -> None:
    from diffusers import DiffusionPipeline

    from training.image import data as cap_data
    from training.image import text_encoder as te

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run" / "kanji-glyphs-64"
    common = ["--limit", "330", "--batch", "2", "--eval-every", "1", "--eval-n", "4", "--out", str(out),
              "--state", "smoke.pt"]
    assert T.main(common + ["--steps", "2"]) == 0
    log = json.loads((out.parent / "training.json").read_text())
    assert log["steps"] == 2 and log["prediction"] == "v_prediction" and log["text_encoder"]["standardized"]
    assert (out.parent / "TRAINING.md").is_file() and (out.parent / "samples.png").is_file()

    pipe = DiffusionPipeline.from_pretrained(str(out), dtype=torch.float32, local_files_only=True)
    assert type(pipe).__name__ == "IFPipeline" and pipe.scheduler.config.prediction_type == "v_prediction"
    # the saved encoder computes the standardised features: centred over the training captions
    ds = cap_data.load(limit=330)  # KanjiVG lists kana and symbols first: ~50 kanji
    train_caps = [c for c, h in zip(ds.captions, ds.heldout) if not h]
    feats = te.encode(pipe.text_encoder, pipe.tokenizer, train_caps).float().reshape(-1, 384)
    assert feats.mean(0).abs().max() < 0.05 and 0.9 < float(feats.std(0).mean()) < 1.1

    assert T.main(common + ["--steps", "3", "--resume"]) == 0
    log = json.loads((out.parent / "training.json").read_text())
    assert log["steps"] == 3 and log["sessions"] == 2


def test_out_of_range_schedule_options_are_refused_before_any_work(capsys) -> None:
    import pytest

    for bad, words in ((["--top-share", "1.5"], "--top-share is a share of each batch"),
                       (["--top-min", "1000"], "--top-min must lie in"),
                       (["--t-min", "500", "--top-min", "400"], "--top-min must lie in"),
                       (["--lr-final", "0"], "--lr-final is the multiplier")):
        with pytest.raises(SystemExit) as exc:
            T.parse_args(bad)
        assert exc.value.code == 2 and words in capsys.readouterr().err
    args = T.parse_args(["--top-share", "0.5", "--top-min", "900", "--lr-final", "0.2"])
    assert (args.top_share, args.top_min, args.lr_final) == (0.5, 900, 0.2)


def test_compare_refuses_a_folder_that_is_not_a_pipeline(tmp_path, capsys) -> None:
    import pytest

    from training.image import compare

    with pytest.raises(SystemExit) as exc:
        compare.main([str(tmp_path)])
    assert exc.value.code == 2 and "is not a diffusers pipeline folder" in capsys.readouterr().err
