"""The asyncio client: the same methods as :class:`~flowgate_client.Client`, awaited."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Dict, List, Optional

import httpx
from httpx_sse import aconnect_sse

from .base import NO_BODY, Base, Req
from .errors import FlowgateError
from .types import Backoff, Event, Record, RunChange, decode, list_params, path, run_change


class AsyncClient(Base):
    """An async flowgate client. Use as ``async with`` or call :meth:`aclose`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _refresh(self) -> None:
        assert self.refresh_token is not None
        t = self.refresh_token()
        self.token = await t if asyncio.iscoroutine(t) else t

    async def _do(self, req: Req) -> Any:
        method, p, q, body = req
        refreshed = False
        while True:
            kw: Dict[str, Any] = {"params": q, "headers": self._headers()}
            if body is not NO_BODY:
                kw["json"] = body
            try:
                return self._answer(await self._http.request(method, p, **kw))
            except FlowgateError as e:
                if not self._should_refresh(e, refreshed):
                    raise
                await self._refresh()
                refreshed = True

    # ---- producers ----------------------------------------------------------------------

    async def start(self, workflow: str, input: Any = None, *, id: Optional[str] = None,
                    tags: Optional[List[str]] = None, queue: Optional[str] = None,
                    wait: Optional[float] = None) -> Dict[str, Any]:
        """Starts a registered workflow; with ``wait``, returns its outcome if it finishes."""
        return await self._do(self._start(workflow, input, id, tags, queue, wait))

    async def create_run(self, run_id: str, workflow: str = "external",
                         tags: Optional[List[str]] = None) -> Dict[str, Any]:
        """Creates the record of a run this program produces for (idempotent)."""
        return await self._do(self._create_run(run_id, workflow, tags))

    async def append(self, run_id: str, key: str, values: List[Any]) -> Dict[str, Any]:
        """Appends records in order; returns ``{first_offset, next}``."""
        return await self._do(("POST", path(run_id, "streams", key), {}, list(values)))

    async def close_stream(self, run_id: str, key: str) -> Any:
        """Writes the stream's close marker."""
        return await self._do(("POST", path(run_id, "streams", key, "close"), {}, NO_BODY))

    async def set_event(self, run_id: str, key: str, value: Any) -> Dict[str, Any]:
        """Sets an event's value; returns ``{version}``."""
        return await self._do(("PUT", path(run_id, "events", key), {}, value))

    async def send(self, run_id: str, topic: str, body: Any,
                   idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Sends a message; the same ``idempotency_key`` sends it once."""
        return await self._do(self._send(run_id, topic, body, idempotency_key))

    # ---- consumers ----------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Dict[str, Any]:
        """The run's status, and its output or error once finished."""
        return await self._do(("GET", path(run_id), {}, NO_BODY))

    async def wait_event(self, run_id: str, key: str, after: int = 0,
                         timeout: float = 30.0) -> Optional[Event]:
        """The event once its version passes ``after``; ``None`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            body = await self._do(self._wait_event(run_id, key, after, min(left, 60.0)))
            ev = self._event(key, body)
            if ev is not None:
                return ev

    async def _sse(self, p: str, params: Dict[str, str],
                   position: Optional[str]) -> AsyncIterator[Any]:
        headers = self._headers({"Accept": "text/event-stream"})
        if position is not None:
            headers["Last-Event-ID"] = position
        async with aconnect_sse(self._http, "GET", p, params=params, headers=headers,
                                timeout=self._stream_timeout()) as es:
            if es.response.status_code != 200:
                await es.response.aread()
                raise FlowgateError.from_response(es.response)
            async for sse in es.aiter_sse():
                yield sse

    async def _resume(self, p: str, params: Dict[str, str],
                      state: Dict[str, Any]) -> AsyncIterator[Any]:
        """SSE events from ``state['pos']`` on, reconnecting after drops and restarts."""
        backoff = Backoff(self.retry_for)
        refreshed = False
        while True:
            try:
                async for sse in self._sse(p, params, state["pos"]):
                    backoff.reset()
                    refreshed = False
                    yield sse
            except FlowgateError as e:
                if self._should_refresh(e, refreshed):
                    await self._refresh()
                    refreshed = True
                    continue
                if not e.retryable:
                    raise
            except httpx.TransportError:
                pass
            pause = backoff.next()
            if pause is None:
                raise ConnectionError(f"no progress on {p} for {self.retry_for} s")
            await asyncio.sleep(pause)

    async def follow_stream(self, run_id: str, key: str,
                            start: int = 0) -> AsyncIterator[Record]:
        """Every record from offset ``start`` in order, each once, until the close marker."""
        state: Dict[str, Any] = {"pos": str(start - 1) if start > 0 else None}
        nxt = start
        async for sse in self._resume(path(run_id, "streams", key), {}, state):
            if sse.event == "end":
                return
            if sse.id and sse.event in ("", "message"):
                off = int(sse.id)
                if off >= nxt:
                    nxt = off + 1
                    state["pos"] = sse.id
                    yield Record(off, decode(sse.data))

    async def watch_runs(self, tag: Optional[str] = None, workflow: Optional[str] = None,
                         status: Optional[str] = None, limit: Optional[int] = None,
                         since: Optional[str] = None) -> AsyncIterator[RunChange]:
        """The matching runs (once), then every start and status change, forever."""
        state: Dict[str, Any] = {"pos": since}
        params = list_params(tag, workflow, status, limit)
        async for sse in self._resume("/v1/workflows", params, state):
            change = run_change(sse.event, sse.data, sse.id)
            if change is not None:
                if sse.id:
                    state["pos"] = sse.id
                yield change
