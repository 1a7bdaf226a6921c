"""`python app.py`: the Dailies web app (Gradio UI + JSON API).

With `REDIS_URL` unset it also runs its own redis-server and one worker serving every backend
usable on this machine; both stop when the app stops. With `REDIS_URL` set it starts neither:
run `python worker.py --backends ...` wherever the models (or keys) are.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from redis import Redis  # noqa: E402

import backends  # noqa: E402
from dailies.app import api, embedded, page, share  # noqa: E402
from dailies.app.service import Service  # noqa: E402
from dailies.contract.settings import Settings  # noqa: E402

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("dailies.app")


def create_app(service: Service) -> FastAPI:
    """The FastAPI app: /api/v1, /media (the dataset folder) and the Gradio page at /."""
    app = FastAPI(title="Dailies", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    api.install_error_handlers(app)
    app.include_router(api.router(service))
    app.include_router(api.media(service))
    app.include_router(share.router(service))
    # Not /static or /assets: those are Gradio's own (its fonts and scripts).
    app.mount(share.STATIC_URL, StaticFiles(directory=STATIC), name="dailies-static")
    demo = page.build(service)
    return gr.mount_gradio_app(
        app,
        demo,
        path="",
        allowed_paths=[str(service.dataset.root)],
        css_paths=[STATIC / "dailies.css", STATIC / "gallery.css", STATIC / "compare.css"],
        footer_links=["api"],
        head=f'<script src="{share.STATIC_URL}/compare.js" defer></script>',
    )


def start(settings: Settings) -> tuple[Service, embedded.Children]:
    """Lock the data folder, start Redis and a worker when embedded, and the collector."""
    children = embedded.Children()
    lock = embedded.lock_data_folder(settings.data_dir)
    redis_url = settings.redis_url
    if redis_url is None:
        redis_url = embedded.start_redis(children, settings.data_dir)
        usable = backends.usable_names(settings)
        embedded.start_worker(children, redis_url, usable)
        log.info("embedded Redis and a worker for: %s", ", ".join(usable))
    service = Service(settings, Redis.from_url(redis_url), embedded=settings.redis_url is None)
    service.lock = lock  # held for the life of the process
    service.start()
    return service, children


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    service, children = start(settings)
    try:
        uvicorn.run(
            create_app(service),
            host=settings.server_name,
            port=settings.server_port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    finally:
        service.stop()
        children.stop()


if __name__ == "__main__":
    main()
