"""The one error type: what the server answered (status, code, message)."""

from __future__ import annotations

import httpx


class FlowgateError(Exception):
    """A non-2xx answer. ``status`` is the HTTP status, ``code`` the server's error code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_response(cls, resp: httpx.Response, body: bytes | None = None) -> "FlowgateError":
        code, message, field = f"http_{resp.status_code}", resp.reason_phrase, None
        try:
            import json

            err = json.loads(body if body is not None else resp.content).get("error", {})
            code = err.get("code", code)
            message = err.get("message", message)
            field = err.get("field")
        except Exception:  # not JSON
            pass
        return cls(resp.status_code, code, message, field)

    @property
    def retryable(self) -> bool:
        """True for answers worth retrying later (overload, unavailability)."""
        return self.status in (429, 502, 503, 504) or self.status >= 500
