"""The shipped music LSTM, loaded once per test module (real-weight music tests share it)."""
from __future__ import annotations

import pytest

from generators.music import MusicComposer


@pytest.fixture(scope="module")
def shipped() -> MusicComposer:
    import torch

    torch.set_num_threads(1)
    g = MusicComposer(model="lstm")
    g.load(torch.device("cpu"))
    return g
