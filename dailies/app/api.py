"""The JSON API under /api/v1 (a job's path from here: docs/architecture.md); every error is
`{"error": {code, message, field}}`."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from dailies.app.errors import ApiError
from dailies.app.index import PAGE_MAX, GalleryQuery
from dailies.app.jobs import JobView
from dailies.app.service import Service
from dailies.app.visitors import Whoami

BODY_MAX = 16 * 1024 * 1024
# The only files /media serves: videos in batch folders and posters.
MEDIA_PATH = re.compile(r"data/[0-9-]{10}/[0-9a-f]{24}/[0-9a-f]{24}\.mp4|posters/[0-9-]{10}/[0-9a-f]{24}\.jpg")
log = logging.getLogger("dailies.app.api")


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: text a client sent (or an older app stored) that UTF-8 cannot
    encode, such as a lone surrogate, is sent back escaped instead of failing the response."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


async def _api_error(_: Request, exc: ApiError) -> Response:
    return exc.response()


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    return ApiError(422, "invalid_field", str(first.get("msg", "invalid request")), field).response()


async def _redis_error(_: Request, exc: RedisError) -> Response:
    log.error("redis unavailable: %s", exc)
    return ApiError(503, "unavailable", "the job queue is unavailable; try again shortly", retry_after=5).response()


async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
    # Starlette's own answers (405, 404 outside /api/v1) in our error shape.
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return ApiError(exc.status_code, code, str(exc.detail)).response()


async def _internal_error(_: Request, exc: Exception) -> Response:
    log.error("unexpected error answering a request", exc_info=exc)
    return ApiError(500, "internal_error", "something went wrong on our side; it has been logged").response()


# FastAPI's `exception_handlers`: every error answers `{"error": ...}`, never a traceback.
ERROR_HANDLERS = {
    ApiError: _api_error,
    RequestValidationError: _validation_error,
    RedisError: _redis_error,
    StarletteHTTPException: _http_error,
    Exception: _internal_error,
}


async def json_only(request: Request) -> None:
    """POST takes `application/json` only: a cross-site form (urlencoded, multipart or text/plain)
    cannot queue or cancel jobs in a visitor's name. A POST with no body may omit the type."""
    if request.method != "POST":
        return
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    empty = request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers
    if media_type == "application/json" or (not media_type and empty):
        return
    raise ApiError(415, "unsupported_media_type", "send the body as application/json")


async def read_json(request: Request) -> Any:
    """The request body as JSON: 413 over BODY_MAX, 400 for anything a JSON parser refuses."""
    declared = request.headers.get("content-length") or "0"
    if not declared.isdigit() or int(declared) > BODY_MAX:
        raise ApiError(413, "too_large", f"the body is over {BODY_MAX // 2**20} MB")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > BODY_MAX:
            raise ApiError(413, "too_large", f"the body is over {BODY_MAX // 2**20} MB")
    try:
        return json.loads(raw)
    # ValueError: also numbers too long to convert; RecursionError: nesting deeper than Python's stack.
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None


async def server_sent(statuses: AsyncIterator[JobView | None]) -> AsyncIterator[str]:
    """Each status as a `status` event (the last one is the job's end); None as a keep-alive comment."""
    async for status in statuses:
        yield ": keep-alive\n\n" if status is None else f"event: status\ndata: {json.dumps(status.to_json())}\n\n"


