"""`python app.py`: the Dailies web app (Gradio UI + JSON API).

With `REDIS_URL` unset it also runs its own redis-server and one worker serving every backend
usable on this machine; both stop when the app stops. With `REDIS_URL` set it starts neither:
run `python worker.py --backends ...` wherever the models (or keys) are. On a ZeroGPU Space
(`SPACES_ZERO_GPU=true`) the open models run in the visitors' own requests instead of on a worker
(dailies/app/zerogpu.py), and the app is served through Gradio's launch.
"""

from __future__ import annotations

import logging
import os
import signal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.routing import Mount  # noqa: E402

import backends  # noqa: E402
from dailies.app import (  # noqa: E402
    api,
    assets,
    embedded,
    http_protocol,  # noqa: E402
    page,
    share,
    zerogpu,
)
from dailies.app.service import Service  # noqa: E402
from dailies.app.supervisor import Supervisor, reconnecting  # noqa: E402
from dailies.app.visitor_cookie import VisitorCookie  # noqa: E402
from dailies.contract.settings import Settings  # noqa: E402

log = logging.getLogger("dailies.app")


def app_kwargs(service: Service) -> dict:
    """The FastAPI app's own part: /api/v1, /media (the dataset folder), the share pages /g/ and
    /c/, the app's static files, the JSON errors, and the visitor cookie on every response that
    arrived without one (the page's events pass through it too)."""
    return {
        "middleware": [Middleware(VisitorCookie)],
        "title": "Dailies",
        "docs_url": "/api/docs",
        "openapi_url": "/api/openapi.json",
        "redoc_url": None,
        "exception_handlers": api.ERROR_HANDLERS,
        "routes": [
            *api.router(service).routes,
            *api.media(service).routes,
            *share.router(service).routes,
            # Not /static or /assets: those are Gradio's own (its fonts and scripts).
            Mount(assets.STATIC_URL, StaticFiles(directory=assets.STATIC), name="dailies-static"),
        ],
    }


def page_kwargs(service: Service) -> dict:
    return {
        "allowed_paths": [str(service.dataset.root)],
        "css_paths": [assets.STATIC / "dailies.css", assets.STATIC / "gallery.css", assets.STATIC / "compare.css"],
        "footer_links": ["api"],
        "head": assets.document_head(),
    }


def create_app(service: Service) -> FastAPI:
    """The FastAPI app with the Gradio page mounted at /."""
    return gr.mount_gradio_app(FastAPI(**app_kwargs(service)), page.build(service), path="", **page_kwargs(service))


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def launch_on_zerogpu(service: Service) -> None:
    """ZeroGPU hooks `Blocks.launch` (its start-up report to the scheduler), which mounting never calls:
    there the same app is served by Gradio's own launch, our routes first."""
    demo = page.build(service)
    # On ZeroGPU Gradio's queue defaults to one waiting event; the per-visitor limits are ours.
    demo.queue(max_size=service.settings.queue_max)
    demo.launch(
        server_name=service.settings.server_name,
        server_port=service.settings.server_port,
        app_kwargs=app_kwargs(service),
        **page_kwargs(service),
    )


def start(settings: Settings) -> tuple[Service, Supervisor | None]:
    """Lock the data folder, start (and supervise) Redis and a worker when embedded, and the collector."""
    lock = embedded.lock_data_folder(settings.data_dir)
    supervisor = None
    redis_url = settings.redis_url
    if redis_url is None:
        # On ZeroGPU the open models run in the visitors' requests, not on a worker.
        usable = [n for n in backends.usable_names(settings) if not zerogpu.runs_in_request(backends.get(n, settings))]
        supervisor = Supervisor(settings.data_dir, usable)
        redis_url = supervisor.url
        log.info("embedded Redis and a worker for: %s", ", ".join(usable))
    redis = reconnecting(redis_url)
    service = Service(settings, redis, embedded=supervisor is not None)
    service.supervisor = supervisor
    service.lock = lock  # held for the life of the process
    service.start()
    return service, supervisor


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    zerogpu.prepare()
    # uvicorn takes the client address from X-Forwarded-For when the peer is loopback; ours
    # (visitors.client_address) decides. Gradio's own launch (ZeroGPU) builds its own uvicorn
    # Config, so the variable, which both read, and not an argument.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    settings = Settings.from_env()
    http_protocol.install(settings.header_timeout_s)
    service, supervisor = start(settings)
    # SIGTERM as KeyboardInterrupt, so the children stop with the app: Gradio's launch blocks until
    # one, and uvicorn, having stopped serving, raises the signal it caught again with our handler.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if zerogpu.enabled():
            launch_on_zerogpu(service)
            return
        uvicorn.run(
            create_app(service),
            host=settings.server_name,
            port=settings.server_port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    except KeyboardInterrupt:
        pass
    finally:
        log.info("stopping")
        service.stop()
        if supervisor:
            supervisor.stop()


if __name__ == "__main__":
    main()
