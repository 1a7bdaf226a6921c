"""Shared fixtures: a real redis-server, real worker processes and the real app in a subprocess."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.harness import (  # noqa: F401  (re-exported for test modules)
    ROOT,
    App,
    Processes,
    base_env,
    free_port,
    start_app,
    start_redis_server,
    wait_for,
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture(scope="module")
def module_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    procs = Processes(tmp_path_factory.mktemp("procs"))
    yield procs
    procs.stop_all()


@pytest.fixture
def app(processes: Processes, tmp_path: Path, redis_url: str) -> App:
    """The app against an empty test Redis (not embedded) plus one preview worker."""
    processes.worker(redis_url)
    return start_app(processes, tmp_path, redis_url)


@pytest.fixture(scope="module")
def shared_app(module_processes: Processes, redis_server: str) -> App:
    """One app and worker for a whole module, for tests that only look at their own jobs."""
    Redis.from_url(redis_server).flushall()
    module_processes.worker(redis_server)
    return start_app(module_processes, module_processes.tmp_path, redis_server)


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# The two screens the page is made for: most visitors are on a phone.
SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1440, "height": 900}},
}


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator:
    """A fresh page on a phone, or on the screen a test names with
    `@pytest.mark.parametrize("page", ["phone", "desktop"], indirect=True)`."""
    context = browser.new_context(**SCREENS[getattr(request, "param", "phone")])
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's chromium driven by Playwright (a test tool's own browser download fails here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def choose_seed(page, seed: int) -> None:
    """Untick "Random seed" and type `seed`, once the page has put its own offer in the box
    (typing before it arrives would lose to it)."""
    from playwright.sync_api import expect

    page.locator("#random-seed input").uncheck()
    box = page.locator("#seed input")
    expect(box).not_to_have_value(re.compile("^0?$"))
    box.fill(str(seed))


def type_number(page, elem_id: str, value: str) -> None:
    """Type into a slider's number box until it holds: Gradio's page may put a box that was
    drawn a moment ago (in a Settings fold just opened) back to its first value (about 1 in 6
    under load; never after a second's wait). What it finally holds is asserted."""
    box = page.locator(f"#{elem_id} input[type=number]")
    for _ in range(3):
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(200)
        if box.input_value() == value:
            return
    raise AssertionError(f"{elem_id} did not take {value}")
