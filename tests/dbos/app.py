"""A small DBOS app for flowgate's integration tests and bench.

It launches DBOS against DBOS_SYSTEM_DATABASE_URL (creating its system schema), prints
`launched`, then reads commands from stdin, one per line, and answers on stdout:

  start <workflow_id> <tokens> <delay_ms>   start the demo workflow; prints `started <id>`
  result <workflow_id>                      wait for it; prints `result <json>`
  bench <workflow_id> <n> <gap_ms>          bench workflow (write_stream + set_event, stamped)
  read <workflow_id> <key> <n>              DBOS.read_stream loop; prints `read <json list of
                                            (offset, seconds between value's stamp and read)>`
  getevent <workflow_id> <key> <n>          DBOS.get_event loop over versions; prints `getevent <json>`
  quit

Environment: FG_LISTEN_NOTIFY=0 launches with use_listen_notify=False.
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
def bench(n: int, gap_ms: int) -> int:
    for i in range(n):
        DBOS.write_stream("bench", {"i": i, "t": time.time()}, serialization_type=PORTABLE)
        DBOS.set_event("tick", {"i": i, "t": time.time()}, serialization_type=PORTABLE)
        time.sleep(gap_ms / 1000.0)
    DBOS.close_stream("bench")
    return n


def read_loop(wf: str, key: str, n: int) -> list:
    out = []
    for off, value in enumerate(DBOS.read_stream(wf, key)):
        out.append([off, time.time() - value["t"]])
        if len(out) >= n:
            break
    return out


def event_loop(wf: str, key: str, n: int) -> list:
    out, seen = [], -1
    deadline = time.time() + 120
    while len(out) < n and time.time() < deadline:
        v = DBOS.get_event(wf, key, timeout_seconds=5)
        if v is not None and v["i"] > seen:
            seen = v["i"]
            out.append([v["i"], time.time() - v["t"]])
    return out


def main() -> None:
    config: DBOSConfig = {
        "name": "flowgate-dbos-test",
        "system_database_url": os.environ["DBOS_SYSTEM_DATABASE_URL"],
        "use_listen_notify": os.environ.get("FG_LISTEN_NOTIFY", "1") != "0",
    }
    DBOS(config=config)
    DBOS.launch()
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
        elif cmd[0] == "read":
            print("read " + json.dumps(read_loop(cmd[1], cmd[2], int(cmd[3]))), flush=True)
        elif cmd[0] == "getevent":
            print("getevent " + json.dumps(event_loop(cmd[1], cmd[2], int(cmd[3]))), flush=True)
        elif cmd[0] == "quit":
            break
    DBOS.destroy()


if __name__ == "__main__":
    main()
