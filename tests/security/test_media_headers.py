"""Audio and video sized from their header before anything decodes them (issue #12): a crafted
header claiming a 50 MHz sample rate, 64 channels, 8192x8192 frames or a day of sound is refused
with a sentence at the input gate (before the job is queued) and again by the face generator's
loaders before ffmpeg decodes, resamples or scales a byte. The files are real WAV / YUV4MPEG2
files that ffmpeg opens; only their headers lie."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from generators.base import InvalidInput


def wav(path: Path, *, rate: int = 16_000, channels: int = 1, claimed_bytes: int | None = None,
        real_bytes: int = 3200) -> Path:
    """A 16-bit PCM WAV whose header says `rate`, `channels` and `claimed_bytes` of data."""
    block = channels * 2
    data = claimed_bytes if claimed_bytes is not None else real_bytes
    header = (b"RIFF" + struct.pack("<I", min(36 + data, 0xFFFFFFFF)) + b"WAVE" + b"fmt "
              + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
              + b"data" + struct.pack("<I", data))
    path.write_bytes(header + b"\x00" * real_bytes)
    return path


def y4m(path: Path, width: int, height: int, frames: int = 1, fps: int = 25) -> Path:
    """A raw YUV4MPEG2 video whose header names the frame size; only the first frame is stored,
    and only a few bytes of it."""
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
                     + b"FRAME\n" + b"\x10" * 64)
    return path


CRAFTED_AUDIO = [
    (dict(rate=50_000_000), "50,000,000 samples per second"),
    (dict(channels=64), "64 channels"),
    (dict(rate=1_000, real_bytes=1_000 * 2 * 130), "lasts 130 s; clips are limited to 120 s"),  # 260 KB
]  # (a WAV's data size claim is not trusted by ffmpeg: it measures the file, so no crafted length)


@pytest.mark.parametrize("header,words", CRAFTED_AUDIO)
def test_face_audio_is_refused_from_its_header_before_ffmpeg_decodes(tmp_path, monkeypatch, header,
                                                                     words) -> None:
    from generators import face_audio

    ran: list[list[str]] = []
    real_run = subprocess.run

    def watched(cmd, *args, **kwargs):  # noqa: ANN001, ANN202 - subprocess.run's signature
        ran.append([str(c) for c in cmd])
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", watched)
    with pytest.raises(InvalidInput, match=words):
        face_audio.load_audio(str(wav(tmp_path / "speech.wav", **header)), max_seconds=120)
    assert ran and all("pipe:1" not in cmd for cmd in ran)  # the header read only: no decode to a pipe


def test_a_plain_wav_still_loads(tmp_path) -> None:
    from generators import face_audio

    samples = face_audio.load_audio(str(wav(tmp_path / "ok.wav", rate=16_000, real_bytes=32_000)), max_seconds=120)
    assert 20_000 < len(samples) < 24_000  # 1 s at the generator's 22,050 Hz


def test_face_video_frame_size_is_refused_from_its_header(tmp_path) -> None:
    from generators import face_video

    with pytest.raises(InvalidInput, match="8192x8192; the limit is 4096x4096"):
        face_video.check_video(str(y4m(tmp_path / "huge.y4m", 8192, 8192)), max_seconds=120)


def test_the_gate_refuses_crafted_media_before_the_job_is_queued(tmp_path) -> None:
    from PIL import Image

    from studio.api import Studio
    from studio.config import Settings

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    portrait = inbox / "me.png"
    Image.new("RGB", (64, 64), (180, 140, 120)).save(portrait)
    crafted_audio = wav(inbox / "speech.wav", channels=64)
    crafted_video = y4m(inbox / "motion.y4m", 8192, 8192)
    long_audio = wav(inbox / "long.wav", rate=1_000, real_bytes=1_000 * 2 * 700)  # 700 s in 1.4 MB
    studio = Studio(Settings(home=tmp_path / "home", input_dirs=(str(inbox),)),
                    registry={"face": "generators.face_anim:FaceAnimator"})
    try:
        for params, words in [({"audio": str(crafted_audio)}, "the audio has 64 channels"),
                              ({"driving_video": str(crafted_video)}, "the driving video's frames are 8192x8192"),
                              ({"audio": str(long_audio)}, "lasts 700 s; clips are limited to 600 s")]:
            for origin in ("remote", "local"):  # submit itself refuses: no job exists to run
                with pytest.raises(InvalidInput, match=words):
                    studio.submit("face", {"image": str(portrait), "consent": True, **params}, origin=origin)
    finally:
        studio.close()
