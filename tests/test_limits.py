"""Per-visitor limits, the queue cap and sign-in, against the real app, Redis and the loopback Hub.

The worker is paused (SIGSTOP) while submissions race, so every accepted job stays queued and
the counts cannot depend on timing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from dailies.contract import keys
from tests.conftest import App, Processes, start_app
from tests.harness import paused
from tests.hub_server import HubServer

BODY = {"prompt": "a crowd at the gate", "backend": "preview"}


def burst(app: App, n: int, headers: list[dict[str, str]] | None = None) -> list[httpx.Response]:
    """`n` submissions released together from `n` threads, each on its own connection, all with
    the app client's visitor cookie (so that it may cancel what they queued)."""
    gate = threading.Barrier(n)
    answers: list[httpx.Response] = [None] * n  # type: ignore[list-item]

    def one(i: int) -> None:
        with httpx.Client(base_url=app.url, timeout=60, cookies=app.client.cookies) as client:
            gate.wait()
            answers[i] = client.post("/api/v1/jobs", json=BODY, headers=(headers or [{}] * n)[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def assert_says_when(answer: httpx.Response, code: str) -> int:
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    wait = int(answer.headers["retry-after"])
    assert error["code"] == code and wait > 0
    assert f"{wait} s" in error["message"] or f"{wait // 60} min" in error["message"], error["message"]
    return wait


def test_thirty_at_once_with_a_limit_of_two_accept_exactly_two(
    processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    worker = processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="2")
    with paused(worker):
        answers = burst(app, 30)
        assert Counter(a.status_code for a in answers) == {202: 2, 429: 28}
        for answer in answers:
            if answer.status_code == 429:
                assert assert_says_when(answer, "too_many_jobs") == 30
        redis = Redis.from_url(redis_url)
        assert len(redis.keys("dailies:job:*")) == 2
        # Cancelling a queued one frees its slot at once. (The paused worker may hold the other:
        # its blocking pop was answered by Redis before the pause.)
        waiting = redis.lrange("rq:queue:dailies:preview", 0, -1)[0].decode()
        assert app.client.post(f"/api/v1/jobs/{waiting}/cancel").json()["status"] == "canceled"
        assert app.submit(**BODY).status_code == 202
        assert app.submit(**BODY).status_code == 429


def test_queue_cap_holds_across_visitors(processes: Processes, tmp_path: Path, redis_url: str) -> None:
    worker = processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, DAILIES_QUEUE_MAX="3", DAILIES_TRUST_FORWARDED="1")
    with paused(worker):
        answers = burst(app, 20, [{"x-forwarded-for": f"203.0.113.{i}"} for i in range(20)])
        assert Counter(a.status_code for a in answers) == {202: 3, 429: 17}
        assert all(assert_says_when(a, "queue_full") == 60 for a in answers if a.status_code == 429)


def test_hourly_limit_says_when_the_next_is_possible(processes: Processes, tmp_path: Path, redis_url: str) -> None:
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_PER_HOUR="2", DAILIES_TRUST_FORWARDED="1")
    for _ in range(2):
        job = app.submit(**BODY, num_frames=1, width=64, height=64).json()
        assert app.wait_done(job["id"])["status"] == "succeeded"
    wait = assert_says_when(app.submit(**BODY), "hourly_limit")
    assert 3500 < wait <= 3600
    # Another address has its own count.
    answer = app.client.post("/api/v1/jobs", json=BODY, headers={"x-forwarded-for": "198.51.100.7"})
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("hops", ["0", "1"])
def test_a_client_written_forwarded_address_dodges_no_limit(
    processes: Processes, tmp_path: Path, redis_url: str, hops: str
) -> None:
    """Six submissions, each naming another address in front of what the proxy appended, against a
    limit of three: behind one proxy they count as its entry (the right-most); with no proxy
    trusted as the connection's own address (uvicorn's forwarded handling is off too)."""
    worker = processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="3", DAILIES_TRUST_FORWARDED=hops)
    with paused(worker):
        spoofed = [{"x-forwarded-for": f"203.0.113.{i}, 198.51.100.7"} for i in range(6)]
        assert Counter(a.status_code for a in burst(app, 6, spoofed)) == {202: 3, 429: 3}
        # What the proxy appended is the address: another one has its own count (0 hops: the same).
        other = app.client.post("/api/v1/jobs", json=BODY, headers={"x-forwarded-for": "203.0.113.9, 192.0.2.1"})
        assert other.status_code == (202 if hops == "1" else 429), other.text


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.users = {"hf_alice_token_1": "Alice", "hf_bob_token_22": "bob"}
        yield server


