"""Audio and video sized from their container header, before anything is decoded.

`ffmpeg -i FILE` with no output reads the container header (and probes the first packets for
stream parameters) and prints what it found: duration, and per stream the sample rate and
channel layout, or the frame size and rate. That is all a limit needs, so a clip that claims
an hour, 64 channels, a 50 MHz sample rate or 8192x8192 frames is refused with a sentence
before a decoder, resampler or scaler is started for it. The binary is the one imageio-ffmpeg
ships (the face generator already decodes with it), so no system ffprobe is needed.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from generators.base import InvalidInput

MAX_SAMPLE_RATE = 192_000  # the highest rate studio gear records; more is a crafted header
MAX_CHANNELS = 8  # 7.1 surround; everything here is mixed down to mono or stereo anyway
MAX_VIDEO_PIXELS = 4096 * 4096  # per frame (the face generator's cap)
MAX_VIDEO_FPS = 240.0  # frames per second; each source frame is decoded, so this bounds the work
PROBE_TIMEOUT_S = 30

_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_RATE = re.compile(r",\s*(\d+) Hz")
_CHANNELS = re.compile(r"Hz,\s*([^,]+)")
_SIZE = re.compile(r"[\s,](\d{1,6})x(\d{1,6})(?=[\s,\[]|$)")
_FPS = re.compile(r"([\d.]+) fps")
# channel layouts ffmpeg prints by name (libavutil/channel_layout.c) -> channels
_LAYOUTS = {"mono": 1, "stereo": 2, "downmix": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4, "quad": 4,
            "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6, "5.1(side)": 6,
            "6.0": 6, "6.0(front)": 6, "hexagonal": 6, "3.1.2": 6, "6.1": 7, "6.1(back)": 7,
            "6.1(front)": 7, "7.0": 7, "7.0(front)": 7, "7.1": 8, "7.1(wide)": 8, "7.1(wide-side)": 8,
            "5.1.2": 8, "octagonal": 8, "cube": 8, "5.1.4": 10, "7.1.2": 10, "7.1.4": 12, "7.2.3": 12,
            "9.1.4": 14, "hexadecagonal": 16, "22.2": 24}


@dataclass(frozen=True)
class AudioStream:
    sample_rate: int | None
    channels: int | None  # None: a layout this module does not know by name


@dataclass(frozen=True)
class VideoStream:
    width: int | None
    height: int | None
    fps: float | None


@dataclass(frozen=True)
class MediaInfo:
    duration: float | None  # seconds; None when the container does not say
    audio: list[AudioStream] = field(default_factory=list)
    video: list[VideoStream] = field(default_factory=list)  # cover pictures ("attached pic") left out
    error: str = ""  # ffmpeg could not open the file: its last line


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: str) -> MediaInfo:
    """What the header says about `path` (no decoding, no output written)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                          timeout=PROBE_TIMEOUT_S)
    return parse(proc.stderr.decode("utf-8", "replace"))


def parse(text: str) -> MediaInfo:
    m = _DURATION.search(text)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    audio, video = [], []
    for line in text.splitlines():
        if "Stream #" not in line:
            continue
        if "Audio:" in line:
            rate = _RATE.search(line)
            layout = _CHANNELS.search(line)
            audio.append(AudioStream(int(rate[1]) if rate else None, _channels(layout[1]) if layout else None))
        elif "Video:" in line and "attached pic" not in line:
            size = _SIZE.search(line.split("Video:", 1)[1])
            fps = _FPS.search(line)
            video.append(VideoStream(int(size[1]) if size else None, int(size[2]) if size else None,
                                     float(fps[1]) if fps else None))
    error = ""
    if "Error opening input" in text or "Invalid data found" in text:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        error = next((ln for ln in lines if "invalid" in ln.lower()), lines[-1] if lines else "unreadable")
    return MediaInfo(duration, audio, video, error)


def _channels(layout: str) -> int | None:
    layout = layout.strip()
    m = re.fullmatch(r"(\d+) channels(?: \(.*\))?", layout)
    return int(m[1]) if m else _LAYOUTS.get(layout)


def check_audio(path: str, what: str = "the audio", *, max_seconds: float,
                max_sample_rate: int = MAX_SAMPLE_RATE, max_channels: int = MAX_CHANNELS) -> MediaInfo:
    """The header of an audio file within the limits, or InvalidInput saying which one."""
    info = probe(path)
    if info.error or not info.audio:
        raise InvalidInput(f"{what} has no sound track that can be read; use WAV, MP3, FLAC, OGG or M4A")
    if info.duration is not None and info.duration > max_seconds:
        raise InvalidInput(f"{what} lasts {info.duration:.0f} s; clips are limited to {max_seconds:g} s, "
                           "so cut it first")
    _check_sound(info, what, max_sample_rate, max_channels)
    return info


def check_video(path: str, what: str = "the video", *, max_seconds: float,
                max_pixels: int = MAX_VIDEO_PIXELS, max_fps: float = MAX_VIDEO_FPS,
                max_sample_rate: int = MAX_SAMPLE_RATE, max_channels: int = MAX_CHANNELS) -> MediaInfo:
    """The header of a video file within the limits (its sound track too), or InvalidInput."""
    info = probe(path)
    if info.error and "Picture size" in info.error:
        raise InvalidInput(f"{what} says its frames are larger than any decoder accepts "
                           f"({info.error.split(']')[-1].strip()}); scale it down first")
    if info.error or not info.video:
        raise InvalidInput(f"{what} has no video stream that can be read; use MP4, MOV, WEBM or AVI")
    for stream in info.video:
        if stream.width and stream.height and stream.width * stream.height > max_pixels:
            side = int(max_pixels ** 0.5)
            raise InvalidInput(f"{what}'s frames are {stream.width}x{stream.height}; the limit is "
                               f"{side}x{side} pixels, so scale it down first")
        if stream.fps is not None and stream.fps > max_fps:
            raise InvalidInput(f"{what} runs at {stream.fps:g} frames per second; up to {max_fps:g} are "
                               "accepted, so re-export it at a lower frame rate")
    if info.duration is None:
        raise InvalidInput(f"{what}'s length cannot be read from its header; re-export it as MP4")
    if info.duration > max_seconds:
        raise InvalidInput(f"{what} lasts {info.duration:.0f} s; clips are limited to {max_seconds:g} s, "
                           "so cut it first")
    _check_sound(info, f"{what}'s sound track", max_sample_rate, max_channels)
    return info


def _check_sound(info: MediaInfo, what: str, max_sample_rate: int, max_channels: int) -> None:
    for stream in info.audio:
        if stream.sample_rate is not None and stream.sample_rate > max_sample_rate:
            raise InvalidInput(f"{what} says it has {stream.sample_rate:,} samples per second; up to "
                               f"{max_sample_rate:,} are accepted, so export it at 48 kHz or less")
        if stream.channels is not None and stream.channels > max_channels:
            raise InvalidInput(f"{what} has {stream.channels} channels; up to {max_channels} are accepted, "
                               "so mix it down to stereo first")
