"""The gallery in a real browser: poster grid, hover to play, search, detail view, share link."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Processes, start_app, wait_for
from tests.hub_server import HubServer
from tests.test_hub import generate, hub_env, remote_ids

pytestmark = [pytest.mark.hub, pytest.mark.browser]


def test_gallery_grid_hover_search_detail_and_share_link(
    browser, processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    with HubServer() as hub:
        processes.worker(redis_url)
        app = start_app(processes, tmp_path, redis_url, **hub_env(hub, every=0.2))
        ids = generate(app, ["a crane over the harbour", "a heron in the reeds", "a crane at night"])
        wait_for(lambda: len(remote_ids(hub)) == 3, 60, what="the rows on the Hub")

        page = browser.new_page()
        page.goto(app.url)
        page.get_by_role("tab", name="Gallery").click()
        cards = page.locator("#gallery-grid .dailies-card")
        cards.first.wait_for()
        assert cards.count() == 3
        assert [cards.nth(i).get_attribute("data-id") for i in range(3)] == ids[::-1]  # newest first
        poster = cards.first.locator("img")
        assert poster.get_attribute("loading") == "lazy"
        assert poster.get_attribute("src").startswith(f"{hub.url}/datasets/")  # public: straight from the Hub

        cards.first.hover()
        video = cards.first.locator("video")
        video.wait_for(state="attached")
        assert video.get_attribute("src") == cards.first.get_attribute("data-video")
        page.mouse.move(0, 0)
        video.wait_for(state="detached")

        page.locator("#gallery-search textarea, #gallery-search input").first.fill("crane")
        page.keyboard.press("Enter")
        wait_for(lambda: cards.count() == 2, 15, what="the search to narrow the grid")

        cards.first.click()
        page.locator("#detail-prompt textarea").wait_for()
        wait_for(
            lambda: page.locator("#detail-prompt textarea").input_value() == "a crane at night",
            15,
            what="the detail view",
        )
        assert page.locator("#detail-video video").get_attribute("src").startswith(hub.url)
        assert page.locator("#detail-share a.dailies-share").get_attribute("href") == f"/g/{ids[2]}"

        page.get_by_role("button", name="Use these settings").click()
        prompt = page.locator("#prompt textarea")
        wait_for(lambda: prompt.input_value() == "a crane at night", 15, what="the settings in the Generate tab")

        shared = browser.new_page()
        shared.goto(f"{app.url}/?g={ids[1]}")
        wait_for(
            lambda: (
                shared.locator("#detail-prompt textarea").count()
                and shared.locator("#detail-prompt textarea").input_value() == "a heron in the reeds"
            ),
            30,
            what="the shared generation",
        )
