"""How a serving process stops: a signal handler that makes a requested stop (SIGTERM, SIGINT)
exit 0, once uvicorn has given the requests in flight their grace (the setting
shutdown_grace_seconds, STAC_STATIC_SHUTDOWN_GRACE_SECONDS, passed to uvicorn as
timeout_graceful_shutdown). Shared by `serve` and its forked workers."""

from __future__ import annotations

from typing import Any


def stop_requested(signum: int, frame: Any) -> None:
    """SIGTERM/SIGINT handler once serving. uvicorn replaces it while it runs, shuts down on
    either signal, then restores it and raises the signal again: ending as a KeyboardInterrupt
    (which uvicorn.run catches) makes a requested stop exit 0 rather than die by the signal."""
    raise KeyboardInterrupt
