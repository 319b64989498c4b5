"""What the sync and async clients share: requests as data, answers, token refresh."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import httpx

from .errors import FlowgateError
from .types import Event, path

#: A request: (method, path, query, JSON body or ``...`` for none).
Req = Tuple[str, str, Dict[str, str], Any]

NO_BODY: Any = ...


class Base:
    """Settings and request builders; subclasses send them."""

    def __init__(self, base_url: str = "http://127.0.0.1:8080", token: Optional[str] = None,
                 refresh_token: Optional[Callable[[], Any]] = None, timeout: float = 30.0,
                 retry_for: Optional[float] = 60.0):
        """``token`` is an API key, run token or tag token (sent as a bearer token).
        ``refresh_token`` is called on a 401 (e.g. ``token_expired``) and returns a new
        token; the request or watch then continues. Followers reconnect for up to
        ``retry_for`` seconds without progress (``None``: forever)."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.refresh_token = refresh_token
        self.timeout = timeout
        self.retry_for = retry_for

    def _headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        h = dict(extra or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def _stream_timeout(self) -> httpx.Timeout:
        # Heartbeats arrive every 15 s by default: a minute of silence is a dead connection.
        return httpx.Timeout(self.timeout, read=max(60.0, self.timeout))

    @staticmethod
    def _answer(resp: httpx.Response) -> Any:
        if resp.status_code == 204:
            return None
        if resp.status_code >= 400:
            raise FlowgateError.from_response(resp)
        return resp.json() if resp.content else None

    # ---- requests as data ---------------------------------------------------------------

    @staticmethod
    def _start(workflow: str, input: Any, id: Optional[str], tags: Optional[List[str]],
               queue: Optional[str], wait: Optional[float]) -> Req:
        body: Dict[str, Any] = {"workflow": workflow, "input": {} if input is None else input}
        for k, v in (("id", id), ("tags", tags), ("queue", queue)):
            if v is not None:
                body[k] = v
        q = {} if wait is None else {"wait": f"{wait:g}"}
        return ("POST", "/v1/workflows", q, body)

    @staticmethod
    def _create_run(run_id: str, workflow: str, tags: Optional[List[str]]) -> Req:
        body: Dict[str, Any] = {"workflow": workflow}
        if tags:
            body["tags"] = tags
        return ("PUT", path(run_id), {}, body)

    @staticmethod
    def _send(run_id: str, topic: str, body: Any, key: Optional[str]) -> Req:
        m: Dict[str, Any] = {"topic": topic, "body": body}
        if key is not None:
            m["idempotency_key"] = key
        return ("POST", path(run_id, "messages"), {}, m)

    @staticmethod
    def _wait_event(run_id: str, key: str, after: int, secs: float) -> Req:
        return ("GET", path(run_id, "events", key), {"after": str(after), "timeout": f"{secs:g}"},
                NO_BODY)

    @staticmethod
    def _event(key: str, body: Any) -> Optional[Event]:
        if body is None:
            return None
        return Event(key, body.get("value"), int(body.get("version", 0)))

    def _should_refresh(self, err: FlowgateError, refreshed: bool) -> bool:
        return err.status == 401 and self.refresh_token is not None and not refreshed
