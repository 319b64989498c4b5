"""What consumers yield, and the small request/resume helpers both clients share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional
from urllib.parse import quote

FINISHED = ("SUCCESS", "ERROR", "CANCELLED")


@dataclass(frozen=True)
class Record:
    """One stream record."""

    offset: int
    value: Any


@dataclass(frozen=True)
class Event:
    """An event's value and version."""

    key: str
    value: Any
    version: int


@dataclass(frozen=True)
class RunChange:
    """From :meth:`Client.watch_runs`: ``kind`` is ``"runs"`` (the current list, in
    ``runs``) or ``"run"`` (one run started or changed status, in ``run``). ``position``
    resumes the watch after this item (``None`` while more of one transaction follows)."""

    kind: str
    position: Optional[str]
    run: Optional[Dict[str, Any]] = None
    runs: List[Dict[str, Any]] = field(default_factory=list)


def path(*parts: str) -> str:
    """``/v1/workflows/<a>/<b>…`` with each part percent-encoded."""
    return "/v1/workflows" + "".join("/" + quote(p, safe="") for p in parts)


def decode(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def run_change(event: str, data: str, event_id: str) -> Optional[RunChange]:
    """A live-list SSE event as a :class:`RunChange` (``None`` for anything else)."""
    pos = event_id or None
    if event == "runs":
        return RunChange("runs", pos, runs=decode(data).get("runs", []))
    if event == "run":
        return RunChange("run", pos, run=decode(data))
    return None


def list_params(tag: Optional[str], workflow: Optional[str], status: Optional[str],
                limit: Optional[int]) -> Dict[str, str]:
    q = {"tag": tag, "workflow": workflow, "status": status,
         "limit": None if limit is None else str(limit)}
    return {k: v for k, v in q.items() if v is not None}


class Backoff:
    """Pauses between reconnects: doubling from 0.1 s to ``cap``; gives up once ``budget``
    seconds pass without progress (``None`` = never)."""

    def __init__(self, budget: Optional[float], cap: float = 5.0):
        import time

        self._time = time.monotonic
        self.budget = budget
        self.cap = cap
        self.reset()

    def reset(self) -> None:
        self.delay = 0.1
        self.since = self._time()

    def next(self) -> Optional[float]:
        """The pause before the next try, or ``None`` to give up."""
        if self.budget is not None and self._time() - self.since > self.budget:
            return None
        d = self.delay
        self.delay = min(self.delay * 2, self.cap)
        return d
