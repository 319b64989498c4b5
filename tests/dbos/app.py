"""A small DBOS app for flowgate's integration tests and bench.

It launches DBOS against DBOS_SYSTEM_DATABASE_URL (creating its system schema), prints
`launched`, then reads commands from stdin, one per line, and answers on stdout:

  start <workflow_id> <tokens> <delay_ms>   start the demo workflow; prints `started <id>`
  result <workflow_id>                      wait for it; prints `result <json>`
  bench <workflow_id> <n> <gap_ms>          bench workflow: after a "go" message, n times
                                            write_stream("bench") and set_event("tick_<i>"),
                                            each value stamped with time.time()
  quit

Environment: FG_LISTEN_NOTIFY=0 launches with use_listen_notify=False. FG_MODE=client runs
DBOS's own client instead (no launch): `measure <workflow_id> <n>` reads the bench workflow
with DBOSClient.read_stream and DBOSClient.get_event and prints `measured <json>`.
Every value is written with portable serialization, except the `pickled` event, which uses
DBOS's default (py_pickle) on purpose.
"""

import json
import os
import sys
import time

from dbos import DBOS, DBOSConfig, SetWorkflowID, WorkflowSerializationFormat

PORTABLE = WorkflowSerializationFormat.PORTABLE
NATIVE = WorkflowSerializationFormat.NATIVE


@DBOS.workflow(serialization_type=PORTABLE)
def demo(n: int, delay_ms: int) -> dict:
    DBOS.set_event("pickled", {"secret": 1}, serialization_type=NATIVE)
    DBOS.set_event("status", "running", serialization_type=PORTABLE)
    for i in range(n):
        DBOS.write_stream("output", f"tok{i} ", serialization_type=PORTABLE)
        DBOS.set_event("progress", (i + 1) * 100 // n, serialization_type=PORTABLE)
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
    DBOS.close_stream("output")
    DBOS.set_event("status", "waiting", serialization_type=PORTABLE)
    DBOS.set_event("request", {"title": "Ship it?"}, serialization_type=PORTABLE)
    approval = DBOS.recv("approval", timeout_seconds=120)
    DBOS.set_event("decision", approval, serialization_type=PORTABLE)
    # A second recv proves the approval was delivered once: it must time out.
    again = DBOS.recv("approval", timeout_seconds=0.5)
    DBOS.set_event("status", "done", serialization_type=PORTABLE)
    return {"approval": approval, "again": again}


@DBOS.workflow(serialization_type=PORTABLE)
def greet(name: str, punctuation: str = "!") -> dict:
    DBOS.write_stream("output", f"hello {name}{punctuation}", serialization_type=PORTABLE)
    DBOS.close_stream("output")
    return {"hello": name}


@DBOS.workflow(serialization_type=PORTABLE)
def bench(n: int, gap_ms: int) -> dict:
    # Waits for "go" so that every reader is attached before the first write. Each value
    # carries the time just before its write; the output lists the time each write returned
    # (committed), so readers can measure from either.
    DBOS.recv("go", timeout_seconds=120)
    done = {"stream": [], "events": []}
    for i in range(n):
        DBOS.write_stream("bench", {"i": i, "t": time.time()}, serialization_type=PORTABLE)
        done["stream"].append(time.time())
        DBOS.set_event(f"tick_{i}", {"i": i, "t": time.time()}, serialization_type=PORTABLE)
        done["events"].append(time.time())
        time.sleep(gap_ms / 1000.0)
    DBOS.close_stream("bench")
    return done


def measure(client, wf: str, n: int) -> dict:
    """DBOS's own readers, concurrently: a read_stream loop and a get_event per tick.
    Each sample is [i, the value's stamp, the moment the reader has it], in epoch ms."""
    import threading

    out = {"read_stream": [], "get_event": []}

    def reader():
        for value in client.read_stream(wf, "bench"):
            out["read_stream"].append([value["i"], value["t"] * 1000.0, time.time() * 1000.0])
            if len(out["read_stream"]) >= n:
                break

    def events():
        for i in range(n):
            v = client.get_event(wf, f"tick_{i}", timeout_seconds=30)
            if v is not None:
                out["get_event"].append([v["i"], v["t"] * 1000.0, time.time() * 1000.0])

    threads = [threading.Thread(target=reader), threading.Thread(target=events)]
    for t in threads:
        t.start()
    print("measuring", flush=True)
    for t in threads:
        t.join()
    return out


def client_main(url: str) -> None:
    """FG_MODE=client: DBOS's own client (LISTEN/NOTIFY on), no workflows of its own."""
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=url, use_listen_notify=True)
    print("launched", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "measure":
            print("measured " + json.dumps(measure(client, cmd[1], int(cmd[2]))), flush=True)
        elif cmd and cmd[0] == "quit":
            break
    client.destroy()


def main() -> None:
    if os.environ.get("FG_MODE") == "client":
        client_main(os.environ["DBOS_SYSTEM_DATABASE_URL"])
        return
    config: DBOSConfig = {
        "name": "flowgate-dbos-test",
        "system_database_url": os.environ["DBOS_SYSTEM_DATABASE_URL"],
        "use_listen_notify": os.environ.get("FG_LISTEN_NOTIFY", "1") != "0",
    }
    DBOS(config=config)
    DBOS.launch()
    # flowgate starts `greet` on this queue through dbos.enqueue_workflow.
    DBOS.register_queue("flowgate", polling_interval_sec=0.1)
    print("launched", flush=True)
    handles = {}
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "start":
            wf, n, delay = cmd[1], int(cmd[2]), int(cmd[3])
            with SetWorkflowID(wf):
                handles[wf] = DBOS.start_workflow(demo, n, delay)
            print(f"started {wf}", flush=True)
        elif cmd[0] == "bench":
            wf, n, gap = cmd[1], int(cmd[2]), int(cmd[3])
            with SetWorkflowID(wf):
                handles[wf] = DBOS.start_workflow(bench, n, gap)
            print(f"started {wf}", flush=True)
        elif cmd[0] == "result":
            print("result " + json.dumps(handles[cmd[1]].get_result()), flush=True)
        elif cmd[0] == "quit":
            break
    DBOS.destroy()


if __name__ == "__main__":
    main()