def router(service: Service) -> APIRouter:
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(json_only)], default_response_class=AsciiJSONResponse)
    whoami = Whoami()

    @api.get("/backends")
    def list_backends() -> dict:
        return {"backends": service.describe_backends()}

    @api.post("/jobs", status_code=202)
    async def submit(request: Request) -> JSONResponse:
        body = await read_json(request)
        visitor = await whoami.visitor(request, service.settings)
        if isinstance(body, dict) and "backends" in body:
            # A comparison, one job per backend (on the queue, also on ZeroGPU).
            return JSONResponse(await run_in_threadpool(service.groups.submit, body, visitor), status_code=202)
        accepted = await run_in_threadpool(service.jobs.submit, body, visitor)
        return AsciiJSONResponse(accepted.to_json(), status_code=202)

    @api.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict:
        return service.jobs.status(job_id).to_json()

    @api.get("/jobs/{job_id}/events")
    async def job_events(job_id: str) -> StreamingResponse:
        """Server-sent events: the status now, then each change, until the job ends."""
        return StreamingResponse(
            server_sent(await service.updates.follow(job_id)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.post("/jobs/{job_id}/cancel", status_code=202)
    async def cancel(job_id: str, request: Request) -> dict:
        """Only by the visitor who made the job: to anyone else, 404 as for an unknown id."""
        visitor = await whoami.visitor(request, service.settings)
        return await run_in_threadpool(service.jobs.cancel, job_id, visitor)

    @api.get("/groups/{group_id}")
    def group(group_id: str) -> dict:
        return service.groups.status(group_id).to_json()

    @api.get("/generations")
    def generations(
        limit: int = 24,
        cursor: str | None = None,
        q: str | None = None,
        backend: str | None = None,
        model: str | None = None,
        order: str = "newest",
    ) -> dict:
        if not 1 <= limit <= PAGE_MAX:
            raise ApiError(422, "invalid_field", f"limit must be between 1 and {PAGE_MAX}", "limit")
        if order not in ("newest", "oldest"):
            raise ApiError(422, "invalid_field", "order must be newest or oldest", "order")
        return service.generations(GalleryQuery(limit, cursor, q, backend, model, order == "oldest"))

    @api.get("/generations/{generation_id}")
    def generation(generation_id: str) -> dict:
        return service.generation(generation_id)

    @api.post("/generations/{generation_id}/report", status_code=201)
    async def report(generation_id: str, request: Request) -> dict:
        body = await read_json(request)
        visitor = await whoami.visitor(request, service.settings)
        return await run_in_threadpool(service.takedown.report, generation_id, body, visitor)

    # Owners only (dailies/app/takedown.py): signed in with a Hub token whose user is an owner.
    @api.get("/reports")
    async def reports(request: Request) -> dict:
        visitor = await whoami.visitor(request, service.settings)
        return await run_in_threadpool(service.takedown.reports, visitor)

    @api.post("/generations/{generation_id}/hide")
    async def hide(generation_id: str, request: Request) -> dict:
        visitor = await whoami.visitor(request, service.settings)
        return await run_in_threadpool(service.takedown.hide, generation_id, visitor)

    @api.delete("/generations/{generation_id}")
    async def remove(generation_id: str, request: Request) -> dict:
        visitor = await whoami.visitor(request, service.settings)
        return await run_in_threadpool(service.takedown.remove, generation_id, visitor)

    @api.get("/healthz")
    def healthz() -> JSONResponse:
        health = service.health()
        return AsciiJSONResponse(health, status_code=200 if health["redis"]["ok"] else 503)

    @api.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    def unknown(path: str, request: Request) -> None:
        raise ApiError(404, "not_found", f"no API route {request.method} /api/v1/{path}")

    return api


def media(service: Service) -> APIRouter:
    """/media/<path>: a dataset file from the local folder, or for a private Hub dataset fetched
    from the Hub on demand (a public one is streamed by the browser from the Hub's own URLs)."""
    files = APIRouter()

    @files.get("/media/{path:path}")
    def media_file(path: str) -> FileResponse:
        served = MEDIA_PATH.fullmatch(path) is not None
        if served:
            service.takedown.check(PurePosixPath(path).stem)  # the file is named by its generation's id
        found = service.storage.media_file(path) if served else None
        if found is None:
            raise ApiError(404, "not_found", f"no media file {path!r}")
        media_type = "video/mp4" if path.endswith(".mp4") else "image/jpeg"
        return FileResponse(found, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    return files
