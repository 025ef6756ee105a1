"""Break 9 of issue 12: outputs land as one unit through SIGKILL; weights are verified."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The child writes one result of three outputs and SIGKILLs itself at its N-th os.replace (or at
# the index append when N is past the renames), like a power cut mid-write.
CHILD = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from generators.base import Output, Result
from studio import assets
root, kill_at = Path(sys.argv[1]), int(sys.argv[2])
calls = {"n": 0}
real_replace = os.replace
def replace(a, b):
    calls["n"] += 1
    if calls["n"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(a, b)
os.replace = replace
store = assets.AssetStore(root)
if kill_at == 99:
    store._append_index = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
r = Result(outputs=[Output(".txt", "a", role="text"), Output(".txt", "b", role="notes"),
                    Output(".svg", "<svg xmlns='http://www.w3.org/2000/svg'/>", role="drawing")])
store.write(r, {"generator": "demo", "params": {}, "seed": 1}, owner="browser:x")
print("FINISHED")
"""


def _state(root: Path) -> tuple[set[str], set[str], set[str]]:
    """(output files, sidecars, indexed paths) under root."""
    files = {str(p.relative_to(root)) for p in root.glob("*/*") if not p.name.startswith(".")}
    sidecars = {f for f in files if f.endswith(".json")}
    from studio.assets import AssetStore

    indexed = {str(Path(r["path"]).relative_to(root)) for r in AssetStore(root).records()}
    return files - sidecars, sidecars, indexed


@pytest.mark.parametrize("kill_at", [1, 3, 5, 6, 99, 0])  # 6 renames (3 files + 3 sidecars); 0: no kill
def test_sigkill_mid_write_leaves_all_or_nothing_after_the_sweep(tmp_path, kill_at) -> None:
    from studio.assets import AssetStore

    root = tmp_path / "outputs"
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(kill_at), str(REPO)],
                         capture_output=True, text=True, timeout=60)
    assert ("FINISHED" in out.stdout) == (kill_at == 0), out.stderr
    counts = AssetStore(root).sweep()
    mains, sidecars, indexed = _state(root)
    assert not list(root.glob("*/.*"))  # no journal, no temp file left
    assert len(mains) in (0, 3)  # the whole unit or none of it
    assert sidecars == {m + ".json" for m in mains} and indexed == mains
    if kill_at == 99:  # every file was in place, only the index line missing: the sweep completes it
        assert len(mains) == 3 and counts["completed"] == 1
    records = list(AssetStore(root).records())
    assert all(r.get("owner") == "browser:x" for r in records)


def test_a_live_write_is_never_swept(tmp_path) -> None:
    import fcntl

    from studio.assets import JOURNAL_SUFFIX, AssetStore

    store = AssetStore(tmp_path / "outputs")
    day = store.root / "2026-01-01"
    day.mkdir()
    (day / "x.txt").write_text("in progress")
    journal = day / f".g{JOURNAL_SUFFIX}"
    with open(journal, "w") as jf:
        fcntl.flock(jf, fcntl.LOCK_EX)
        jf.write(json.dumps({"files": ["2026-01-01/x.txt", "2026-01-01/y.txt"]}))
        jf.flush()
        assert store.sweep()["rolled_back"] == 0 and (day / "x.txt").exists()
    assert store.sweep()["rolled_back"] == 1 and not (day / "x.txt").exists()


def test_gradio_client_default_download_files_survives_gan_provenance(app) -> None:
    """GAN params carry `"path": "slerp"`: gradio_client took that object for a file and crashed."""
    from gradio_client import Client

    client = Client(app.url, verbose=False)  # download_files left at its default
    out = client.predict(json.dumps({"count": 1}), 3, api_name="/generate_gan")
    params = json.loads(out["provenance"]["params"]["json"])
    assert params["path"] == "slerp" and params["count"] == 1
    assert out["assets"] and out["seed"] == 3
