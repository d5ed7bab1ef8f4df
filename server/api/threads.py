"""Work handed to a worker thread, one of the app's search threads at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

T = TypeVar("T")


async def in_thread(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a worker thread, once one of the app's search threads is free (the rest
    wait without holding the GIL; STAC_STATIC_SEARCH_THREADS)."""
    async with request.app.state.search_threads:
        return await run_in_threadpool(fn, *args)
