"""The Python client against the real binary: producers, followers, resume across a
restart, the run list by tag, messages and errors (sync and async)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from flowgate_client import AsyncClient, Client, FlowgateError, Record


def test_produce_then_follow_wait_and_send(server):
    with Client(server.base) as fg:
        made = fg.create_run("job-1", tags=["batch:7"])
        assert made["created"] is True
        assert fg.get_run("job-1")["tags"] == ["batch:7"]
        assert fg.append("job-1", "log", ["a", {"b": 1}])["first_offset"] == 0
        assert fg.append("job-1", "log", [3])["first_offset"] == 2

        got = []

        def follow():
            got.extend(fg.follow_stream("job-1", "log"))

        t = threading.Thread(target=follow)
        t.start()
        time.sleep(0.3)
        fg.close_stream("job-1", "log")
        t.join(10)
        assert not t.is_alive(), "the follower ends at the close marker"
        assert got == [Record(0, "a"), Record(1, {"b": 1}), Record(2, 3)]
        assert list(fg.follow_stream("job-1", "log", start=2)) == [Record(2, 3)]

        threading.Timer(0.3, lambda: fg.set_event("job-1", "progress", 40)).start()
        ev = fg.wait_event("job-1", "progress", after=0, timeout=10)
        assert ev is not None and ev.value == 40 and ev.version >= 1
        assert fg.wait_event("job-1", "progress", after=ev.version, timeout=0.5) is None

        first = fg.send("job-1", "approval", {"ok": True}, idempotency_key="k1")
        again = fg.send("job-1", "approval", {"ok": True}, idempotency_key="k1")
        assert again["message_id"] == first["message_id"] and again["duplicate"] is True


def test_errors_name_status_code_and_field(server):
    with Client(server.base) as fg:
        with pytest.raises(FlowgateError) as e:
            fg.get_run("nope")
        assert (e.value.status, e.value.code) == (404, "run_not_found")
        with pytest.raises(FlowgateError) as e:
            fg.create_run("bad", tags=["has space"])
        assert (e.value.status, e.value.field) == (400, "tags")


def test_follow_resumes_across_a_server_restart(server):
    fg = Client(server.base)
    fg.create_run("r", tags=[])
    fg.append("r", "out", list(range(5)))
    got = []
    t = threading.Thread(target=lambda: got.extend(r.value for r in fg.follow_stream("r", "out")))
    t.start()
    deadline = time.monotonic() + 10
    while len(got) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == [0, 1, 2, 3, 4]
    server.restart()
    writer = Client(server.base)
    writer.append("r", "out", list(range(5, 10)))
    writer.close_stream("r", "out")
    t.join(30)
    assert not t.is_alive()
    assert got == list(range(10)), "nothing lost or repeated across the restart"
    fg.close()
    writer.close()


def test_watch_runs_by_tag_sees_matching_changes_only(server):
    with Client(server.base) as fg:
        fg.create_run("old", tags=["team"])
        changes = fg.watch_runs(tag="team")
        first = next(changes)
        assert first.kind == "runs" and [r["id"] for r in first.runs] == ["old"]
        fg.create_run("other")
        fg.create_run("new", tags=["team"])
        server.finish("other", "SUCCESS")
        server.finish("new", "SUCCESS")
        seen = []
        while ("new", "SUCCESS") not in seen:
            c = next(changes)
            seen.append((c.run["id"], c.run["status"]))
        assert all(i == "new" for i, _ in seen), seen
        position = c.position
        changes.close()

        # Resume from the last position: only what changed since.
        server.finish("old", "CANCELLED")
        resumed = fg.watch_runs(tag="team", since=position)
        c = next(resumed)
        assert (c.kind, c.run["id"], c.run["status"]) == ("run", "old", "CANCELLED")
        resumed.close()


def test_async_client_follows_and_watches(server):
    async def main():
        async with AsyncClient(server.base) as fg:
            await fg.create_run("a", tags=["x"])
            await fg.append("a", "s", [1, 2])
            runs = fg.watch_runs(tag="x")
            first = await runs.__anext__()
            assert first.kind == "runs"

            async def follow():
                return [r async for r in fg.follow_stream("a", "s")]

            task = asyncio.create_task(follow())
            await asyncio.sleep(0.2)
            await fg.append("a", "s", [3])
            await fg.close_stream("a", "s")
            assert [r.value for r in await asyncio.wait_for(task, 10)] == [1, 2, 3]

            server.finish("a", "ERROR")
            c = await asyncio.wait_for(runs.__anext__(), 10)
            assert (c.run["id"], c.run["status"]) == ("a", "ERROR")
            await runs.aclose()

            asyncio.get_running_loop().call_later(0.2, asyncio.ensure_future,
                                                  fg.set_event("a", "k", "v"))
            ev = await fg.wait_event("a", "k", timeout=10)
            assert ev is not None and ev.value == "v"

    asyncio.run(main())
