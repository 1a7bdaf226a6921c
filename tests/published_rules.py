"""Every open checkpoint's rules as published, written out as literals: what tests expect.

Tests read their expectations from here, never from `backends/` (the code under test). Two
kinds of value sit in each row, each with its source:

- the model's own, published with it: native fps, the frame rule (counts `k*n + offset`), the
  size multiple, default steps and guidance. Sources: `shared/data/model-configs.json` (each
  checkpoint's published configuration and pipeline defaults, with the model cards and scripts
  they come from) and `shared/REFERENCE.md` (the team's table of published values);
- what Dailies promises within them, as the README's "Open models" table publishes it: the
  frame and size ranges a request may use, the defaults, the fps range, image-to-video.

`preview` is our own renderer, not a model: its row is the contract its tests hold it to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    # The model's own (model-configs.json / REFERENCE.md).
    fps: int
    frame_rule: tuple[int, int]  # (k, offset): frame counts k*n + offset
    size_multiple: int | None  # width and height multiples of it (None: not published)
    steps: int | None  # default denoising steps (None: the backend takes none); README's where not published
    guidance: float | None  # default guidance, likewise
    # Ours within them (README's "Open models" table).
    frames: tuple[int, int, int, int]  # (step, minimum, maximum, default); counts step*n + offset
    size: tuple[int, int, int]  # (multiple, minimum, maximum)
    default_size: tuple[int, int]  # (width, height)
    fps_range: tuple[int, int] | None = None  # None: the native fps only
    image_to_video: bool = False

    def valid_frames(self) -> list[int]:
        step, low, high, _ = self.frames
        return [n for n in range(low, high + 1) if (n - self.frame_rule[1]) % step == 0]

    @property
    def smallest_frames(self) -> int:
        return self.valid_frames()[0]

    @property
    def default_frames(self) -> int:
        return self.frames[3]


# The default model of each backend is the first listed (README: "first = default").
RULES: dict[str, dict[str, Published]] = {
    "preview": {
        # Our renderer (README: "a CPU pipeline preview"): 2 s of 24 frames at 12 fps, 256x256, any count 1-96.
        "preview-renderer-v1": Published(
            fps=12, frame_rule=(1, 0), size_multiple=16, steps=None, guidance=None,
            frames=(1, 1, 96, 24), size=(16, 64, 512), default_size=(256, 256), fps_range=(4, 24),
        ),
    },
    "cogvideox": {
        # model-configs CogVideoX-5b defaults: 480x720, 49 frames, fps 8, 50 steps, guidance 6.0;
        # REFERENCE: 4k+1, size /8. README: 4k+1, 9-49 (49), /16, 64-720 (720x480), 8 fps, 50/6, i2v 5b.
        "5b": Published(
            fps=8, frame_rule=(4, 1), size_multiple=8, steps=50, guidance=6.0,
            frames=(4, 9, 49, 49), size=(16, 64, 720), default_size=(720, 480), image_to_video=True,
        ),
        # model-configs CogVideoX-2b defaults: the same numbers (fp16). README: no image-to-video.
        "2b": Published(
            fps=8, frame_rule=(4, 1), size_multiple=8, steps=50, guidance=6.0,
            frames=(4, 9, 49, 49), size=(16, 64, 720), default_size=(720, 480),
        ),
        # model-configs CogVideoX1.5-5B defaults: 768x1360, 81 frames (161 also), fps 16, 50 steps, guidance 6.0;
        # REFERENCE: 81 or 161 (16k+1), /8. README: 81 or 161 (81), /16, 64-1360 (1360x768), i2v yes.
        "1.5-5b": Published(
            fps=16, frame_rule=(16, 1), size_multiple=8, steps=50, guidance=6.0,
            frames=(80, 81, 161, 81), size=(16, 64, 1360), default_size=(1360, 768), image_to_video=True,
        ),
    },
    "ltx-video": {
        # REFERENCE: 8k+1 up to 257, /32, 24 to 30 fps, guidance 3 / 50 steps; model-configs LTX-Video-0.9.1:
        # 161 frames, 50 steps, guidance 3.0, docs export fps 24. README: 8k+1, 9-257 (161), /32, 64-1280
        # (704x480: the README's default; LTXPipeline's own is 704x512), 24-30, all with image-to-video.
        "0.9.1": Published(
            fps=24, frame_rule=(8, 1), size_multiple=32, steps=50, guidance=3.0,
            frames=(8, 9, 257, 161), size=(32, 64, 1280), default_size=(704, 480), fps_range=(24, 30),
            image_to_video=True,
        ),
        # README: 40 steps / guidance 3 (no stored published source for 0.9.5's 40 steps: README's value).
        "0.9.5": Published(
            fps=24, frame_rule=(8, 1), size_multiple=32, steps=40, guidance=3.0,
            frames=(8, 9, 257, 161), size=(32, 64, 1280), default_size=(704, 480), fps_range=(24, 30),
            image_to_video=True,
        ),
        # REFERENCE: distilled, guidance 1; model-configs LTX-Video-0.9.8-13B-distilled (same architecture as
        # 0.9.7-distilled): 8 steps, guidance 1.0. README: distilled 8/1.
        "0.9.7-distilled": Published(
            fps=24, frame_rule=(8, 1), size_multiple=32, steps=8, guidance=1.0,
            frames=(8, 9, 257, 161), size=(32, 64, 1280), default_size=(704, 480), fps_range=(24, 30),
            image_to_video=True,
        ),
    },
    "mochi": {
        # model-configs Mochi-1-preview defaults: 480x848, fps 30, 64 steps, guidance 4.5 (docs: 85 frames quick,
        # 163 full); REFERENCE: 6k+1, /16, 30 fps, 4.5 / 64. README: 6k+1, 7-163 (85), /16, 64-848 (848x480), no i2v.
        "1-preview": Published(
            fps=30, frame_rule=(6, 1), size_multiple=16, steps=64, guidance=4.5,
            frames=(6, 7, 163, 85), size=(16, 64, 848), default_size=(848, 480),
        ),
    },
    "wan": {
        # model-configs Wan2.1-T2V-1.3B defaults: 480x832, 81 frames, fps 16, 50 steps, guidance 5.0;
        # REFERENCE: 4k+1, /16, 16 fps, 5 / 50. README: 4k+1, 5-81 (81), /16, 64-1280 (832x480).
        "2.1-1.3b": Published(
            fps=16, frame_rule=(4, 1), size_multiple=16, steps=50, guidance=5.0,
            frames=(4, 5, 81, 81), size=(16, 64, 1280), default_size=(832, 480),
        ),
        # model-configs Wan2.1-T2V-14B defaults: 81 frames, fps 16, 50 steps, guidance 5.0 (720x1280; README's
        # default for the family is 832x480). README: image-to-video.
        "2.1-14b": Published(
            fps=16, frame_rule=(4, 1), size_multiple=16, steps=50, guidance=5.0,
            frames=(4, 5, 81, 81), size=(16, 64, 1280), default_size=(832, 480), image_to_video=True,
        ),
        # model-configs Wan2.2-TI2V-5B defaults: 704x1280, 121 frames, fps 24, 50 steps, guidance 5.0, 32x spatial
        # in all. README: 4k+1, 5-121 (121), /32, 64-1280 (1280x704), 24, image-to-video.
        "2.2-5b": Published(
            fps=24, frame_rule=(4, 1), size_multiple=32, steps=50, guidance=5.0,
            frames=(4, 5, 121, 121), size=(32, 64, 1280), default_size=(1280, 704), image_to_video=True,
        ),
        # README: A14B 40/4 (no stored published source for them: README's values); rules of Wan 2.1.
        "2.2-a14b": Published(
            fps=16, frame_rule=(4, 1), size_multiple=16, steps=40, guidance=4.0,
            frames=(4, 5, 81, 81), size=(16, 64, 1280), default_size=(832, 480), image_to_video=True,
        ),
    },
    "pyramid-flow": {
        # REFERENCE: 16 latent frames = 5 s, 31 = 10 s (768p only), 640x384 or 1280x768, 24 fps, first-frame
        # guidance 9, steps 20/20/20. README: 8k+1, 9-121 (121), /64, 64-640 (640x384), image-to-video.
        "384p": Published(
            fps=24, frame_rule=(8, 1), size_multiple=None, steps=20, guidance=9.0,
            frames=(8, 9, 121, 121), size=(64, 64, 640), default_size=(640, 384), image_to_video=True,
        ),
        # README: 8k+1, 9-241 (121), /64, 64-1280 (1280x768).
        "768p": Published(
            fps=24, frame_rule=(8, 1), size_multiple=None, steps=20, guidance=9.0,
            frames=(8, 9, 241, 121), size=(64, 64, 1280), default_size=(1280, 768), image_to_video=True,
        ),
    },
    "ltx-2": {
        # model-configs LTX-2 defaults: 512x768, 121 frames, frame_rate 24, 30 steps, guidance 3.0; REFERENCE:
        # /32, 24 fps, 3 / 30. README: 8k+1, 9-481 (121), /32, 64-1920 (768x512), 24-30, image-to-video.
        "2.0": Published(
            fps=24, frame_rule=(8, 1), size_multiple=32, steps=30, guidance=3.0,
            frames=(8, 9, 481, 121), size=(32, 64, 1920), default_size=(768, 512), fps_range=(24, 30),
            image_to_video=True,
        ),
        # REFERENCE: distilled, 8 steps + a 3-step second stage at guidance 1. README: /64 (two stages).
        "2.0-distilled": Published(
            fps=24, frame_rule=(8, 1), size_multiple=32, steps=8, guidance=1.0,
            frames=(8, 9, 481, 121), size=(64, 64, 1920), default_size=(768, 512), fps_range=(24, 30),
            image_to_video=True,
        ),
    },
    "hunyuanvideo": {
        # model-configs HunyuanVideo-1.5-480p-t2v defaults: 480x848, 121 frames, fps 24, 50 steps, guidance 6.0,
        # latent 30x53 (16x spatial, patch 1); REFERENCE: 24 fps, 6 / 50. README: 4k+1, 5-121 (121), /16, 64-848.
        "480p": Published(
            fps=24, frame_rule=(4, 1), size_multiple=16, steps=50, guidance=6.0,
            frames=(4, 5, 121, 121), size=(16, 64, 848), default_size=(848, 480), image_to_video=True,
        ),
        # model-configs HunyuanVideo-1.5-720p-t2v defaults: 720x1280, the rest as 480p. README: 64-1280 (1280x720).
        "720p": Published(
            fps=24, frame_rule=(4, 1), size_multiple=16, steps=50, guidance=6.0,
            frames=(4, 5, 121, 121), size=(16, 64, 1280), default_size=(1280, 720), image_to_video=True,
        ),
    },
}  # fmt: skip


def published(backend: str, model: str | None = None) -> Published:
    """The row of `backend`'s `model` (None: its default, the first listed)."""
    models = RULES[backend]
    return models[model] if model is not None else next(iter(models.values()))
