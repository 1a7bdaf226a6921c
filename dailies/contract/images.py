"""Start images of image-to-video jobs: refused at submit (the app) and again when decoded (the
worker), by the same checks, so a picture the app let through never surprises the worker.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

# The largest model size is 1280x720 (0.9 MP); a phone photo is 12 to 50 MP. 4096x4096 keeps any
# sensible photo and bounds a decode to 16.8 MP (64 MB as RGBA): a 164 KB PNG of 169 MP passed
# Pillow's own bomb check and took a worker from 484 to 1,259 MB.
PIXELS_MAX = 4096 * 4096
FORMATS = ("PNG", "JPEG", "WEBP")
UNREADABLE = "image is not a readable picture (PNG, JPEG or WebP)"
TOO_LARGE = f"image has more than {PIXELS_MAX / 1e6:.1f} megapixels (4096x4096)"


class ImageRefused(ValueError):
    """A start image that cannot be used; the message says why, for the person who sent it."""


def decoded(data: bytes) -> Image.Image:
    """The picture fully decoded, after its size was read from its header and found within PIXELS_MAX."""
    # Pillow's parsers raise many kinds of error on hostile bytes: each is "not readable" here.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our cap is lower
            image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except Image.DecompressionBombError:
        raise ImageRefused(TOO_LARGE) from None
    except Exception:
        raise ImageRefused(UNREADABLE) from None
    width, height = image.size
    if width * height > PIXELS_MAX:
        raise ImageRefused(f"{TOO_LARGE}; it is {width}x{height}")
    try:
        image.load()  # a truncated or damaged picture fails here
    except Exception:
        raise ImageRefused(f"{UNREADABLE}: it is truncated or damaged") from None
    return image


def start_image(data: bytes, width: int, height: int) -> Image.Image:
    """The start image as RGB at the video's size, turned upright as its EXIF orientation says
    (a phone stores a portrait photo sideways and says so there)."""
    image = decoded(data)
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:
        raise ImageRefused(f"{UNREADABLE}: its EXIF data is damaged") from None
    return upright.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
