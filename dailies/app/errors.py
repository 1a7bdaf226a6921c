"""The one error type the API answers with: `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, field)
