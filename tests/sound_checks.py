"""What a listener would check in an MP4 with sound, decoded with PyAV."""

from __future__ import annotations

import io

import av
import numpy as np

from dailies.contract.media import VideoInfo, probe_mp4

SILENCE_RMS = 1e-3  # -60 dBFS: below this the track is silence to the ear


def decoded_audio(mp4: bytes) -> np.ndarray:
    """Every sample of the first sound track, channels first, as float."""
    with av.open(io.BytesIO(mp4)) as container:
        return np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)


def assert_video_with_sound(mp4: bytes) -> VideoInfo:
    """An H.264 picture and an AAC sound track of the same length (within one frame), not silence."""
    info = probe_mp4(mp4)
    assert info.codec == "h264" and info.audio is not None, info
    assert info.audio.codec == "aac", info.audio
    assert abs(info.audio.duration_s - info.num_frames / info.fps) <= 1 / info.fps, info
    assert abs(info.duration_s - info.audio.duration_s) <= 1 / info.fps, info
    rms = float(np.sqrt(np.mean(np.square(decoded_audio(mp4)))))
    assert rms > SILENCE_RMS, f"the sound track is silence (RMS {rms:.2e})"
    return info
