"""Encoding frames (and a sound track) to browser-playable MP4 (H.264 yuv420p, AAC) and checking MP4s we receive."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Audio:
    """A sound track: float samples in [-1, 1] shaped (channels, samples), one or two channels."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[0] not in (1, 2) or self.sample_rate <= 0:
            raise ValueError(f"expected (1 or 2, samples) at a positive rate, got {self.samples.shape}")

    def fitted(self, seconds: float) -> np.ndarray:
        """float32 samples cut or padded with silence to `seconds`: the sound lasts as long as the picture."""
        wanted = round(seconds * self.sample_rate)
        samples = np.clip(self.samples[:, :wanted], -1.0, 1.0).astype(np.float32)
        return np.pad(samples, ((0, 0), (0, wanted - samples.shape[1])))


def encode_mp4(frames: np.ndarray, fps: int, audio: Audio | None = None) -> bytes:
    """Frames as uint8 (T, H, W, 3), and an optional sound track, to an MP4 that starts playing
    before it is fully loaded: H.264, plus AAC of exactly the video's duration.

    One encoder thread keeps the bytes identical for identical frames. The muxer writes to a
    temporary file because moving the index to the front (faststart) re-reads the output.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    with tempfile.NamedTemporaryFile(suffix=".mp4") as out:
        _encode_to(out.name, frames, fps, audio)
        return Path(out.name).read_bytes()


def _encode_to(path: str, frames: np.ndarray, fps: int, audio: Audio | None) -> None:
    _, height, width, _ = frames.shape
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"crf": "20", "preset": "veryfast"}
        # PyAV defaults to automatic slice threads, whose split depends on the machine's load.
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        sound = _SoundTrack(container, audio, len(frames) / fps) if audio is not None else None
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame[: stream.height, : stream.width], format="rgb24")
            # Convert here: the encoder's own conversion gave different bytes for identical frames.
            picture = picture.reformat(format="yuv420p")
            container.mux(stream.encode(picture))
            if sound:
                sound.until((i + 1) / fps)  # interleaved, so a browser plays both while it downloads
        container.mux(stream.encode())
        if sound:
            sound.finish()


class _SoundTrack:
    """An AAC stream fed in step with the picture; the encoder cuts its own frame sizes."""

    def __init__(self, container: av.container.OutputContainer, audio: Audio, seconds: float) -> None:
        self.container, self.rate = container, audio.sample_rate
        self.samples = audio.fitted(seconds)
        self.layout = "mono" if len(self.samples) == 1 else "stereo"
        self.stream = container.add_stream("aac", rate=self.rate)
        self.stream.layout = self.layout
        self.stream.codec_context.thread_count = 1
        self.done = 0

    def until(self, seconds: float) -> None:
        end = min(round(seconds * self.rate), self.samples.shape[1])
        if end <= self.done:
            return
        chunk = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(self.samples[:, self.done : end]), format="fltp", layout=self.layout
        )
        chunk.sample_rate, chunk.pts = self.rate, self.done
        self.container.mux(self.stream.encode(chunk))
        self.done = end

    def finish(self) -> None:
        self.until(self.samples.shape[1] / self.rate)
        self.container.mux(self.stream.encode())


def poster_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    duration_s: float


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    pix_fmt: str
    width: int
    height: int
    num_frames: int
    fps: float
    duration_s: float
    audio: AudioInfo | None = None  # the first sound track, if there is one


def probe_mp4(data: bytes) -> VideoInfo:
    """Open an MP4 and count its decodable frames; raises ValueError if it is not a playable video."""
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            sound = container.streams.audio[0] if container.streams.audio else None
            audio = None
            if sound is not None:
                audio = AudioInfo(
                    codec=sound.codec_context.name,
                    sample_rate=sound.codec_context.sample_rate,
                    channels=sound.codec_context.channels,
                    duration_s=_seconds(sound, container),
                )
            return VideoInfo(
                codec=stream.codec_context.name,
                pix_fmt=stream.codec_context.pix_fmt or "",
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                num_frames=sum(1 for _ in container.decode(stream)),
                fps=float(stream.average_rate or stream.guessed_rate or 0),
                duration_s=_seconds(stream, container),
                audio=audio,
            )
    except av.FFmpegError as exc:
        raise ValueError(f"not a playable video: {exc}") from None


def _seconds(stream: av.stream.Stream, container: av.container.InputContainer) -> float:
    """A stream's duration as the player sees it (AAC's priming samples cut by the edit list)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return (container.duration or 0) / av.time_base


def first_frame(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(video=0):
            return frame.to_ndarray(format="rgb24")
    raise ValueError("the video has no frames")
