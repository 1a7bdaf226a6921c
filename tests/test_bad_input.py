"""Bad input gets a 4xx with the error shape and queues nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

import backends
from dailies.app.groups import snapped_body, within_reach
from dailies.contract.settings import Settings
from tests.conftest import App
from tests.harness import ROOT, base_env

GOOD = {"prompt": "a quiet harbour", "backend": "preview"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**GOOD, "prompt": ""}, 422, "prompt"),
        ({**GOOD, "prompt": "   \n "}, 422, "prompt"),
        ({"backend": "preview"}, 422, "prompt"),
        ({**GOOD, "prompt": "x" * 2001}, 422, "prompt"),
        ({**GOOD, "prompt": 42}, 422, "prompt"),
        ({**GOOD, "prompt": ["a", "b"]}, 422, "prompt"),
        ({**GOOD, "prompt": "nul\x00byte"}, 422, "prompt"),
        ({**GOOD, "backend": "sora"}, 422, "backend"),
        ({**GOOD, "backend": None}, 422, "backend"),
        ({**GOOD, "seed": -1}, 422, "seed"),
        ({**GOOD, "seed": 2**32}, 422, "seed"),
        ({**GOOD, "seed": "7"}, 422, "seed"),
        ({**GOOD, "seed": 1.5}, 422, "seed"),
        ({**GOOD, "seed": True}, 422, "seed"),
        ({**GOOD, "width": 100}, 422, "width"),
        ({**GOOD, "width": 4096}, 422, "width"),
        ({**GOOD, "height": "256"}, 422, "height"),
        ({**GOOD, "num_frames": 0}, 422, "num_frames"),
        ({**GOOD, "num_frames": 97}, 422, "num_frames"),
        ({**GOOD, "duration_s": -1}, 422, "duration_s"),
        ({**GOOD, "duration_s": 60}, 422, "duration_s"),
        ({**GOOD, "duration_s": 1, "num_frames": 12}, 422, "duration_s"),
        ({**GOOD, "fps": 120}, 422, "fps"),
        ({**GOOD, "waves": 0}, 422, "waves"),
        ({**GOOD, "waves": "many"}, 422, "waves"),
        ({**GOOD, "motion": 5}, 422, "motion"),
        ({**GOOD, "negative_prompt": "blurry"}, 422, "negative_prompt"),
        ({**GOOD, "image": "not base64!"}, 422, "image"),
        ({**GOOD, "surprise": 1}, 422, "surprise"),
    ],
)
def test_bad_field_is_refused_and_nothing_is_queued(shared_app: App, body: dict, status: int, field: str) -> None:
    assert_refused(shared_app, status, field, json=body)


def assert_refused(app: App, status: int, field: str | None, **request) -> None:
    """POST /api/v1/jobs, expect the error, and check that no job was queued or recorded."""
    redis = Redis.from_url(app.redis_url)
    before = set(redis.keys("dailies:job:*"))
    answer = app.client.post("/api/v1/jobs", **request)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and error["code"] and error["message"]
    assert "Traceback" not in answer.text
    assert redis.llen("rq:queue:dailies:preview") == 0
    assert set(redis.keys("dailies:job:*")) == before


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"", 400, None),
        (b"\xff\xfe", 400, None),
        (b'"just a string"', 400, None),
        (b"[1, 2]", 400, None),
        (b"null", 400, None),
        (b'{"prompt": "a", "backend": "preview", "motion": 1e999}', 422, "motion"),
        (b'{"prompt": "a", "backend": "preview", "motion": NaN}', 422, "motion"),
        # Bodies that once got a 500 or broke the collector: text the dataset cannot store,
        # numbers past what floats carry, nesting deeper than the parser's stack.
        (b'{"prompt": "a \\ud800", "backend": "preview"}', 422, "prompt"),
        (b'{"prompt": "a", "backend": "preview", "negative_prompt": "\\udfff"}', 422, "negative_prompt"),
        (b'{"prompt": "a", "backend": "preview", "\\ud800": 1}', 422, "\ud800"),
        (b'{"prompt": "a", "backend": "preview", "width": 1' + b"0" * 400 + b"}", 422, "width"),
        (b'{"prompt": "a", "backend": "preview", "num_frames": 1' + b"0" * 30 + b"}", 422, "num_frames"),
        (b'{"prompt": "a", "backend": "preview", "duration_s": 1e308}', 422, "duration_s"),
        (b'{"prompt": "a", "backend": "preview", "seed": 1' + b"0" * 5000 + b"}", 400, None),
        (b'{"prompt": "a", "backend": "preview", "motion": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, None),
        (b'{"prompt": "a", "backend": "preview", "motion": [[[[[[1]]]]]]}', 422, "motion"),
    ],
)
def test_malformed_body(shared_app: App, raw: bytes, status: int, field: str | None) -> None:
    assert_refused(shared_app, status, field, content=raw, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", None],
)
def test_only_json_is_accepted(shared_app: App, content_type: str | None) -> None:
    """A cross-site form can send these without asking the browser: none may queue a job."""
    headers = {"content-type": content_type} if content_type else {}
    assert_refused(shared_app, 415, None, content=b'{"prompt": "a harbour", "backend": "preview"}', headers=headers)
    # Sent in chunks (no length), still not JSON by its type.
    chunks = iter([b'{"prompt": "a harbour", ', b'"backend": "preview"}'])
    assert_refused(shared_app, 415, None, content=chunks, headers=headers)


def test_oversized_body(shared_app: App) -> None:
    body = b'{"prompt": "' + b"a" * (17 * 2**20) + b'"}'
    assert_refused(shared_app, 413, None, content=body, headers={"content-type": "application/json"})


def test_bad_paging_parameters(shared_app: App) -> None:
    app = shared_app
    for params in ({"limit": 0}, {"limit": 1000}, {"limit": "ten"}):
        answer = app.client.get("/api/v1/generations", params=params)
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "limit"
    for order in ("", "random", "NEWEST", "newest; DROP TABLE generations"):
        answer = app.client.get("/api/v1/generations", params={"order": order})
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "order"
    # Search syntax is text, not FTS5 query language.
    for q in ('"', "NEAR(", "a OR", "*", "-x", "prompt:foo"):
        assert app.client.get("/api/v1/generations", params={"q": q}).status_code == 200


def test_prompt_is_kept_as_text(shared_app: App) -> None:
    app = shared_app
    prompt = '<img src=x onerror="alert(1)"> & </textarea>'
    job = app.submit(prompt=prompt, backend="preview", num_frames=2).json()
    assert app.wait_done(job["id"])["request"]["prompt"] == prompt
    assert app.client.get(f"/api/v1/generations/{job['id']}").json()["prompt"] == prompt


# A comparison is checked with a single job's rules before its values are snapped to each
# backend's: these once answered 500 (snapping overflowed) or were quietly clamped to a limit.
# Wan has no worker here: a value checked after the backends' availability would answer 503.
@pytest.mark.parametrize(
    ("field", "number"),
    [
        ("width", "1e308"),
        ("width", "1" + "0" * 400),
        ("width", "Infinity"),
        ("width", "100000"),
        ("width", "70.5"),
        ("height", "1" + "0" * 309),
        ("height", "NaN"),
        ("height", "0"),
        ("duration_s", "1e308"),
        ("duration_s", "1e300"),
        ("duration_s", "Infinity"),
        ("duration_s", "NaN"),
        ("duration_s", "1e10"),
        ("duration_s", "-1"),
        ("fps", "-1" + "0" * 30),
        ("fps", "0"),
        ("fps", "1e308"),
    ],
)
def test_a_comparison_refuses_what_a_single_job_refuses_before_snapping(
    shared_app: App, field: str, number: str
) -> None:
    raw = f'{{"prompt": "a dog", "backends": ["preview", "wan"], "{field}": {number}}}'.encode()
    assert_refused(shared_app, 422, field, content=raw, headers={"content-type": "application/json"})


def test_a_comparison_keeps_the_retry_after_of_a_backend_that_is_unavailable(shared_app: App) -> None:
    """Mochi has no worker here: the comparison answers as the single job does, with when to try again."""
    single = shared_app.submit(prompt="a dog", backend="mochi")
    assert single.status_code == 503 and int(single.headers["retry-after"]) > 0
    answer = shared_app.client.post("/api/v1/jobs", json={"prompt": "a dog", "backends": ["preview", "mochi"]})
    assert answer.status_code == 503 and answer.headers.get("retry-after") == single.headers["retry-after"]
    assert answer.json()["error"]["field"] == "backend"


def test_a_comparison_still_snaps_what_is_in_reach() -> None:
    """What the check lets through: a size and length some backend of the group takes, on none of their grids."""
    chosen = [backends.get(n, Settings.from_env({})) for n in ("preview", "ltx-video", "wan")]
    body = {"prompt": "a dog", "width": 70, "height": 64, "duration_s": 1.0, "fps": 13}
    within_reach(body, chosen)
    assert [(b["width"], b["fps"]) for b in (snapped_body(body, c) for c in chosen)] == [(64, 13), (64, 24), (64, 16)]


@pytest.mark.parametrize(
    ("script", "variable", "value"),
    [
        ("worker.py", "DAILIES_MEMORY_MODE", "all-of-it"),
        ("worker.py", "DAILIES_MODEL_MEMORY_GB", "lots"),
        ("worker.py", "DAILIES_MODEL_MEMORY_GB", "-2"),
        ("worker.py", "DAILIES_MODEL_COGVIDEO", "THUDM/CogVideoX-5b"),  # a typo of DAILIES_MODEL_COGVIDEOX
        ("worker.py", "DAILIES_MODEL_MOCHI_I2V", "genmo/mochi-1-preview"),  # Mochi does no image-to-video
        ("app.py", "DAILIES_MEMORY_MODE", "all-of-it"),
    ],
)
def test_bad_setting_stops_the_process_at_start_naming_it(
    redis_url: str, tmp_path: Path, script: str, variable: str, value: str
) -> None:
    env = base_env(REDIS_URL=redis_url, DAILIES_DATA=str(tmp_path), **{variable: value})
    workers_before = set(Redis.from_url(redis_url).keys("rq:worker:*"))  # other tests' workers share this Redis
    done = subprocess.run(
        [sys.executable, script, *(["--backends", "preview", "--burst"] if script == "worker.py" else [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and variable in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not set(Redis.from_url(redis_url).keys("rq:worker:*")) - workers_before, "a worker registered"
