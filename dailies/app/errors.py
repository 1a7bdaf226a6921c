"""The one error type the API answers with: `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import json

from starlette.responses import Response


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after  # seconds, sent as Retry-After (every 429 has one)

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}

    def response(self) -> Response:
        """The error as an HTTP answer. ASCII-escaped JSON, so that whatever a client sent and the
        message quotes back (a lone surrogate, a control character) cannot make the handler fail."""
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return Response(json.dumps(self.body()), self.status, headers, media_type="application/json")


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, field)
