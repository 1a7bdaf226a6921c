"""Start images: refused at submit unless the worker can decode them, within a pixel cap read from
the header; turned upright by their EXIF orientation in the worker."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import backends
from backends.base import GenerationError
from dailies.app.errors import ApiError
from dailies.app.validation import validate
from dailies.contract.images import PIXELS_MAX, decoded
from dailies.contract.settings import Settings
from dailies.worker.models import decode_image

pytestmark = pytest.mark.unit

WAN = backends.get("wan", Settings.from_env({}))
I2V = {"prompt": "a cat walks", "backend": "wan", "model": "2.2-5b"}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that says it is width x height but holds a few bytes of pixels: refused from its
    header it is "too large"; decoded, it would be "damaged" (and a real one would cost GBs)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = _chunk(b"IDAT", zlib.compress(bytes(64)))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + pixels + _chunk(b"IEND", b"")


def picture(fmt: str = "PNG", size: tuple[int, int] = (96, 80), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def noisy_jpeg() -> bytes:
    """A JPEG whose scan data is long enough to cut without touching its header."""
    buffer = io.BytesIO()
    Image.effect_noise((96, 80), 60).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def refusal(image: object) -> ApiError:
    with pytest.raises(ApiError) as refused:
        validate({**I2V, "image": image}, WAN)
    return refused.value


def test_a_169_megapixel_picture_is_refused_from_its_header_at_submit_and_in_the_worker() -> None:
    bomb = header_only_png(13000, 13000)  # the 164 KB PNG, without its 164 KB
    answer = refusal(b64(bomb))
    assert (answer.status, answer.code, answer.field) == (422, "invalid_field", "image")
    assert "megapixels" in answer.message and "13000x13000" in answer.message, answer.message
    with pytest.raises(GenerationError, match="megapixels"):
        decode_image(bomb, 64, 64)
    # Just over the cap is refused too; Pillow's own check would let it through.
    side = int(PIXELS_MAX**0.5) + 1
    assert "megapixels" in refusal(b64(header_only_png(side, side))).message


@pytest.mark.parametrize(
    ("image", "says"),
    [
        ("", "not a readable picture"),
        ("data:image/png;base64" + b64(picture()), "without a comma"),
        ("data:image/png;base64,", "not a readable picture"),
        (b64(b"plain text, not a picture"), "not a readable picture"),
        (b64(picture()[:200]), "truncated or damaged"),
        (b64(noisy_jpeg()[:-300]), "truncated or damaged"),
        (b64(picture("GIF")), "not a readable picture"),  # decodable, but not a format we take
        ("not base64!", "not valid base64"),
    ],
)
def test_an_image_the_worker_could_not_use_is_refused_at_submit(image: str, says: str) -> None:
    answer = refusal(image)
    assert (answer.status, answer.field) == (422, "image") and says in answer.message, answer.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_good_picture_is_accepted_as_base64_or_a_data_url(fmt: str) -> None:
    data = picture(fmt)
    assert validate({**I2V, "image": b64(data)}, WAN).image == data
    assert validate({**I2V, "image": f"data:image/{fmt.lower()};base64,{b64(data)}"}, WAN).image == data


def test_a_phone_photo_arrives_upright() -> None:
    """Stored 60x40, red on the left, with EXIF orientation 6 (turn 90 degrees clockwise to show):
    shown, it is 40x60 with red on top."""
    stored = Image.new("RGB", (60, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif, quality=95)
    assert decoded(buffer.getvalue()).size == (60, 40)  # the pixels as stored
    upright = decode_image(buffer.getvalue(), 40, 60)
    assert upright.size == (40, 60)
    top, bottom = upright.getpixel((20, 5)), upright.getpixel((20, 55))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def mangled(data: bytes, cut: int, at: int, byte: int) -> str:
    """A real picture cut short, with one byte changed: past the magic number, into the decoders."""
    data = data[:cut]
    if data:
        at %= len(data)
        data = data[:at] + bytes([byte]) + data[at + 1 :]
    return b64(data)


odd_images = st.one_of(
    st.binary(max_size=300).map(b64),
    st.text(max_size=60),
    st.builds("data:{},{}".format, st.text(max_size=30), st.binary(max_size=100).map(b64)),
    st.builds("data:{}".format, st.text(max_size=30)),
    st.builds(
        mangled,
        st.sampled_from([picture("PNG"), picture("JPEG"), picture("WEBP")]),
        st.integers(0, 2000),
        st.integers(0, 2000),
        st.integers(0, 255),
    ),
)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=odd_images)
def test_no_image_payload_breaks_submit(image: str) -> None:
    """Whatever the image field holds, submit answers a 4xx naming it or takes a picture the worker decodes."""
    try:
        spec = validate({**I2V, "image": image}, WAN)
    except ApiError as answer:
        assert 400 <= answer.status < 500 and answer.field == "image", answer.message
        return
    assert decode_image(spec.image, 64, 64).size == (64, 64)
