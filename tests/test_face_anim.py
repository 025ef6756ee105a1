"""The face generator end to end: consent, previews, MP4/GIF outputs, audio, driving video, bad input.

Clips are tiny (1 s at 10 fps, 128 px) so the whole file runs in seconds.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from generators.base import Cancelled, InvalidInput, Progress, Rng

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def gen():
    from generators.face_anim import FaceAnimator

    g = FaceAnimator.debug()
    g.load("cpu")
    yield g
    g.unload()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image
    from skimage import data

    d = tmp_path_factory.mktemp("face")
    Image.fromarray(data.astronaut()).save(d / "astronaut.png")
    Image.fromarray(data.coffee()).save(d / "coffee.png")
    crop = data.astronaut()[20:240, 110:340]
    Image.fromarray(np.concatenate([crop, crop[:, ::-1]], axis=1)).save(d / "pair.png")
    (d / "notes.png").write_text("this is not an image")
    sr = 22050
    t = np.arange(sr) / sr
    syllables = np.sin(2 * np.pi * 180 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2 * 0.6
    _wav(d / "speech.wav", syllables, sr)
    _wav(d / "long.wav", np.zeros(8000 * 125), 8000)  # 125 s: over the 120 s limit
    return d


def _wav(path: Path, x: np.ndarray, sr: int) -> None:
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(sr)
        wf.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def _params(files: Path, **kw):
    from generators.face_anim import FaceParams

    base = {"image": str(files / "astronaut.png"), "consent": True, "duration": 1.0, "fps": 10, "size": 128}
    base.update(kw)
    return FaceParams.from_dict(base)


def _frames(mp4: bytes) -> list[np.ndarray]:
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        path.write_bytes(mp4)
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        w, h = meta["size"]
        return [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]


def _info(data: bytes, suffix: str) -> dict:
    from generators.face_video import mp4_info

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"clip{suffix}"
        path.write_bytes(data)
        return mp4_info(path)


def test_consent_is_required(files):
    with pytest.raises(InvalidInput, match="right to animate"):
        _params(files, consent=False)
    from generators.face_anim import FaceParams

    assert FaceParams.json_schema()["properties"]["consent"]["type"] == "boolean"


def test_presets_make_an_mp4_gif_and_preview(gen, files):
    r = gen.generate(_params(files, presets="blink@0.3,smile", format="both"), rng=Rng(1),
                     progress=Progress.none())
    by = {o.suffix: o for o in r.outputs}
    assert set(by) == {".mp4", ".gif", ".png"}
    info = _info(by[".mp4"].data, ".mp4")
    assert info["frames"] == 10 and info["has_video"] and not info["has_audio"]
    assert by[".gif"].data[:6] == b"GIF89a"
    assert by[".png"].role == "preview" and by[".png"].data.size[0] > 0
    sha = hashlib.sha256((files / "astronaut.png").read_bytes()).hexdigest()
    assert r.data["source_sha256"] == sha and r.parents == [sha]
    assert r.data["landmarks"] == 468 and r.data["faces_found"] == 1
    frames = _frames(by[".mp4"].data)
    assert frames[0].shape == (128, 128, 3)
    # the visible "AI-generated" mark: a dark box with white text in the bottom-right corner
    corner = frames[0][-14:, -60:].astype(int)
    assert (corner.max(axis=2) > 200).sum() > 10 and (corner.max(axis=2) < 90).sum() > 50
    # the blink at 0.3 s closes the eyes: frames 3-4 differ around the eyes, frame 0 vs 9 less
    assert np.abs(frames[4].astype(int) - frames[0]).mean() > 0.2


def test_same_seed_same_bytes(gen, files):
    p = _params(files, presets="blink,breathe")
    a = gen.generate(p, rng=Rng(7), progress=Progress.none()).outputs[0].data
    b = gen.generate(p, rng=Rng(7), progress=Progress.none()).outputs[0].data
    assert a == b


def test_speech_audio_is_muxed_and_opens_the_mouth(gen, files):
    r = gen.generate(_params(files, presets="", audio=str(files / "speech.wav")), rng=Rng(1),
                     progress=Progress.none())
    mp4 = r.outputs[0]
    assert mp4.suffix == ".mp4"
    info = _info(mp4.data, ".mp4")
    assert info["frames"] == 10 and info["has_audio"]
    assert r.data["has_audio"] is True
    frames = _frames(mp4.data)
    # the syllables peak at ~0.08 s, 0.25 s...: the mouth region changes across the clip
    mouth = [f[70:100, 45:85].astype(int) for f in frames]
    assert max(np.abs(m - mouth[0]).mean() for m in mouth) > 3.0


def test_driving_video_transfers_a_shift(gen, files, tmp_path):
    from skimage import data

    from generators.face_landmarks import FaceMesh, find_model_dir
    from generators.face_video import Mp4Writer

    base = data.astronaut()[0:256, 100:356]
    video = tmp_path / "drive.mp4"
    writer = Mp4Writer(video, 256, 256, 10)
    for i in range(10):
        writer.write(base if i < 3 else np.roll(base, 8, axis=1))  # 8 px to the right from frame 3
    writer.close()
    r = gen.generate(_params(files, presets="", driving_video=str(video)), rng=Rng(1), progress=Progress.none())
    frames = _frames(r.outputs[0].data)
    assert len(frames) == 10
    mesh = FaceMesh(find_model_dir())
    first = mesh(frames[0])[0].landmarks
    last = mesh(frames[-1])[0].landmarks
    # expected shift in output pixels: 8 px x (output face size / driving face size)
    driving = mesh(base)[0].landmarks
    scale = np.sqrt(np.ptp(first[:, 0]) * np.ptp(first[:, 1]) / (np.ptp(driving[:, 0]) * np.ptp(driving[:, 1])))
    shift = (last[:, :2] - first[:, :2]).mean(0)
    assert shift[0] == pytest.approx(8 * scale, rel=0.3)
    assert abs(shift[1]) < 1.0


def test_driving_video_with_faceless_frames(gen, files, tmp_path):
    from skimage import data

    from generators.face_video import Mp4Writer

    base = data.astronaut()[0:256, 100:356]
    video = tmp_path / "gap.mp4"
    writer = Mp4Writer(video, 256, 256, 10)
    for i in range(10):
        writer.write(np.zeros_like(base) if i in (4, 5) else base)
    writer.close()
    with pytest.raises(InvalidInput, match="no face was found in 2 of 10"):
        gen.generate(_params(files, driving_video=str(video)), rng=Rng(1), progress=Progress.none())
    r = gen.generate(_params(files, driving_video=str(video), missing_face="hold"), rng=Rng(1),
                     progress=Progress.none())
    assert r.data["driving_frames_without_face"] == 2
    black = tmp_path / "black.mp4"
    writer = Mp4Writer(black, 64, 64, 10)
    for _ in range(5):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.close()
    with pytest.raises(InvalidInput, match="first frame shows no face"):
        gen.generate(_params(files, driving_video=str(black), duration=0), rng=Rng(1), progress=Progress.none())


def test_faces_and_preview_choice(gen, files):
    with pytest.raises(InvalidInput, match="no face"):
        gen.generate(_params(files, image=str(files / "coffee.png")), rng=Rng(1), progress=Progress.none())
    with pytest.raises(InvalidInput, match="shows 2 faces"):
        gen.generate(_params(files, image=str(files / "pair.png")), rng=Rng(1), progress=Progress.none())
    with pytest.raises(InvalidInput, match="out of range"):
        gen.generate(_params(files, image=str(files / "pair.png"), face_index=2), rng=Rng(1),
                     progress=Progress.none())
    r = gen.generate(_params(files, image=str(files / "pair.png"), face_index=1, preview_only=True),
                     rng=Rng(1), progress=Progress.none())
    assert [o.suffix for o in r.outputs] == [".png"] and r.data["faces_found"] == 2 and r.data["face_index"] == 1


@pytest.mark.parametrize("change, words", [
    ({"image": "notes.png"}, "not an image"),
    ({"image": "missing.png"}, "does not exist"),
    ({"image": "huge.png"}, "megapixels"),
    ({"audio": "notes.png"}, "no sound track"),
    ({"audio": "long.wav"}, "limited to 120"),
    ({"driving_video": "speech.wav"}, "no video stream"),
    ({"presets": "wink"}, "not understood"),
    ({"size": 129}, "even"),
    ({"format": "gif", "duration": 100.0}, "GIF"),
])
def test_bad_input_is_refused_clearly(gen, files, change, words):
    from PIL import Image

    huge = files / "huge.png"
    if not huge.exists():
        Image.new("L", (9000, 5000)).save(huge)  # 45 MP of zeros: a small file, a huge image
    change = {k: (str(files / v) if k in ("image", "audio", "driving_video") else v) for k, v in change.items()}
    with pytest.raises(InvalidInput, match=words):
        gen.generate(_params(files, **change), rng=Rng(1), progress=Progress.none())


def test_cancel_leaves_nothing_behind(gen, files):
    before = set(Path(tempfile.gettempdir()).glob("studio-face-*"))
    cancel = threading.Event()

    def sink(event):
        if event.fraction > 0.3:
            cancel.set()

    with pytest.raises(Cancelled):
        gen.generate(_params(files, duration=3.0), rng=Rng(1), progress=Progress(sink, cancel))
    assert set(Path(tempfile.gettempdir()).glob("studio-face-*")) == before


def test_module_import_is_light():
    code = ("import sys, generators.face_anim as m; "
            "print(any(k in sys.modules for k in ('numpy', 'torch', 'gradio', 'cv2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_audio_shorter_than_the_clip_keeps_every_frame(gen, files):
    r = gen.generate(_params(files, presets="", audio=str(files / "speech.wav"), duration=2.0), rng=Rng(1),
                     progress=Progress.none())
    info = _info(r.outputs[0].data, ".mp4")
    assert info["frames"] == 20 and info["has_audio"]
    assert "audio_cut_at_s" not in r.data
    r = gen.generate(_params(files, presets="", audio=str(files / "speech.wav"), duration=0.5), rng=Rng(1),
                     progress=Progress.none())
    assert _info(r.outputs[0].data, ".mp4")["frames"] == 5 and r.data["audio_cut_at_s"] == 0.5


def test_full_framing_gif_only(gen, files):
    with pytest.raises(InvalidInput, match="smaller than 24 pixels"):
        gen.generate(_params(files, framing="full", format="gif"), rng=Rng(1), progress=Progress.none())
    r = gen.generate(_params(files, framing="full", format="gif", size=256, fps=5), rng=Rng(1),
                     progress=Progress.none())
    assert [o.suffix for o in r.outputs] == [".gif", ".png"]
    import io

    from PIL import Image

    gif = Image.open(io.BytesIO(r.outputs[0].data))
    assert gif.size == (256, 256) and gif.n_frames == 5
    assert r.data["crop"] == [0, 0, 512, 512]


def test_models_from_a_local_folder(tmp_path):
    import shutil

    from generators.base import GeneratorUnavailable
    from generators.face_anim import FaceAnimator
    from generators.face_landmarks import find_model_dir, model_files

    for p in model_files(find_model_dir()).values():
        shutil.copy(p, tmp_path / p.name)
    g = FaceAnimator(models=str(tmp_path))
    assert g.estimate_bytes() > 0
    g.load("cpu")
    assert g.weights_sha256 and len(g.weights_sha256) == 64
    with pytest.raises(GeneratorUnavailable, match="must hold"):
        FaceAnimator(models=str(tmp_path / "empty")).load("cpu")
