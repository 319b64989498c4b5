"""A real flowgate binary on a fresh database and a free port, restartable in place."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("FLOWGATE_BIN", str(ROOT / "target" / "debug" / "flowgate"))
ADMIN = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The binary on one database and port; :meth:`restart` keeps both."""

    def __init__(self, env: dict[str, str] | None = None):
        name = "fg_test_" + uuid.uuid4().hex
        subprocess.run(["psql", ADMIN, "-qc", f"CREATE DATABASE {name}"], check=True)
        self.db = ADMIN.rsplit("/", 1)[0] + "/" + name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = open(ROOT / "target" / f"pyclient-{name}.log", "wb")

    def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.db, "FLOWGATE_ADDR": f"127.0.0.1:{self.port}",
               "FLOWGATE_SHUTDOWN_DELAY": "0", "FLOWGATE_DRAIN_TIMEOUT": "2", **self.env}
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=self.log, stderr=self.log)
        for _ in range(200):
            assert self.proc.poll() is None, f"flowgate exited with {self.proc.returncode}"
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("flowgate never became ready")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def sql(self, query: str) -> str:
        out = subprocess.run(["psql", self.db, "-v", "ON_ERROR_STOP=1", "-Atqc", query],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def finish(self, run_id: str, status: str) -> None:
        """Sets a run's status the way another process would: update, then notify."""
        self.sql(f"UPDATE flowgate.workflows SET status = '{status}' WHERE id = '{run_id}';"
                 f" SELECT flowgate.notify('w', '{run_id}', '', 0)")


@pytest.fixture
def server():
    s = Server()
    s.start()
    yield s
    s.stop()
