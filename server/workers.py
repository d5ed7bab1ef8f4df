"""`serve --workers N`: load once, then fork N uvicorn workers on one listening socket.

Forking after the load shares the index among workers copy-on-write: its bulk is in
numpy arrays and byte buffers that no worker writes, and gc.freeze() keeps the cyclic
collector from touching (and so copying) the pages of the Python objects that remain.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from typing import Any

import uvicorn


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are
    # TCP, and without it Nagle's algorithm holds small responses back ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_forked(app: Any, config_kwargs: dict[str, Any], host: str, port: int, workers: int) -> int:
    sock = listening_socket(host, port)
    gc.collect()
    gc.freeze()
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            server = uvicorn.Server(uvicorn.Config(app, **config_kwargs))
            try:
                server.run(sockets=[sock])
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    print(f"stac-static-api: {workers} workers on http://{host}:{port}", file=sys.stderr)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid in children:
            children.remove(pid)
            status = status or os.waitstatus_to_exitcode(code)
            forward(signal.SIGTERM, None)  # one worker gone: stop the rest, let a supervisor restart
    return status
