"""A job's cancel and retry belong to the visitor who made it (issue 20): through the JSON API,
the page's /cancel endpoint and the job cards, against the real app, worker and Redis. Reading
stays open to everyone, and healthz names no job."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page, expect
from redis import Redis

from dailies.app.visitor_cookie import COOKIE, VALUE
from dailies.contract import keys
from tests.conftest import ROOT, App, Processes, start_app, wait_for
from tests.hosted_servers import HostedServer, worker_env
from tests.hub_server import HubServer

# A preview job this slow is still running (cancellable) for the whole test.
SLOW = {"DAILIES_PREVIEW_PACE": "30"}
ROOMY = {"DAILIES_USER_MAX_ACTIVE": "50", "DAILIES_USER_MAX_PER_HOUR": "1000"}


@pytest.fixture
def slow_app(processes: Processes, tmp_path: Path, redis_url: str) -> App:
    processes.worker(redis_url, **SLOW)
    return start_app(processes, tmp_path, redis_url, **ROOMY)


def other(app: App) -> httpx.Client:
    """Another visitor on the same address: a cookie jar of its own."""
    return httpx.Client(base_url=app.url, timeout=30)


def unknown_body(job_id: str) -> dict:
    """What cancelling a job that does not exist answers: others get exactly this."""
    return {"error": {"code": "not_found", "message": f"no job {job_id!r}", "field": None}}


def page_cancel(client: httpx.Client, job_id: str) -> dict:
    """The page's own /cancel endpoint, as gradio_client calls it."""
    answer = client.post("/gradio_api/run/cancel", json={"data": [job_id]})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"][0]


def owner_of(redis: Redis, job_id: str) -> str | None:
    value = redis.hget(keys.job(job_id), "owner")
    return value.decode() if value else None


def test_only_the_owner_cancels_through_the_api_and_the_page_endpoint(slow_app: App, redis: Redis) -> None:
    mine = slow_app.submit(prompt="my slow sunrise", backend="preview").json()["id"]
    queued = slow_app.submit(prompt="my queued one", backend="preview").json()["id"]
    wait_for(lambda: slow_app.client.get(f"/api/v1/jobs/{mine}").json()["status"] == "running", what="running")
    cookie = slow_app.client.cookies[COOKIE]
    assert owner_of(redis, mine) == f"cookie:{hashlib.sha256(cookie.encode()).hexdigest()}"
    assert cookie not in json.dumps({k.decode(): v.decode() for k, v in redis.hgetall(keys.job(mine)).items()})

    with other(slow_app) as stranger:
        for job_id in (mine, queued):
            answer = stranger.post(f"/api/v1/jobs/{job_id}/cancel")
            assert (answer.status_code, answer.json()) == (404, unknown_body(job_id))
            assert page_cancel(stranger, job_id) == unknown_body(job_id)
            # A client that keeps no cookie at all is a stranger too.
            assert httpx.post(f"{slow_app.url}/api/v1/jobs/{job_id}/cancel").status_code == 404
            # Reading stays open to everyone.
            assert stranger.get(f"/api/v1/jobs/{job_id}").json()["status"] in ("running", "queued")
        with stranger.stream("GET", f"/api/v1/jobs/{mine}/events") as events:
            assert next(events.iter_lines()) == "event: status"
        assert not redis.exists(keys.cancel(mine))

    assert slow_app.client.post(f"/api/v1/jobs/{queued}/cancel").json()["status"] == "canceled"
    assert page_cancel(slow_app.client, mine)["status"] == "canceling"
    assert slow_app.wait_done(mine)["status"] == "canceled"


