"""Video in and out for the face animator, through imageio-ffmpeg's bundled ffmpeg binary:
streaming reads of a driving video (bounded memory), H.264 + AAC MP4 writing frame by frame,
and GIF conversion with a per-clip palette (ffmpeg's palettegen/paletteuse filters).
"""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np

from generators.base import InvalidInput
from generators.face_audio import ffmpeg_exe, probe
from generators.inputs import check_file

MAX_VIDEO_BYTES = 500 * 1024 * 1024
MAX_VIDEO_PIXELS = 4096 * 4096


def check_video(path: str, max_seconds: float) -> tuple[Path, float]:
    """Validate a driving video before decoding it; returns (path, duration seconds)."""
    from generators.media_header import check_video as check_header

    p = check_file(path, "driving video", MAX_VIDEO_BYTES)
    # length, frame size and rate from the header, before ffmpeg decodes a frame
    info = check_header(str(p), "the driving video", max_seconds=max_seconds, max_pixels=MAX_VIDEO_PIXELS)
    return p, float(info.duration or 0.0)  # check_header refused a video whose header has no length


def read_frames(path: Path, max_side: int, max_seconds: float) -> Iterator[tuple[float, np.ndarray]]:
    """(timestamp, RGB frame) pairs, scaled so the longer side is at most `max_side`, streamed."""
    import imageio_ffmpeg

    vf = f"scale='if(gt(iw,ih),min({max_side},iw),-2)':'if(gt(iw,ih),-2,min({max_side},ih))'"
    logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)  # the scale is on purpose
    gen = imageio_ffmpeg.read_frames(str(path), output_params=["-vf", vf, "-t", f"{max_seconds + 0.5:.3f}"])
    try:
        try:
            meta = gen.__next__()
        except (RuntimeError, OSError, StopIteration) as exc:
            raise InvalidInput(f"the driving video cannot be decoded: {str(exc).splitlines()[0][:200]}") from None
        w, h = meta["size"]
        sw, sh = meta.get("source_size") or (w, h)
        if sw * sh > MAX_VIDEO_PIXELS:
            raise InvalidInput(f"the driving video's frames are {sw}x{sh}; the limit is 4096x4096, "
                               "so scale it down first")
        fps = float(meta.get("fps") or 25.0)
        i = 0
        for raw in gen:
            frame = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            yield i / fps, frame
            i += 1
    finally:
        gen.close()


class Mp4Writer:
    """Frames -> H.264 MP4 (yuv420p, faststart), optionally muxed with an audio file as AAC."""

    def __init__(self, path: Path, width: int, height: int, fps: float, audio: Path | None = None,
                 crf: int = 20, comment: str = "") -> None:
        import imageio_ffmpeg

        params = ["-preset", "veryfast", "-crf", str(crf), "-movflags", "+faststart"]
        if comment:
            params += ["-metadata", f"description={comment}", "-metadata", "title=AI-generated portrait animation"]
        if audio is not None:
            params += ["-shortest"]
        self._gen = imageio_ffmpeg.write_frames(
            str(path), (width, height), fps=fps, codec="libx264", quality=None, macro_block_size=2,
            output_params=params, audio_path=str(audio) if audio else None,
            audio_codec="aac" if audio else None, ffmpeg_log_level="error")
        self._gen.send(None)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        self._gen.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        self._gen.close()


def mp4_to_gif(mp4: Path, gif: Path, fps: float) -> None:
    flt = f"fps={fps:g},split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=4"
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(mp4),
                           "-filter_complex", flt, "-loop", "0", str(gif)], capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError("GIF conversion failed: " + proc.stderr.decode("utf-8", "replace")[-300:])


def mp4_info(path: Path) -> dict:
    """Frame count, size, fps and whether an audio stream exists (for tests and the result data)."""
    import imageio_ffmpeg

    frames, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    dur, has_audio, has_video = probe(str(path))
    return {"frames": frames, "seconds": secs, "has_audio": has_audio, "has_video": has_video}
