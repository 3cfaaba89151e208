"""One error model: every Haihe error carries its HTTP status and a stable code.

The app renders them as ``{"error": {"code", "message", "details"}}``; the CLI prints the message
on one line and exits with status 2.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HaiheError(Exception):
    """Base of every error Haihe raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(HaiheError):
    status = 400
    code = "bad_request"


class ConfigError(HaiheError):
    """The installation's settings are wrong; raised before anything starts."""

    status = 500
    code = "config_error"


class NotAuthenticated(HaiheError):
    status = 401
    code = "not_authenticated"


class Forbidden(HaiheError):
    status = 403
    code = "forbidden"


class NotFound(HaiheError):
    status = 404
    code = "not_found"


class Conflict(HaiheError):
    status = 409
    code = "conflict"


class InvalidInput(HaiheError):
    status = 422
    code = "invalid_input"


class RateLimited(HaiheError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class StorageError(HaiheError):
    """The data directory or control database cannot be used as configured."""

    status = 503
    code = "storage_unavailable"


ALL_ERRORS: tuple[type[HaiheError], ...] = (
    BadRequest,
    NotAuthenticated,
    Forbidden,
    NotFound,
    Conflict,
    InvalidInput,
    RateLimited,
    StorageError,
)


def openapi_responses(*errors: type[HaiheError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error classes, in the one error shape."""
    schema = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    }
    out: dict[int | str, dict[str, Any]] = {}
    for cls in errors:
        entry = out.setdefault(
            cls.status,
            {"description": "", "content": {"application/json": {"schema": schema}}},
        )
        entry["description"] = " / ".join(filter(None, [entry["description"], cls.code]))
    return out