def test_a_comparison_and_its_jobs_belong_to_who_made_it(
    processes: Processes, tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    with HostedServer() as hosted:
        processes.worker(redis_url, backends="preview,openai-videos", **worker_env(hosted), **SLOW)
        app = start_app(processes, tmp_path, redis_url, **ROOMY)
        answer = app.client.post("/api/v1/jobs", json={"prompt": "both ways", "backends": ["preview", "openai-videos"]})
        assert answer.status_code == 202, answer.text
        group, ids = answer.json()["group"], [j["id"] for j in answer.json()["jobs"]]
        cookie = app.client.cookies[COOKIE]
        owner = f"cookie:{hashlib.sha256(cookie.encode()).hexdigest()}"
        assert redis.hget(keys.group(group), "owner").decode() == owner
        assert [owner_of(redis, j) for j in ids] == [owner, owner]
        with other(app) as stranger:
            assert stranger.get(f"/api/v1/groups/{group}").json()["id"] == group  # reading stays open
            for job_id in ids:
                assert stranger.post(f"/api/v1/jobs/{job_id}/cancel").json() == unknown_body(job_id)
        for job_id in ids:
            assert app.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code in (202, 409)  # 409: it ended


def test_a_signed_in_job_belongs_to_the_hub_user_not_to_a_cookie(
    processes: Processes, tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    with HubServer() as hub:
        processes.worker(redis_url, **SLOW)
        app = start_app(processes, tmp_path, redis_url, HF_ENDPOINT=hub.url, **ROOMY)
        token = {"Authorization": f"Bearer {hub.token}"}
        job_id = app.client.post("/api/v1/jobs", json={"prompt": "signed", "backend": "preview"}, headers=token)
        job_id = job_id.json()["id"]
        assert owner_of(redis, job_id) == "hf:dailies-test"
        # The cookie of the client that sent the token is not who owns it...
        assert app.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
        # ...the token is, from any cookie jar.
        with other(app) as elsewhere:
            assert elsewhere.post(f"/api/v1/jobs/{job_id}/cancel", headers=token).status_code == 202


def test_a_job_queued_before_owners_is_no_ones_to_cancel_and_still_runs(app: App, redis: Redis) -> None:
    saved = json.loads((ROOT / "tests" / "data" / "queued_before_upgrade.json").read_text())
    assert "owner" not in saved["record"]
    job_id = "0190a0b0c0d0e0f000000001"
    # Cookies first, so the job cannot be picked up before both visitors have tried.
    with other(app) as stranger:
        for client in (app.client, stranger):
            client.get("/api/v1/backends")
        redis.hset(f"rq:job:{job_id}", mapping={k: base64.b64decode(v) for k, v in saved["rq_job"].items()})
        redis.hset(keys.job(job_id), mapping={**saved["record"], "created": time.time()})
        redis.rpush("rq:queue:dailies:preview", job_id)
        for client in (app.client, stranger):
            answer = client.post(f"/api/v1/jobs/{job_id}/cancel")
            assert (answer.status_code, answer.json()) == (404, unknown_body(job_id))
    assert app.wait_done(job_id)["status"] == "succeeded"
    assert app.client.get(f"/api/v1/jobs/{job_id}").json()["request"]["seed"] == 1234


def test_healthz_names_no_job(slow_app: App, redis: Redis) -> None:
    ids = [slow_app.submit(prompt=f"job {i}", backend="preview").json()["id"] for i in range(3)]
    wait_for(lambda: slow_app.client.get(f"/api/v1/jobs/{ids[0]}").json()["status"] == "running", what="running")
    # Every job id Redis knows (RQ's too), while one of them runs.
    known = {k.decode().rsplit(":", 1)[1] for k in redis.scan_iter("rq:job:*")} | set(ids)
    # What a worker does (busy), not which job: asked until healthz's brief cache shows it busy.
    health = wait_for(
        lambda: (h := slow_app.client.get("/api/v1/healthz").json())["workers"][0]["state"] == "busy" and h,
        what="a busy worker in healthz",
    )
    assert [j for j in known if j in json.dumps(health)] == []
    for job_id in ids:
        slow_app.client.post(f"/api/v1/jobs/{job_id}/cancel")


# Made-up cookie values: garbage and unicode, well-formed but someone else's, and huge.
COOKIE_VALUES = st.one_of(
    # Stripped: no client can send a header value that ends in a space (h11 refuses to).
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=200).map(str.strip),
    st.text("abcdefABCDEF0123456789_-", min_size=43, max_size=43),
    st.integers(4_000, 12_000).map(lambda n: "x" * n),
)


def test_made_up_cookies_never_fail_and_never_own(slow_app: App) -> None:
    job_id = slow_app.submit(prompt="not yours", backend="preview").json()["id"]

    @given(value=COOKIE_VALUES, pairs=st.sampled_from(["{}", "{}; {}", "a=b; {}", "{}; a=b"]))
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def cancel_with(value: str, pairs: str) -> None:
        header = {"cookie": pairs.format(f"{COOKIE}={value}", f"{COOKIE}={value}").encode()}
        with httpx.Client(base_url=slow_app.url, timeout=30) as client:
            answer = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=header)
            assert (answer.status_code, answer.json()) == (404, unknown_body(job_id))
            minted = answer.cookies.get(COOKIE)  # a malformed cookie is replaced by a fresh one
            assert minted is None or (VALUE.fullmatch(minted) and minted != value)
            page = client.post("/gradio_api/run/cancel", json={"data": [job_id]}, headers=header)
            assert page.status_code == 200 and page.json()["data"][0] == unknown_body(job_id)
            assert client.get(f"/api/v1/jobs/{job_id}", headers=header).status_code == 200

    cancel_with()
    assert slow_app.client.get(f"/api/v1/jobs/{job_id}").json()["status"] in ("queued", "running")
    assert slow_app.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202  # its owner can


