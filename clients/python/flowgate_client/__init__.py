"""Produce to and follow flowgate runs from Python.

Sync (:class:`Client`) and async (:class:`AsyncClient`) clients with the same methods:
producers (create a run, append, set an event, close a stream, send a message) and
consumers (follow a stream, wait for an event, watch runs by tag) that resume after a
dropped connection or a server restart with nothing lost or repeated.
"""

from .errors import FlowgateError
from .types import Event, Record, RunChange
from .sync import Client
from .aio import AsyncClient

__all__ = ["Client", "AsyncClient", "FlowgateError", "Event", "Record", "RunChange"]
