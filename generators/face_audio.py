"""Speech audio -> mouth motion, the way Adobe Character Animator's lip sync starts: frame-wise
loudness (RMS energy) opens the jaw, spectral-flux onsets (Bello et al., 2005) add a syllable
"pop", and the spectral centroid picks a wide (ee) or round (oo) lip shape. numpy only;
audio is decoded by the ffmpeg binary that imageio-ffmpeg ships, with its length checked first.
"""
from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators.base import InvalidInput
from generators.inputs import check_file

SAMPLE_RATE = 22050  # enough for speech envelopes and for the muxed AAC track
MAX_AUDIO_BYTES = 200 * 1024 * 1024


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: str) -> tuple[float | None, bool, bool]:
    """(duration seconds or None, has an audio stream, has a video stream) from ffmpeg's header read."""
    from generators.media_header import probe as probe_header

    info = probe_header(path)
    return info.duration, bool(info.audio), bool(info.video)


def load_audio(path: str, max_seconds: float) -> np.ndarray:
    """Mono float32 samples at SAMPLE_RATE; clear errors for non-audio and over-long files."""
    from generators.media_header import check_audio

    p = check_file(path, "audio", MAX_AUDIO_BYTES)
    # length, sample rate and channels from the header, before ffmpeg decodes or resamples anything
    check_audio(str(p), "the audio file", max_seconds=max_seconds)
    # decode at most max_seconds + 1 s even if the header lied about the length (bounded work)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(p), "-t",
           f"{max_seconds + 1:.3f}", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise InvalidInput("the audio file could not be decoded: "
                           + proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1][:200])
    samples = np.frombuffer(proc.stdout, np.float32).copy()
    if len(samples) == 0:
        raise InvalidInput("the audio file holds no samples")
    if len(samples) > max_seconds * SAMPLE_RATE + SAMPLE_RATE // 10:
        raise InvalidInput(f"the audio lasts more than {max_seconds:g} s; cut it first")
    if not np.isfinite(samples).all():
        raise InvalidInput("the audio file holds invalid samples")
    return samples


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(SAMPLE_RATE)
        wf.writeframes(pcm.tobytes())


@dataclass
class MouthTrack:
    jaw: np.ndarray  # (frames,) 0..1 opening
    wide: np.ndarray  # (frames,) 0..1 "ee"
    round: np.ndarray  # (frames,) 0..1 "oo"
    onsets: np.ndarray  # frame indices of detected onsets


def mouth_track(samples: np.ndarray, fps: float, frames: int) -> MouthTrack:
    """Per-video-frame jaw opening and lip shape from speech."""
    hop = SAMPLE_RATE / fps
    nfft = 1024
    need = int(np.ceil(frames * hop)) + nfft
    x = np.zeros(need, np.float32)
    x[: min(len(samples), need)] = samples[:need]
    # energy: RMS over each video frame's window, in dB above the clip's noise floor
    starts = (np.arange(frames) * hop).astype(int)
    win = max(int(round(hop)), 1)
    csum = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    rms = np.sqrt((csum[starts + win] - csum[starts]) / win + 1e-12)
    db = 20 * np.log10(rms + 1e-9)
    peak = np.percentile(db, 95) if frames else 0.0
    floor = max(np.percentile(db, 10), peak - 45.0)
    energy = np.clip((db - floor) / max(peak - floor, 6.0), 0.0, 1.0)
    energy[db < -55.0] = 0.0  # digital silence stays closed
    # one Hann-windowed FFT per video frame, centred on the frame's window
    centre = np.clip(starts + win // 2 - nfft // 2, 0, len(x) - nfft)
    idx = centre[:, None] + np.arange(nfft)[None, :]
    mag = np.abs(np.fft.rfft(x[idx] * np.hanning(nfft).astype(np.float32), axis=1)).T  # (bins, frames)
    f = np.fft.rfftfreq(nfft, 1.0 / SAMPLE_RATE)
    logmag = np.log1p(mag * 100)
    flux = np.maximum(np.diff(logmag, axis=1, prepend=logmag[:, :1]), 0).sum(0)
    flux = flux / (np.percentile(flux, 95) + 1e-9)
    padded = np.pad(flux, 2, constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 5).max(1)
    peaks = (flux == local_max) & (flux > 0.6) & (energy > 0.15)
    onsets = np.nonzero(peaks)[0]
    centroid = (f[:, None] * mag).sum(0) / (mag.sum(0) + 1e-9)
    # jaw: fast attack, slower release (the mouth closes more slowly than it opens)
    target = energy ** 0.8
    for i in onsets:
        target[i:i + 2] = np.minimum(1.0, target[i:i + 2] + 0.25)
    jaw = np.zeros(frames)
    level = 0.0
    for i in range(frames):
        k = 0.8 if target[i] > level else 0.35
        level += k * (target[i] - level)
        jaw[i] = level
    bright = np.clip((centroid - 1200.0) / 1800.0, 0.0, 1.0)
    wide = bright * np.clip(energy * 1.5, 0, 1)
    round_ = (1.0 - bright) * np.clip(energy * 1.5, 0, 1) * 0.8
    return MouthTrack(jaw=jaw, wide=wide, round=round_, onsets=onsets)
