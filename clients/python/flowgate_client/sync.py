"""The blocking client."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Optional

import httpx
from httpx_sse import connect_sse

from .base import NO_BODY, Base, Req
from .errors import FlowgateError
from .types import Backoff, Event, Record, RunChange, decode, list_params, path, run_change


class Client(Base):
    """A flowgate client over one HTTP connection pool. Use as a context manager or call
    :meth:`close`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _refresh(self) -> None:
        assert self.refresh_token is not None
        self.token = self.refresh_token()

    def _do(self, req: Req) -> Any:
        method, p, q, body = req
        refreshed = False
        while True:
            kw: Dict[str, Any] = {"params": q, "headers": self._headers()}
            if body is not NO_BODY:
                kw["json"] = body
            try:
                return self._answer(self._http.request(method, p, **kw))
            except FlowgateError as e:
                if not self._should_refresh(e, refreshed):
                    raise
                self._refresh()
                refreshed = True

    # ---- producers ----------------------------------------------------------------------

    def start(self, workflow: str, input: Any = None, *, id: Optional[str] = None,
              tags: Optional[List[str]] = None, queue: Optional[str] = None,
              wait: Optional[float] = None) -> Dict[str, Any]:
        """Starts a registered workflow; with ``wait``, returns its outcome if it finishes."""
        return self._do(self._start(workflow, input, id, tags, queue, wait))

    def create_run(self, run_id: str, workflow: str = "external",
                   tags: Optional[List[str]] = None) -> Dict[str, Any]:
        """Creates the record of a run this program produces for (idempotent)."""
        return self._do(self._create_run(run_id, workflow, tags))

    def append(self, run_id: str, key: str, values: List[Any]) -> Dict[str, Any]:
        """Appends records in order; returns ``{first_offset, next}``."""
        return self._do(("POST", path(run_id, "streams", key), {}, list(values)))

    def close_stream(self, run_id: str, key: str) -> Any:
        """Writes the stream's close marker."""
        return self._do(("POST", path(run_id, "streams", key, "close"), {}, NO_BODY))

    def set_event(self, run_id: str, key: str, value: Any) -> Dict[str, Any]:
        """Sets an event's value; returns ``{version}``."""
        return self._do(("PUT", path(run_id, "events", key), {}, value))

    def send(self, run_id: str, topic: str, body: Any,
             idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Sends a message; the same ``idempotency_key`` sends it once."""
        return self._do(self._send(run_id, topic, body, idempotency_key))

    # ---- consumers ----------------------------------------------------------------------

    def get_run(self, run_id: str) -> Dict[str, Any]:
        """The run's status, and its output or error once finished."""
        return self._do(("GET", path(run_id), {}, NO_BODY))

    def wait_event(self, run_id: str, key: str, after: int = 0,
                   timeout: float = 30.0) -> Optional[Event]:
        """The event once its version passes ``after``; ``None`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ev = self._event(key, self._do(self._wait_event(run_id, key, after, min(left, 60.0))))
            if ev is not None:
                return ev

    def _sse(self, p: str, params: Dict[str, str], position: Optional[str]) -> Iterator[Any]:
        headers = self._headers({"Accept": "text/event-stream"})
        if position is not None:
            headers["Last-Event-ID"] = position
        with connect_sse(self._http, "GET", p, params=params, headers=headers,
                         timeout=self._stream_timeout()) as es:
            if es.response.status_code != 200:
                es.response.read()
                raise FlowgateError.from_response(es.response)
            yield from es.iter_sse()

    def _resume(self, p: str, params: Dict[str, str], state: Dict[str, Any]) -> Iterator[Any]:
        """SSE events from ``state['pos']`` on, reconnecting after drops and restarts."""
        backoff = Backoff(self.retry_for)
        refreshed = False
        while True:
            try:
                for sse in self._sse(p, params, state["pos"]):
                    backoff.reset()
                    refreshed = False
                    yield sse
            except FlowgateError as e:
                if self._should_refresh(e, refreshed):
                    self._refresh()
                    refreshed = True
                    continue
                if not e.retryable:
                    raise
            except httpx.TransportError:
                pass
            pause = backoff.next()
            if pause is None:
                raise ConnectionError(f"no progress on {p} for {self.retry_for} s")
            time.sleep(pause)

    def follow_stream(self, run_id: str, key: str, start: int = 0) -> Iterator[Record]:
        """Every record from offset ``start`` in order, each once, until the close marker."""
        state: Dict[str, Any] = {"pos": str(start - 1) if start > 0 else None}
        nxt = start
        for sse in self._resume(path(run_id, "streams", key), {}, state):
            if sse.event == "end":
                return
            if sse.id and sse.event in ("", "message"):
                off = int(sse.id)
                if off >= nxt:
                    nxt = off + 1
                    state["pos"] = sse.id
                    yield Record(off, decode(sse.data))

    def watch_runs(self, tag: Optional[str] = None, workflow: Optional[str] = None,
                   status: Optional[str] = None, limit: Optional[int] = None,
                   since: Optional[str] = None) -> Iterator[RunChange]:
        """The matching runs (once), then every start and status change, forever; resumes
        after ``since`` (a :attr:`RunChange.position`) when given."""
        state: Dict[str, Any] = {"pos": since}
        params = list_params(tag, workflow, status, limit)
        for sse in self._resume("/v1/workflows", params, state):
            change = run_change(sse.event, sse.data, sse.id)
            if change is not None:
                if sse.id:
                    state["pos"] = sse.id
                yield change
