"""The taste panel's handlers against a real Studio and real breeder outputs."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from studio.api import Studio
from studio.assets import restore
from studio.config import Settings


def test_taste_panel_shows_status_learned_outputs_and_resets(tmp_path):
    from studio.taste import candidate_assets
    from studio.ui.app import create_app

    studio = Studio(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache"))
    try:
        ctx = create_app(studio).studio_context
        me, other = SimpleNamespace(session_hash="s1", username=None), SimpleNamespace(session_hash="s2",
                                                                                        username="zoe")
        text, rows, images, frame = ctx.handlers["taste_panel"]("breeder", me)
        assert "off" in text and "no ratings yet" in text and rows is None
        result = studio.generate("breeder", {"rows": 3, "cols": 4, "width": 16, "height": 16}, seed=3)
        paths = candidate_assets("breeder", result.assets)
        for i, p in enumerate(paths):  # ratings as the rating widget saves them (browser-session user)
            ctx.feedback.rate({**restore(p).record, "path": str(p)}, stars=1 + i % 5, user="session:s1")
        text, rows, images, frame = ctx.handlers["taste_panel"]("breeder", me)
        assert "**on**" in text and "Held-out accuracy" in text
        assert [r[0] for r in rows] == ["liked"] * 5 + ["disliked"] * 5
        assert images and all(str(p).endswith(".png") for p in images)
        assert len(frame) == 12 and np.isfinite(frame["model utility"]).all()
        # another (logged-in) user sees nothing of it
        text, rows, _, _ = ctx.handlers["taste_panel"]("breeder", other)
        assert "no ratings yet from 'zoe'" in text and rows is None
        # without a login each browser is its own creator, as its gallery is (item 3 of issue #15)
        text, rows, _, _ = ctx.handlers["taste_panel"]("breeder", SimpleNamespace(session_hash="s3", username=None))
        assert "no ratings yet from you" in text and rows is None
        text, rows, _, _ = ctx.handlers["taste_reset"]("breeder", me)
        assert "no ratings yet" in text and rows is None
    finally:
        studio.close()