def forge_card(page: Page, job_id: str) -> None:
    """Make the page show a card for a job that is not the visitor's (the browser is the attacker's)."""
    page.locator("#jobs ul.dailies-jobs").evaluate("(list, id) => { list.dataset.ids = id; }", job_id)


@pytest.mark.browser
def test_another_browser_cannot_cancel_or_retry_a_job_from_its_page(
    slow_app: App, browser: Browser, redis: Redis
) -> None:
    owner, stranger = browser.new_context(), browser.new_context()
    try:
        mine, theirs = owner.new_page(), stranger.new_page()
        # The owner's first response is https-flavoured (as behind the Spaces proxy): the cookie is
        # `SameSite=None; Secure; Partitioned`, which Chromium must keep and send on http://127.0.0.1.
        https = f"{slow_app.url}/api/v1/backends"
        proxied = {"x-forwarded-proto": "https"}
        mine.route(https, lambda route: route.continue_(headers={**route.request.headers, **proxied}))
        mine.goto(https)
        mine.unroute(https)
        (kept,) = [c for c in owner.cookies() if c["name"] == COOKIE]
        assert kept["secure"] and kept["httpOnly"] and kept["sameSite"] == "None", kept
        mine.goto(slow_app.url)
        mine.locator("#prompt textarea").fill("only mine to stop")
        mine.locator("#submit").click()
        card = mine.locator("#jobs li.dailies-job").first
        expect(card).to_have_attribute("data-status", "running")
        job_id = card.get_attribute("data-id")
        # The page's submit carried the cookie Chromium kept from the first response.
        assert owner_of(redis, job_id) == f"cookie:{hashlib.sha256(kept['value'].encode()).hexdigest()}"
        assert [c["value"] for c in owner.cookies() if c["name"] == COOKIE] == [kept["value"]]

        theirs.goto(slow_app.url)
        forge_card(theirs, job_id)
        forged = theirs.locator(f'#jobs li.dailies-job[data-id="{job_id}"]')
        forged.get_by_role("button", name="Cancel").click()
        expect(theirs.locator("#submit-error")).to_contain_text(f"no job '{job_id}'")  # the event answered
        assert slow_app.client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "running"
        assert not redis.exists(keys.cancel(job_id))

        card.get_by_role("button", name="Cancel").click()
        expect(card).to_have_attribute("data-status", "canceled")

        jobs_before = len(list(redis.scan_iter("dailies:job:*")))
        theirs.reload()  # the error line empty again, so that the next one is the Retry's answer
        forge_card(theirs, job_id)
        forged.get_by_role("button", name="Retry").click()
        expect(theirs.locator("#submit-error")).to_contain_text(f"no job '{job_id}'")
        assert len(list(redis.scan_iter("dailies:job:*"))) == jobs_before  # nothing was queued for them

        card.get_by_role("button", name="Retry").click()
        again = mine.locator("#jobs li.dailies-job").first
        expect(again).not_to_have_attribute("data-id", job_id)
        retried = again.get_attribute("data-id")
        assert owner_of(redis, retried) == owner_of(redis, job_id)
        assert slow_app.client.post(f"/api/v1/jobs/{retried}/cancel").status_code == 404  # not the browser's cookie
        assert slow_app.client.get(f"/api/v1/jobs/{retried}").json()["status"] in ("queued", "running")
        again.get_by_role("button", name="Cancel").click()
        expect(again).to_have_attribute("data-status", "canceled")
    finally:
        owner.close()
        stranger.close()
