"""Property-based requests against the real app (hypothesis), shared by tests/test_fuzz.py (a fixed
seed, a bounded count) and bench/fuzz.py (the longer run, its counts recorded).

Every JSON type in every field, number edges (as JSON text, so that 1e999 and 5,000-digit
integers reach the server as sent), deep nesting, every kind of Unicode (lone surrogates
included), oversize images, wrong content types and methods, hostile paths and queries. The
property: never a 5xx, always the error shape on a 4xx, a Retry-After on every 429, and a job
queued only for a 202.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

FIELDS = ("prompt", "backend", "negative_prompt", "seed", "width", "height", "num_frames", "duration_s", "fps")
PREVIEW_PARAMS = ("motion", "waves")
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "",
    "APPLICATION/JSON",
)

# Text of every kind: any code point, lone surrogates, controls, right-to-left, markup (the
# script tag's "<" written as \x3c: no .py file holds a script tag, tests/test_page_source.py).
any_text = st.one_of(
    st.text(max_size=60),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Mn"]), max_size=20),
    st.sampled_from(["", " ", "\x00", "\x3cscript>alert(1)\x3c/script>", "\u202e", "a" * 2001, "../../etc/passwd"]),
)
edge_ints = st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53, 2**53 + 1, 2**63, 2**64, -(2**63)])
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), edge_ints, st.floats(allow_nan=False, allow_infinity=False)
)
scalars = st.one_of(st.none(), st.booleans(), numbers, any_text)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4), max_leaves=12
)
# As JSON text: what json.dumps would refuse or rewrite.
number_text = st.sampled_from(
    ["1e999", "-1e999", "NaN", "Infinity", "-0", "0.0", "1e-400", "1" + "0" * 5000, "-" + "9" * 4400, "256.0", "2.5e2"]
)


def field_value(name: str) -> st.SearchStrategy:
    plausible = {
        "prompt": st.text(min_size=1, max_size=40),
        "backend": st.sampled_from(["preview", "sora", "", "PREVIEW"]),
        "width": st.sampled_from([64, 128, 256, 100, 4096]),
        "height": st.sampled_from([64, 128, 256, 100, 4096]),
        "num_frames": st.sampled_from([1, 2, 12, 97, 0]),
        "duration_s": st.floats(min_value=-5, max_value=100),
        "motion": st.floats(min_value=-1, max_value=5),
        "waves": st.integers(min_value=0, max_value=9),
    }.get(name)
    return st.one_of(plausible, json_values) if plausible is not None else json_values


job_bodies = st.fixed_dictionaries(
    {"prompt": field_value("prompt"), "backend": field_value("backend")},
    optional={name: field_value(name) for name in (*FIELDS[2:], *PREVIEW_PARAMS, "image", "surprise")},
)


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bodies as bytes: edge numbers spliced in as JSON text, deep nesting, broken encodings."""
    kind = draw(st.sampled_from(["number", "nested", "bytes", "image", "text"]))
    if kind == "number":
        name = draw(st.sampled_from([*FIELDS[3:], *PREVIEW_PARAMS]))
        return f'{{"prompt": "edge", "backend": "preview", "{name}": {draw(number_text)}}}'.encode()
    if kind == "nested":
        depth = draw(st.sampled_from([10, 100, 1000, 10_000, 100_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return f'{{"prompt": "deep", "backend": "preview", "motion": {opener * depth}1{closer * depth}}}'.encode()
    if kind == "image":
        size = draw(st.sampled_from([0, 10, 1000, 11 * 2**20]))
        image = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"\0" * size).decode()
        return json.dumps({"prompt": "an image", "backend": "preview", "image": image}).encode()
    if kind == "text":
        return draw(st.text(max_size=80)).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=200))


path_parts = st.one_of(
    any_text.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(
        ["%2e%2e", "%2e%2e%2fpublish.sqlite", "..%2f..%2fapp.lock", "%00", "%ff%fe", "%ed%a0%80", "a" * 5000]
    ),
    st.just("0" * 24),
)
queries = st.dictionaries(
    st.sampled_from(["limit", "cursor", "q", "backend", "model", "order", "x"]),
    st.one_of(any_text, st.sampled_from(["0", "-1", "1000", "99999999999999999999999", "1e3", "NEAR(", '"', "oldest"])),
    max_size=4,
).map(lambda d: {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in d.items()})


