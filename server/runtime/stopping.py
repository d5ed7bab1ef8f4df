"""How a serving process stops: a bounded grace for in-flight requests, and a signal handler
that makes a requested stop (SIGTERM, SIGINT) exit 0. Shared by `serve` and its forked workers."""

from __future__ import annotations

from typing import Any

# Seconds uvicorn lets in-flight requests finish after SIGTERM/SIGINT before cancelling
# them: without a bound, one slow client (a body that never ends, a response it does not
# read) would hold the stop forever.
SHUTDOWN_GRACE_SECONDS = 5.0


def stop_requested(signum: int, frame: Any) -> None:
    """SIGTERM/SIGINT handler once serving. uvicorn replaces it while it runs, shuts down on
    either signal, then restores it and raises the signal again: ending as a KeyboardInterrupt
    (which uvicorn.run catches) makes a requested stop exit 0 rather than die by the signal."""
    raise KeyboardInterrupt
