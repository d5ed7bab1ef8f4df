"""`serve` as a real process: SIGTERM/SIGINT stop it with exit status 0 within seconds, even
while a request is stuck."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator

import httpx
import pytest

from tests.helpers import REPO, free_port, server_env

START_TIMEOUT = 30.0


class Server:
    """`python -m server serve ROOT --workers N` in a subprocess, its output in a file."""

    def __init__(self, roots: list[str], *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.output = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", *roots, "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", *args],
            cwd=REPO, env=server_env(), stdout=self.output, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}:\n{self.log()}"
            try:
                if httpx.get(self.base + "/_mgmt/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server not ready:\n{self.log()}"
            time.sleep(0.1)

    def log(self) -> str:
        self.output.flush()
        self.output.seek(0)
        return self.output.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.output.close()


@pytest.fixture
def start() -> Iterator[Any]:
    servers: list[Server] = []

    def start(roots: list[str] = (), *args: str) -> Server:
        servers.append(Server(list(roots), *args))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def send_stuck_request(base: str) -> socket.socket:
    """A POST /search whose body never ends: uvicorn's shutdown waits for it unless bounded."""
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"limit\": ")
    return sock


@pytest.mark.parametrize("workers", ["1"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_stop_the_server_with_status_0(start: Any, workers: str, signum: int) -> None:
    server = start([], "--workers", workers)
    stuck = send_stuck_request(server.base)
    time.sleep(0.5)  # the request has reached a worker
    asked = time.monotonic()
    server.proc.send_signal(signum)
    try:
        code = server.proc.wait(timeout=15)  # SHUTDOWN_GRACE_SECONDS (5) and some
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 15 s after {signal.Signals(signum).name}:\n{server.log()}")
    finally:
        stuck.close()
    assert code == 0, server.log()
    assert time.monotonic() - asked < 12
    assert "KeyboardInterrupt" not in server.log(), server.log()
