"""ZeroGPU mode through the real `spaces` client, against a loopback scheduler (tests/zerogpu_server.py).

The app runs as a ZeroGPU Space runs it (`SPACES_ZERO_GPU=true`, launched through Gradio), with
the scheduler at `SPACES_ZERO_DEVICE_API_URL` and `ZEROGPU_PROC_SELF_CGROUP_PATH` at a file
holding `0::/x`. What this CPU-only machine lacks of the platform (a CUDA build of torch, a GPU
in the forked task) is supplied by tests/zerogpu_platform.py, which says exactly what; the
model is a tiny LTX-Video checkpoint run with `DAILIES_DEVICE=cpu` in the process `spaces` forks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

import backends
from dailies.app import zerogpu
from dailies.app.validation import validate
from dailies.contract.settings import Settings
from tests.conftest import ROOT, App, Processes, choose_seed, start_app, type_number, wait_for
from tests.test_public import assert_slow_headers_are_cut
from tests.tiny_pipelines import save_tiny, tiny_job
from tests.zerogpu_server import Scheduler, serve, visitor_token

pytest.importorskip("diffusers", reason="model dependencies are not installed (requirements-models.txt)")
pytestmark = pytest.mark.zerogpu

SETTINGS = Settings.from_env({})


@pytest.fixture(scope="module")
def scheduler() -> Scheduler:
    state = Scheduler(over_quota={"over-quota"})
    server, _ = serve(state)
    yield state
    server.shutdown()


@pytest.fixture(scope="module")
def space(
    module_redis: str, module_processes: Processes, scheduler: Scheduler, tmp_path_factory: pytest.TempPathFactory
) -> App:
    """The app on a ZeroGPU Space, with a preview worker for the backends that keep the queue."""
    folder = tmp_path_factory.mktemp("zerogpu")
    cgroup = folder / "cgroup"
    cgroup.write_text("0::/x\n")
    model = save_tiny("ltx-video", folder)
    module_processes.worker(module_redis)
    return start_app(
        module_processes,
        folder,
        module_redis,
        command=("-m", "tests.zerogpu_platform"),
        SPACES_ZERO_GPU="true",
        SPACES_ZERO_DEVICE_API_URL=scheduler.url,
        ZEROGPU_PROC_SELF_CGROUP_PATH=str(cgroup),
        DAILIES_DEVICE="cpu",
        DAILIES_MODEL_LTX_VIDEO=str(model),
        DAILIES_USER_MAX_ACTIVE="50",
        DAILIES_HEADER_TIMEOUT_S="3",
    )


@pytest.fixture
def visitor(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """A page whose every request carries a visitor's X-IP-Token, as the Spaces page adds it."""
    contexts = []

    def open_page(user: str) -> Page:
        context = browser.new_context(extra_http_headers={"X-IP-Token": visitor_token(user)})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def fill_tiny_ltx_job(page: Page, url: str, prompt: str, steps: int) -> None:
    """The Generate form for a 64x64, 9-frame LTX-Video job with `steps` steps and seed 7."""
    page.goto(url)
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#backend input").click()
    page.get_by_role("option", name="LTX-Video").click()
    expect(page.locator("#backend-note")).to_contain_text("LTX-Video")
    page.get_by_text("Settings", exact=True).click()
    for name, value in (("duration", "0.375"), ("width", "64"), ("height", "64")):
        type_number(page, name, value)
    choose_seed(page, 7)
    steps_box = page.get_by_label("Steps")
    steps_box.fill(str(steps))
    steps_box.press("Enter")


def schedules_of(scheduler: Scheduler, user: str) -> list[dict[str, str]]:
    return [p for p in scheduler.seen("/schedule") if p.get("token") == visitor_token(user)]


@pytest.mark.unit
def test_every_open_checkpoint_declares_its_gpu_cost() -> None:
    for backend in backends.all_backends(SETTINGS):
        if backend.kind == "open":
            for checkpoint in backend.checkpoints:
                assert checkpoint.gpu is not None, (backend.name, checkpoint.name)


