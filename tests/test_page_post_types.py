"""The page's own submit route takes JSON only, as the README says: "a `text/plain` post to
`/gradio_api/call/submit` gets 422 and queues nothing" (a form on another site can send
text/plain without asking the browser)."""

from __future__ import annotations

import json

import pytest
from redis import Redis

from tests.conftest import App, wait_for

# /submit's inputs as gradio_client sends them (tests/test_gradio_client.py): prompt, negative
# prompt, backend, duration, width, height, random seed, seed, tracked jobs, backends to compare, image.
DATA = ["a harbour seen from another site", "", "preview", 1.0, 128, 128, False, 21, [], [], None]
ROUTE = "/gradio_api/call/submit"


def jobs(app: App) -> set[bytes]:
    return set(Redis.from_url(app.redis_url).keys("dailies:job:*"))


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8"])
def test_a_text_plain_post_to_the_page_submit_route_is_refused_and_queues_nothing(
    shared_app: App, content_type: str
) -> None:
    before = jobs(shared_app)
    body = json.dumps({"data": DATA}).encode()
    answer = shared_app.client.post(ROUTE, content=body, headers={"content-type": content_type})
    assert answer.status_code == 422, answer.text
    assert "event_id" not in answer.text
    # The same body as JSON is taken and queues one job, so the refusal above is the type's doing.
    taken = shared_app.client.post(ROUTE, content=body, headers={"content-type": "application/json"})
    assert taken.status_code == 200 and "event_id" in taken.json(), taken.text
    with shared_app.client.stream("GET", f"{ROUTE}/{taken.json()['event_id']}") as events:
        "".join(events.iter_text())  # the event runs; its answer is read to the end
    new = wait_for(lambda: jobs(shared_app) - before, what="the JSON submission's job")
    assert len(new) == 1
