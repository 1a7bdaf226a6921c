"""Screenshots of every view at phone (390x844) and desktop (1440x900) sizes, to look at.

    .venv/bin/python scripts/screenshots.py [--out screenshots]

Starts what the tests start (a throwaway redis-server, one worker serving `preview` and tiny
random-weight LTX-Video and Wan checkpoints on the CPU, the app), makes a few generations and a
comparison, then saves one PNG per view and size into the folder (not committed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import CHROMIUM_FLAGS  # noqa: E402
from tests.harness import Processes, start_app, start_redis_server  # noqa: E402
from tests.tiny_pipelines import save_tiny  # noqa: E402

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
PROMPTS = ["a lighthouse in a storm at dusk", "a paper boat on a rainy street", "neon city at night, slow pan"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        redis, redis_url = start_redis_server(tmp_path)
        processes = Processes(tmp_path)
        try:
            processes.worker(
                redis_url,
                backends="preview,ltx-video,wan",
                DAILIES_DEVICE="cpu",
                DAILIES_MODEL_LTX_VIDEO=str(save_tiny("ltx-video", tmp_path)),
                DAILIES_MODEL_WAN=str(save_tiny("wan", tmp_path)),
            )
            app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="50")
            ids = []
            for seed, prompt in enumerate(PROMPTS):
                job = app.submit(prompt=prompt, backend="preview", seed=seed, duration_s=2).json()
                ids.append(app.wait_done(job["id"])["id"])
            trio = ["preview", "ltx-video", "wan"]
            body = {"prompt": PROMPTS[0], "backends": trio, "seed": 3, "width": 64, "height": 64, "steps": 2}
            group = app.client.post("/api/v1/jobs", json={**body, "duration_s": 1})
            for job in group.json()["jobs"]:
                app.wait_done(job["id"], timeout=180)
            group_id = group.json()["group"]
            views = {
                "generate": "/",
                "detail": f"/?g={ids[0]}",
                "compare-in-page": f"/?c={group_id}",
                "try-another": f"/?try={ids[0]}",
                "share-one": f"/g/{ids[0]}",
                "share-compare": f"/c/{group_id}",
            }
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
                for size, (width, height) in SIZES.items():
                    viewport = {"width": width, "height": height}
                    context = browser.new_context(viewport=viewport, is_mobile=size == "phone")
                    page = context.new_page()
                    for name, path in views.items():
                        page.goto(app.url + path)
                        page.wait_for_load_state("load")
                        page.wait_for_timeout(2500)
                        page.screenshot(path=str(out / f"{name}-{size}.png"))
                    page.goto(app.url)
                    page.get_by_role("tab", name="Gallery").click()
                    page.wait_for_timeout(2500)
                    page.screenshot(path=str(out / f"gallery-{size}.png"))
                    # The Generate tab right after a submission: the new job's card should be in view.
                    page.goto(app.url)
                    page.locator("#prompt textarea").fill("a kite over the dunes")
                    page.locator("#submit").click()
                    page.wait_for_timeout(2500)
                    page.screenshot(path=str(out / f"submitted-{size}.png"))
                    # The card once its video is there: player and buttons.
                    card = page.locator("#jobs li.dailies-job[data-status=succeeded]").first
                    card.locator(".dailies-job-actions").scroll_into_view_if_needed(timeout=60_000)
                    page.wait_for_timeout(1000)
                    page.screenshot(path=str(out / f"card-done-{size}.png"))
                    # The detail view with its Report fold open.
                    page.goto(f"{app.url}/?g={ids[0]}")
                    page.locator("#detail-report").get_by_text("Report").first.click()
                    page.locator("#detail-report").scroll_into_view_if_needed()
                    page.wait_for_timeout(1000)
                    page.screenshot(path=str(out / f"detail-report-{size}.png"))
                    # The settings, open.
                    page.goto(app.url)
                    page.get_by_text("Settings", exact=True).click()
                    page.locator("#settings").scroll_into_view_if_needed()
                    page.wait_for_timeout(1000)
                    page.screenshot(path=str(out / f"settings-{size}.png"))
                    context.close()
                browser.close()
        finally:
            processes.stop_all()
            redis.terminate()
    print(f"screenshots in {out.resolve()}")


if __name__ == "__main__":
    main()
