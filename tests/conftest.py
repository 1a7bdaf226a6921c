"""Shared fixtures: a real redis-server, real worker processes and the real app in a subprocess.

Under pytest-xdist (`-n 3 --dist loadgroup`) every xdist worker is its own
session: its own redis-server, ports and temporary folders. A module whose tests share a
module-scoped app or model worker runs whole on one xdist worker, in its own order (see
`pytest_collection_modifyitems`); the other tests are spread one by one.

`-m unit` is the fast lane: tests that start no process and talk to no Redis, checked while
they run (`_unit_starts_nothing`).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.connection import AbstractConnection

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

# What the suite should take on a 2-core machine (issue 19); printed with the total at the end.
BUDGET_S = 12 * 60
# Fixtures that start processes or need redis-server: a `unit` test may use none of them.
PROCESS_FIXTURES = {
    "redis_server", "redis_url", "redis", "module_redis", "processes", "module_processes", "app", "shared_app",
    "browser", "page",
}  # fmt: skip
# Modules that take long on one xdist worker go first, so that none is left running alone at the end.
HEAVY_FIRST = ("test_models", "test_compare", "test_zerogpu", "test_models_new", "test_pyramid_app", "test_pyramid")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shared_modules = set()
    for item in items:
        if item.get_closest_marker("unit") and (used := PROCESS_FIXTURES & set(item.fixturenames)):
            raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {sorted(used)}")
        defs = getattr(item, "_fixtureinfo", None)
        for name, fixturedefs in defs.name2fixturedefs.items() if defs else ():
            if name != "browser" and fixturedefs[-1].scope == "module":
                shared_modules.add(item.module.__name__)
    # A module with a module-scoped app or worker runs whole on one xdist worker and in its own
    # order: spread, its other tests could run beside the shared app's worker on the same Redis.
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in shared_modules:
            item.add_marker(pytest.mark.xdist_group(module.__name__))

    def weight(item: pytest.Item) -> int:
        name = getattr(item, "module", None) and item.module.__name__.rsplit(".", 1)[-1]
        return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=weight)  # stable: each module keeps its order


@pytest.fixture(autouse=True)
def _unit_starts_nothing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `unit` test that starts a process or opens a Redis connection fails, saying so."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(what: str):
        def refused(*args, **kwargs):
            raise AssertionError(f"a unit test {what} (mark it otherwise): {request.node.nodeid}")

        return refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("starts no process"))
    monkeypatch.setattr(AbstractConnection, "connect", refuse("talks to no Redis"))


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.monotonic()


_STARTED = pytest.StashKey[float]()


@pytest.hookimpl(trylast=True)  # after the slowest tests
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The suite's wall time against the budget, and the time its tests took added up (across
    xdist workers that is more than the wall time)."""
    if hasattr(config, "workerinput"):
        return
    wall = time.monotonic() - config.stash.get(_STARTED, time.monotonic())
    reports = [r for stat in terminalreporter.stats.values() for r in stat if hasattr(r, "duration")]
    summed = sum(r.duration for r in reports)
    workers = getattr(config.option, "numprocesses", None) or 1
    over = " OVER BUDGET" if wall > BUDGET_S else ""
    terminalreporter.write_line(
        f"suite time: {wall:.0f} s wall (budget {BUDGET_S} s){over}; tests summed {summed:.0f} s on {workers} worker(s)"
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
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the module's own, for a module-wide app: xdist runs other modules' tests
    between this module's on the same session, and each of those empties the session's Redis."""
    proc, url = start_redis_server(tmp_path_factory.mktemp("module-redis"))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def shared_app(module_processes: Processes, module_redis: str) -> App:
    """One app and worker for a whole module, for tests that only look at their own jobs."""
    module_processes.worker(module_redis)
    return start_app(module_processes, module_processes.tmp_path, module_redis)


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
    from playwright.sync_api import expect, sync_playwright

    # A page event waits its turn on a busy two-core machine: 15 s, not Playwright's 5, before a
    # check fails (the page's own waits are 30 s, set in `page`).
    expect.set_options(timeout=15_000)
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
    """Type `value` into a slider's number box as a visitor does, once (fill, Enter), and find it
    held a moment later: the page once put a size typed in a fold just opened back to its old
    value (issue 19, static/typed.js), so a box that does not hold is a failure, not a retry."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")
    _held(page, elem_id, value)


# Types into a number box in the task after it is drawn (a keystroke is a task of its own), as a
# visitor's input event: the fastest a visitor can, faster than Playwright's own round trips.
_TYPE_ON_SIGHT = """([id, value]) => {
  const observer = new MutationObserver(() => {
    const box = document.querySelector(`#${id} input[type=number]`);
    if (!box || !box.offsetParent) return;
    observer.disconnect();
    setTimeout(() => {
      box.focus();
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(box, value);
      box.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertText", data: value }));
      window.typedOnSight = value;
    });
  });
  window.typedOnSight = null;
  observer.observe(document.body, { childList: true, subtree: true, attributes: true });
}"""


def open_and_type_number(page, opener, elem_id: str, value: str) -> None:
    """Click `opener` (a fold, a tab) and type `value` into the slider box it draws the moment it
    is drawn; then it must hold, as with `type_number`."""
    page.evaluate(_TYPE_ON_SIGHT, [elem_id, value])
    opener.click()
    page.wait_for_function("value => window.typedOnSight === value", arg=value)
    _held(page, elem_id, value)


def _held(page, elem_id: str, value: str) -> None:
    # Long enough for the page's own late update of a field just drawn (a frame or a few, more on
    # a busy machine) to have come and gone.
    page.wait_for_timeout(300)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    held = page.locator(f"#{elem_id} input[type=number]").input_value()
    assert held == value, f"#{elem_id} was typed {value} but holds {held}"
