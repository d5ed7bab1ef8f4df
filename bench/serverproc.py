"""Starting, polling and stopping servers for the benchmark scripts (load.py, starvation.py,
throughput.py, peers.py); not a benchmark itself.

Every server runs in its own session, so it and whatever it forks (workers, a reload's build
process) form one process group that ``stop`` ends by the PID this script started, never by
name. Only loopback (127.0.0.1) is used.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# loopback never goes through a proxy, whatever http_proxy says
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A loopback port free now, for a benchmark's servers and the tests' (tests.helpers takes
    this one). Under pytest-xdist (the README's test command; a test that runs a benchmark's
    servers, its script too, inherits the variables), worker k of n only takes ports p with
    p // 2 % n == k: two workers never pick the same one for servers they are about to start,
    whose readiness probe could otherwise reach the other worker's. (p // 2: Linux hands out
    odd ports for bind(0), keeping the even ones for connect().)"""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if count <= 1 or port // 2 % count == index % count:
            return port
    raise RuntimeError(f"no free port p with p // 2 % {count} == {index}")


def clean_env(extra: Mapping[str, str], drop: tuple[str, ...] = ("STAC_STATIC_",)) -> dict[str, str]:
    """This process's environment without the variables whose names start with ``drop``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def spawn(cmd: Sequence[str], *, cwd: str, env: Mapping[str, str] | None = None,
          log: str | None = None) -> subprocess.Popen:
    """Start ``cmd`` in a new session; stdout and stderr go to the file ``log`` (truncated)
    when given, else to this process's. ``env`` is the child's whole environment (None: ours)."""
    if log is None:
        return subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def start_server(roots: Sequence[str], port: int, *, index: str | None = None, workers: int | None = None,
                 env: Mapping[str, str] | None = None, log: str | None = None,
                 python: str = sys.executable) -> subprocess.Popen:
    """``python -m server serve ROOTS... --port PORT --log-level warning [--index INDEX]
    [--workers WORKERS]`` from the repository root, in its own session (see ``spawn`` for
    ``env`` and ``log``)."""
    cmd = [python, "-m", "server", "serve", *roots, "--port", str(port), "--log-level", "warning"]
    if index:
        cmd += ["--index", index]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return spawn(cmd, cwd=REPO, env=env, log=log)


def wait_ready(port: int, proc: subprocess.Popen, timeout: float, path: str = "/", *,
               interval: float = 0.2, request_timeout: float = 2) -> float:
    """Poll GET ``path`` on 127.0.0.1:``port`` until it answers 200; return the seconds it took.
    Raises RuntimeError if ``proc`` exits first or ``timeout`` seconds pass."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=request_timeout) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except (OSError, http.client.HTTPException):  # not listening yet, or not answering 200
            pass
        time.sleep(interval)
    raise RuntimeError(f"not ready after {timeout} s")


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a server this script started: SIGTERM to its process group, by PID, then SIGKILL
    if it has not exited after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