def test_signed_in_visitors_by_bearer_token(
    processes: Processes, tmp_path: Path, redis_url: str, hub: HubServer
) -> None:
    worker = processes.worker(redis_url)
    app = start_app(
        processes,
        tmp_path,
        redis_url,
        HF_ENDPOINT=hub.url,
        DAILIES_USER_MAX_ACTIVE="1",
        DAILIES_SIGNED_IN_MAX_ACTIVE="3",
        DAILIES_EXEMPT_USERS="Bob",
    )
    alice = {"authorization": "Bearer hf_alice_token_1"}
    with paused(worker):
        assert Counter(app.client.post("/api/v1/jobs", json=BODY, headers=alice).status_code for _ in range(4)) == {
            202: 3,
            429: 1,
        }
        # Anonymous from the same address: its own, smaller count.
        assert [app.submit(**BODY).status_code for _ in range(2)] == [202, 429]
        # An exempt user is not limited (names compare without case).
        bob = {"authorization": "Bearer hf_bob_token_22"}
        assert {app.client.post("/api/v1/jobs", json=BODY, headers=bob).status_code for _ in range(6)} == {202}
        for bad in ("Bearer hf_not_a_known_token", "Bearer x", "Basic aGk6aGk=", "Bearer hf_\u00e9\u00e9\u00e9\u00e9"):
            answer = app.client.post("/api/v1/jobs", json=BODY, headers={"authorization": bad.encode()})
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_token", bad
    # whoami is cached: one Hub call per token, however many submissions.
    asked = [p for _, p in hub.requests if p == "/api/whoami-v2"]
    assert len(asked) == 3  # alice, bob, and the unknown token once
    # The token is never kept in Redis.
    redis = Redis.from_url(redis_url)
    for key in redis.keys("*"):
        assert b"hf_alice_token_1" not in (redis.dump(key) or b"")  # a key may expire meanwhile


def test_sign_in_required_for_a_backend(processes: Processes, tmp_path: Path, redis_url: str, hub: HubServer) -> None:
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, HF_ENDPOINT=hub.url, DAILIES_SIGN_IN_REQUIRED="preview")
    refused = app.submit(**BODY)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "sign_in_required"
    assert "sign in" in refused.json()["error"]["message"]
    answer = app.client.post("/api/v1/jobs", json=BODY, headers={"authorization": "Bearer hf_alice_token_1"})
    assert answer.status_code == 202, answer.text


@pytest.mark.browser
def test_the_page_offers_sign_in_and_says_when_it_is_needed(
    processes: Processes, tmp_path: Path, redis_url: str, hub: HubServer, browser
) -> None:
    """Where the Space enables OAuth (OAUTH_CLIENT_ID set) the page has a sign-in button. Off a
    Space, Gradio's own stand-in signs in as the owner of HF_TOKEN (the real redirect to the Hub
    cannot run here), so the signed-in path is exercised too."""
    processes.worker(redis_url)
    app = start_app(
        processes,
        tmp_path,
        redis_url,
        HF_ENDPOINT=hub.url,
        HF_TOKEN="hf_alice_token_1",
        OAUTH_CLIENT_ID="dailies-test-client",
        DAILIES_SIGN_IN_REQUIRED="preview",
    )
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app.url)
    button = page.locator("#sign-in")
    expect(button).to_contain_text("Sign in with Hugging Face")
    page.locator("#prompt textarea").fill("a locked gate")
    page.locator("#submit").click()
    expect(page.locator("#submit-error")).to_contain_text("sign in with Hugging Face to use Preview")

    page.goto(f"{app.url}/login/huggingface")
    page.goto(app.url)
    expect(page.locator("#sign-in")).to_contain_text("Alice")
    page.locator("#prompt textarea").fill("an open gate")
    page.locator("#submit").click()
    job = page.locator("#jobs li.dailies-job").first
    expect(job).to_have_attribute("data-status", "succeeded", timeout=60_000)
    # Counted as the signed-in user, not the address.
    assert Redis.from_url(redis_url).exists(keys.active("hf:alice"))
    context.close()