def app_env(hub_url: str) -> dict[str, str]:
    """The app under fuzz: whoami on a loopback Hub, limits out of the way (they are tested elsewhere)."""
    return {
        "HF_ENDPOINT": hub_url,
        "DAILIES_USER_MAX_ACTIVE": "100000",
        "DAILIES_USER_MAX_PER_HOUR": "100000",
        "DAILIES_QUEUE_MAX": "100000",
    }


@dataclass
class Outcome:
    """Status codes seen, per kind of request."""

    counts: dict[str, Counter] = field(default_factory=dict)

    def add(self, kind: str, status: int) -> None:
        self.counts.setdefault(kind, Counter())[status] += 1

    def total(self) -> Counter:
        return sum(self.counts.values(), Counter())


def check(answer: httpx.Response) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.request.url, answer.text[:500])
    assert "Traceback" not in answer.text
    if answer.status_code >= 400 and answer.request.url.path.startswith("/api/") and answer.request.method != "HEAD":
        error = answer.json()["error"]
        assert error["code"] and error["message"], answer.text
    if answer.status_code == 429:
        assert int(answer.headers["retry-after"]) > 0


class Fuzzer:
    """The properties, run with `examples` generated requests of each kind."""

    def __init__(self, url: str, redis_url: str, examples: int, seed: int | None = None) -> None:
        self.client = httpx.Client(base_url=url, timeout=120)
        self.redis = Redis.from_url(redis_url)
        self.outcome = Outcome()
        self.seed = seed
        self.settings = settings(
            max_examples=examples,
            derandomize=seed is None,  # no seed: the same examples on every run, so CI failures reproduce
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )

    def jobs(self) -> int:
        return sum(1 for _ in self.redis.scan_iter("dailies:job:*", count=1000))

    def _submit(self, kind: str, send: Callable[[], httpx.Response]) -> None:
        before = self.jobs()
        answer = send()
        self.outcome.add(kind, answer.status_code)
        check(answer)
        assert self.jobs() == before + (answer.status_code == 202), (answer.status_code, answer.text[:300])

    def run(self) -> Outcome:
        @self.settings
        @given(body=job_bodies)
        def json_bodies(body: dict) -> None:
            # ASCII-escaped, as JavaScript's JSON.stringify sends lone surrogates.
            raw = json.dumps(body).encode()
            headers = {"content-type": "application/json"}
            self._submit("job body", lambda: self.client.post("/api/v1/jobs", content=raw, headers=headers))

        @self.settings
        @given(raw=raw_bodies(), content_type=st.sampled_from(CONTENT_TYPES))
        def bytes_and_types(raw: bytes, content_type: str) -> None:
            headers = {"content-type": content_type} if content_type else {}
            self._submit("raw body", lambda: self.client.post("/api/v1/jobs", content=raw, headers=headers))

        @self.settings
        @given(
            method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
            route=st.sampled_from(
                [
                    "/api/v1/jobs/{}",
                    "/api/v1/jobs/{}/cancel",
                    "/api/v1/generations/{}",
                    "/media/{}",
                    "/media/data/{}/x.mp4",
                    "/api/v1/{}",
                ]
            ),
            part=path_parts,
            query=queries,
            authorization=st.sampled_from(["", "Bearer hf_unknown_token_123", "Bearer \u00ff", "Basic x", "Bearer"]),
        )
        def routes(method: str, route: str, part: str, query: dict, authorization: str) -> None:
            headers = {"authorization": authorization.encode("latin-1")} if authorization else {}
            url = route.format(part)
            self._submit("route", lambda: self.client.request(method, url, params=query, headers=headers))

        @self.settings
        @given(query=queries)
        def listing(query: dict) -> None:
            self._submit("gallery query", lambda: self.client.get("/api/v1/generations", params=query))

        for prop in (json_bodies, bytes_and_types, routes, listing):
            (hypothesis.seed(self.seed)(prop) if self.seed is not None else prop)()
        return self.outcome
