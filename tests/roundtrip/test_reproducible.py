"""Same seed + params + weights + device -> byte-identical files, per generator and format.

Each generator runs twice with the same seed; both results go through the real AssetStore in
two different stores, at different times, with different job ids and users (all of which stay
in the sidecar and index). Every file must match byte for byte, and carry no timestamp.
"""
from __future__ import annotations

import re
import time

import pytest

from studio.assets import AssetStore
from tests.roundtrip.conftest import _inputs, _jobs, run_generator, write

pytestmark = pytest.mark.roundtrip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, outputs):
    time.sleep(1.1)  # the second run starts in a different second than the first one's files
    return _inputs(tmp_path_factory.mktemp("inputs"))  # same pictures, another folder


@pytest.mark.parametrize("name", ["breeder", "gan", "sketch", "music", "style", "face"])
def test_same_seed_same_bytes(name, inputs, tmp_path, outputs) -> None:
    factory, params = _jobs(inputs)[name]
    first = outputs[name]  # written earlier in the session
    again = write(AssetStore(tmp_path / "again"), name, params, run_generator(factory(), params),
                  job_id="job-2", user="bob", timings={"run_s": 9.9})
    assert [p.suffix for p in first] == [p.suffix for p in again]
    differing = [a.name for a, b in zip(first, again) if a.read_bytes() != b.read_bytes()]
    assert differing == [], f"{name}: not byte-identical: {differing}"
    stamp = re.compile(rb"20\d\d-\d\d-\d\dT\d\d:\d\d|20\d\d:\d\d:\d\d \d\d:\d\d")
    for path in again:
        assert not stamp.search(path.read_bytes()), (name, path.name)


def test_pdf_screenplay_same_bytes(tmp_path) -> None:
    from generators.base import Output, Result
    from generators.story_lib.fountain import to_pdf
    from tests.roundtrip.conftest import BASE

    script = "Title: Demo\n\nINT. ROOM - DAY\n\nA fox waits.\n"
    paths = []
    for run in ("a", "b"):
        result = Result(outputs=[Output(".pdf", to_pdf(script), role="pdf")])
        paths += AssetStore(tmp_path / run).write(result, {**BASE, "generator": "story", "params": {}, "seed": 1,
                                                           "job_id": run})
        time.sleep(1.1)
    assert paths[0].read_bytes() == paths[1].read_bytes()
