"""Encoding frames to browser-playable MP4 (H.264, yuv420p) and checking MP4s we receive."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def encode_mp4(frames: np.ndarray, fps: int) -> bytes:
    """Frames as uint8 (T, H, W, 3) to an H.264 MP4 that starts playing before it is fully loaded.

    One encoder thread keeps the bytes identical for identical frames. The muxer writes to a
    temporary file because moving the index to the front (faststart) re-reads the output.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    _, height, width, _ = frames.shape
    with tempfile.NamedTemporaryFile(suffix=".mp4") as out:
        _encode_to(out.name, frames, fps, width, height)
        return Path(out.name).read_bytes()


def _encode_to(path: str, frames: np.ndarray, fps: int, width: int, height: int) -> None:
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"crf": "20", "preset": "veryfast"}
        # PyAV defaults to automatic slice threads, whose split depends on the machine's load.
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(frame[: stream.height, : stream.width], format="rgb24")
            # Convert here: the encoder's own conversion gave different bytes for identical frames.
            picture = picture.reformat(format="yuv420p")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())


def poster_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    pix_fmt: str
    width: int
    height: int
    num_frames: int
    fps: float


def probe_mp4(data: bytes) -> VideoInfo:
    """Open an MP4 and count its decodable frames; raises ValueError if it is not a playable video."""
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            return VideoInfo(
                codec=stream.codec_context.name,
                pix_fmt=stream.codec_context.pix_fmt or "",
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                num_frames=sum(1 for _ in container.decode(stream)),
                fps=float(stream.average_rate or stream.guessed_rate or 0),
            )
    except av.FFmpegError as exc:
        raise ValueError(f"not a playable video: {exc}") from None


def first_frame(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(video=0):
            return frame.to_ndarray(format="rgb24")
    raise ValueError("the video has no frames")
