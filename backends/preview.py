"""`preview`: a CPU renderer that turns prompt and seed into a short deterministic MP4.

It exercises the whole pipeline (queue, worker, progress, cancel, storage, gallery) on a
machine with no GPU and no keys. It is a pipeline preview, not a model, and says so.
"""

from __future__ import annotations

import textwrap
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from backends.base import (
    Availability,
    Backend,
    CancelCheck,
    Cancelled,
    Checkpoint,
    FrameRule,
    Param,
    Progress,
    SizeRule,
    Video,
)
from dailies.contract.media import Audio, encode_mp4, poster_jpeg
from dailies.contract.spec import JobSpec


class PreviewBackend(Backend):
    name = "preview"
    display_name = "Preview (pipeline preview, not a model)"
    description = (
        "Draws a moving field from the seed with your prompt on it, on the CPU. "
        "It shows the queue and the gallery working; it is not a video model."
    )
    kind = "preview"
    checkpoints = (
        Checkpoint(
            "preview-renderer-v1",
            frames=FrameRule(step=1, offset=0, minimum=1, maximum=96, default=24),
            size=SizeRule(multiple=16, minimum=64, maximum=512, default=(256, 256)),
            fps=12,
            fps_range=(4, 24),
        ),
    )
    params = (
        Param("motion", float, 1.0, minimum=0.0, maximum=4.0, label="Motion", help="How fast the field moves."),
        Param("waves", int, 3, minimum=1, maximum=8, label="Waves", help="How many waves make up the field."),
        Param("sound", bool, False, label="Sound", help="Add a short tone and rhythm drawn from the seed."),
    )

    def availability(self) -> Availability:
        return Availability(True)

    def generate(self, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
        seed = request.seed or 0
        rng = np.random.default_rng(seed)
        waves = int(request.params.get("waves", 3))
        motion = float(request.params.get("motion", 1.0))
        h, w, n = request.height, request.width, request.num_frames
        freq = rng.uniform(1.0, 6.0, size=(waves, 2)) * 2 * np.pi
        phase = rng.uniform(0, 2 * np.pi, size=waves)
        hue = rng.uniform(0, 2 * np.pi, size=3)
        speed = rng.uniform(-1.0, 1.0, size=waves) * 2 * np.pi * motion
        palette = rng.uniform(0.2, 1.0, size=(3, 3))
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        y, x = y / h, x / w
        overlay = _text_overlay(request.prompt, w, h)
        # DAILIES_PREVIEW_PACE spreads the work over that many seconds (queue demos, load tests).
        pace = self.settings.preview_pace / n
        start = time.monotonic()
        frames = np.empty((n, h, w, 3), dtype=np.uint8)
        for i in range(n):
            if cancelled():
                raise Cancelled()
            t = i / max(request.fps, 1)
            field = sum(np.sin(freq[k, 0] * x + freq[k, 1] * y + speed[k] * t + phase[k]) for k in range(waves)) / waves
            rgb = 0.5 + 0.5 * np.sin(field[..., None] * np.pi * palette[0] + hue + palette[1] * t)
            frame = (rgb * 255).astype(np.uint8)
            frames[i] = np.where(overlay[..., None] > 0, 255 - frame // 3, frame)
            progress((i + 1) / (n + 1), f"frame {i + 1}/{n}")
            delay = start + pace * (i + 1) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sound = _tune(seed, n / request.fps) if request.params.get("sound") else None
        mp4 = encode_mp4(frames, request.fps, sound)
        return Video(
            mp4=mp4,
            poster=poster_jpeg(frames[n // 2]),
            model=self.default.name,
            width=w,
            height=h,
            num_frames=n,
            fps=request.fps,
            has_audio=sound is not None,
        )


SAMPLE_RATE = 24_000
SCALE = (220.0, 247.5, 278.4, 330.0, 371.3, 440.0, 495.0, 556.9)  # a major pentatonic over two octaves


def _tune(seed: int, seconds: float) -> Audio:
    """A short tone and rhythm from the seed: notes of one scale on a beat, each a plucked decay.

    Its own random stream, so turning sound on leaves the picture as it was.
    """
    rng = np.random.default_rng([seed, 1])
    beat = rng.uniform(0.12, 0.3)  # seconds per step
    pattern = rng.random(8) < 0.7
    pattern[0] = True  # the first step always sounds
    notes = rng.choice(SCALE, size=8)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    step = (t // beat).astype(int) % 8
    since = t % beat
    tone = np.sin(2 * np.pi * notes[step] * t) + 0.3 * np.sin(4 * np.pi * notes[step] * t)
    samples = 0.4 * tone * np.exp(-since * 12.0) * pattern[step]
    return Audio(samples[None, :].astype(np.float32), SAMPLE_RATE)


def _text_overlay(prompt: str, width: int, height: int) -> np.ndarray:
    """A mask with the prompt written on it (and a PREVIEW label), so each video shows its recipe."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    size = max(8, width // 20)
    font = ImageFont.load_default(size=size)
    lines = textwrap.wrap(" ".join(prompt.split()), width=max(8, int(width / (size * 0.55))))[:6]
    draw.text((size // 2, size // 2), "PREVIEW", fill=255, font=font)
    draw.multiline_text((size // 2, height // 3), "\n".join(lines), fill=255, font=font, spacing=2)
    return np.asarray(image)