@pytest.mark.unit
def test_the_gpu_process_never_compiles() -> None:
    from dailies.worker.gpu_child import gpu_settings

    # torch.compile is on by default on a GPU elsewhere; ZeroGPU does not support it.
    for env in ({}, {"DAILIES_SPEED": "compile,attention,step_cache"}, {"DAILIES_SPEED_WAN": "compile"}):
        speed = gpu_settings(Settings.from_env(env)).speed_for("wan", "2.1-14b", "cuda")
        assert "compile" not in speed
    assert gpu_settings(SETTINGS).speed_for("wan", "2.1-14b", "cuda") == ("attention",)


def test_an_app_off_zerogpu_loads_no_worker_module_and_not_spaces() -> None:
    code = (
        "import sys, app; "
        "print(sorted(m for m in sys.modules if m.startswith(('dailies.worker', 'spaces')) or m == 'spaces'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPACES_ZERO_GPU"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.unit
def test_the_duration_asked_for_follows_frames_size_steps_and_checkpoint() -> None:
    ltx = backends.get("ltx-video", SETTINGS)
    wan = backends.get("wan", SETTINGS)

    def seconds(backend, **body) -> int:
        return backend.gpu_seconds(validate({"prompt": "a boat", **body}, backend))

    small = seconds(ltx, width=512, height=320, num_frames=97, steps=30)
    assert seconds(ltx, width=704, height=480, num_frames=97, steps=30) > small
    assert seconds(ltx, width=512, height=320, num_frames=161, steps=30) > small
    assert seconds(ltx, width=512, height=320, num_frames=97, steps=60) > small
    assert seconds(ltx, width=512, height=320, num_frames=97, steps=30, model="0.9.7-distilled") != small
    # 14B Wan does not fit the 48 GB card: it asks for the 96 GB one, which the page says costs double.
    big = validate({"prompt": "a boat", "backend": "wan", "model": "2.1-14b"}, wan)
    assert wan.gpu_cost(big).size == "xlarge"
    assert zerogpu.quota_seconds(big, wan) == 2 * wan.gpu_seconds(big)
    assert "counted as" in zerogpu.estimate_note(big, wan)
    assert wan.gpu_cost(validate({"prompt": "a boat", "backend": "wan", "model": "2.1-1.3b"}, wan)).size == "large"


@pytest.mark.browser
def test_a_page_job_runs_on_a_lent_gpu_as_its_visitor(space: App, scheduler: Scheduler, visitor) -> None:
    # ZeroGPU's start-up report is sent by Gradio's launch, which mounting on FastAPI never calls.
    assert scheduler.seen("/startup-report")
    page = visitor("ann")
    fill_tiny_ltx_job(page, space.url, "a red boat on the sea", steps=100)
    ltx = backends.get("ltx-video", SETTINGS)
    spec = validate({**tiny_job("ltx-video", prompt="x"), "steps": 100, "seed": 7}, ltx)
    seconds = ltx.gpu_seconds(spec)
    # Before Generate, the page says what the job will take from the visitor's quota.
    expect(page.locator("#gpu-estimate")).to_contain_text(f"about {seconds} s of GPU time")

    page.locator("#submit").click()
    job = page.locator("#jobs li.dailies-job").first
    # Progress from the forked GPU process reaches the page's job list while it runs.
    page.wait_for_function(
        "() => { const p = document.querySelector('#jobs li.dailies-job[data-status=running] progress');"
        " return p !== null && p.value > 0.05; }",
        timeout=120_000,
    )
    expect(job).to_have_attribute("data-status", "succeeded", timeout=120_000)
    expect(job.locator("video.dailies-job-video")).to_have_attribute("src", re.compile(r".+\.mp4"))
    job_id = job.get_attribute("data-id")

    # The scheduler saw the visitor's token, the duration computed from the request, a forked
    # process (not the app) allowed on the GPU, and the GPU given back once done.
    [schedule] = schedules_of(scheduler, "ann")
    assert schedule["cgroupPath"] == "/x"
    assert (schedule["durationSeconds"], schedule["gpuSize"]) == (str(seconds), "large")
    allowed = scheduler.seen("/allow")
    assert allowed and all(a["pid"] != str(space.proc.proc.pid) for a in allowed)
    assert scheduler.all_released()

    # The result went through the collector into the dataset and the gallery, like a worker's.
    result = space.client.get(f"/api/v1/jobs/{job_id}").json()["result"]
    assert (result["width"], result["height"], result["num_frames"], result["seed"]) == (64, 64, 9, 7)
    assert space.client.get(result["video_url"]).content[4:8] == b"ftyp"
    items = space.client.get("/api/v1/generations", params={"q": "red boat"}).json()["items"]
    assert [g["id"] for g in items] == [job_id]


def test_the_json_api_refuses_open_models_with_a_clear_message(space: App) -> None:
    # The GPU is lent to a page's request; a program's request has no page to run the job in.
    answer = space.client.post("/api/v1/jobs", json=tiny_job("ltx-video", prompt="a boat"))
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("runs_in_page", "backend")
    assert "runs in a visitor's page" in error["message"]


@pytest.mark.browser
def test_cancel_stops_the_gpu_task(space: App, scheduler: Scheduler, visitor) -> None:
    page = visitor("bob")
    fill_tiny_ltx_job(page, space.url, "a long night city", steps=200)
    page.locator("#submit").click()
    job = page.locator("#jobs li.dailies-job").first
    expect(job).to_have_attribute("data-id", re.compile(r"[0-9a-f]{24}"))
    job_id = job.get_attribute("data-id")

    def stepping():
        status = space.client.get(f"/api/v1/jobs/{job_id}").json()
        return status if status["message"].startswith("step ") else None

    running = wait_for(stepping, 120, what="the GPU task to report steps")
    assert running["status"] == "running" and 0 < running["progress"] < 0.9
    # Cancelled by its visitor (the page's cookie): anyone else is answered 404.
    assert space.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
    assert page.request.post(f"{space.url}/api/v1/jobs/{job_id}/cancel").status == 202

    status = space.wait_done(job_id, timeout=60)
    assert status["status"] == "canceled", status
    # The GPU task stopped: its last step is short of the 200 asked for, and the GPU was given back.
    last = re.fullmatch(r"step (\d+)/200", status["message"])
    assert last and int(last[1]) < 200, status["message"]
    assert schedules_of(scheduler, "bob")
    assert scheduler.all_released()  # closing the task waits for the GPU process to stop and give it back
    assert space.client.get("/api/v1/generations", params={"q": "long night"}).json()["items"] == []


@pytest.mark.browser
def test_closing_the_page_stops_its_gpu_task(space: App, scheduler: Scheduler, visitor) -> None:
    page = visitor("cleo")
    fill_tiny_ltx_job(page, space.url, "a cat on a boat at night", steps=200)
    page.locator("#submit").click()
    job = page.locator("#jobs li.dailies-job[data-status=running]").first
    page.wait_for_function(
        "() => { const p = document.querySelector('#jobs li.dailies-job[data-status=running] progress');"
        " return p !== null && p.value > 0.05; }",
        timeout=120_000,
    )
    job_id = job.get_attribute("data-id")
    [schedule] = schedules_of(scheduler, "cleo")
    page.close()

    # No queue holds this job: with its page gone it stops, and the GPU is given back.
    status = space.wait_done(job_id, timeout=60)
    assert status["status"] == "canceled", status
    last = re.fullmatch(r"step (\d+)/200", status["message"])
    assert last and int(last[1]) < 200, status["message"]
    wait_for(scheduler.all_released, 30, what="the GPU to be given back")
    assert space.client.get("/api/v1/generations", params={"q": "cat on a boat"}).json()["items"] == []


@pytest.mark.browser
def test_a_visitor_over_quota_gets_a_clear_message(space: App, scheduler: Scheduler, visitor) -> None:
    allowed = len(scheduler.seen("/allow"))
    page = visitor("over-quota")
    fill_tiny_ltx_job(page, space.url, "a blue dog walks", steps=2)
    page.locator("#submit").click()
    error = page.locator("#submit-error")
    expect(error).to_contain_text("ZeroGPU: You have exceeded your free ZeroGPU quota", timeout=60_000)
    expect(error).to_contain_text("12s left")
    expect(error).to_contain_text("Try again in 1:00:00")
    job = page.locator("#jobs li.dailies-job").first
    expect(job).to_have_attribute("data-status", "failed")
    expect(job).to_contain_text("exceeded your free ZeroGPU quota")
    assert schedules_of(scheduler, "over-quota") and len(scheduler.seen("/allow")) == allowed


def test_preview_keeps_the_queue(space: App, scheduler: Scheduler) -> None:
    scheduled = len(scheduler.seen("/schedule"))
    answer = space.submit(prompt="a quiet harbour", backend="preview", num_frames=4, width=64, height=64)
    assert answer.status_code == 202, answer.text
    assert space.wait_done(answer.json()["id"])["status"] == "succeeded"
    assert len(scheduler.seen("/schedule")) == scheduled


@pytest.mark.browser
def test_retry_and_again_run_on_a_lent_gpu_and_succeed(space: App, scheduler: Scheduler, visitor) -> None:
    """A card's Again (of a finished job) and Retry (of a canceled one) take the same way in as Generate."""
    page = visitor("dora")
    fill_tiny_ltx_job(page, space.url, "a green kite over the dunes", steps=2)
    page.locator("#submit").click()
    first = page.locator("#jobs li.dailies-job").first
    expect(first).to_have_attribute("data-status", "succeeded", timeout=120_000)
    first_id = first.get_attribute("data-id")

    first.get_by_role("button", name="Again").click()
    again = page.locator("#jobs li.dailies-job").first
    expect(again).not_to_have_attribute("data-id", first_id, timeout=30_000)
    expect(again).to_have_attribute("data-status", "succeeded", timeout=120_000)
    again_id = again.get_attribute("data-id")
    assert space.client.get(f"/api/v1/jobs/{again_id}").json()["request"]["seed"] == 7

    # Retry of a job that did not finish: canceled while it ran, then retried from its card.
    fill_tiny_ltx_job(page, space.url, "a slow grey tide", steps=60)
    page.locator("#submit").click()
    slow = page.locator("#jobs li.dailies-job").first
    expect(slow).to_have_attribute("data-status", "running", timeout=120_000)
    slow_id = slow.get_attribute("data-id")
    assert page.request.post(f"{space.url}/api/v1/jobs/{slow_id}/cancel").status == 202  # as its visitor
    card = page.locator(f'#jobs li.dailies-job[data-id="{slow_id}"]')
    expect(card).to_have_attribute("data-status", "canceled", timeout=60_000)
    card.get_by_role("button", name="Retry").click()
    retried = page.locator("#jobs li.dailies-job").first
    expect(retried).not_to_have_attribute("data-id", slow_id, timeout=30_000)
    expect(retried).to_have_attribute("data-status", "succeeded", timeout=180_000)
    result = space.client.get(f"/api/v1/jobs/{retried.get_attribute('data-id')}").json()["result"]
    assert (result["width"], result["height"], result["seed"]) == (64, 64, 7)
    wait_for(scheduler.all_released, 30, what="the GPU to be given back")


def test_gradios_own_launch_cuts_slow_headers_too(space: App) -> None:
    """On ZeroGPU Gradio's launch builds the server: the header deadline holds there as well."""
    assert_slow_headers_are_cut(space)
