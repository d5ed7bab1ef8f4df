"""Freed heap memory handed back to the OS now (glibc's malloc_trim), where a peak is made
of it. glibc keeps freed blocks below its mmap threshold (which grows, up to 32 MB, with the
blocks freed) for reuse, so RSS counts them until something trims the heap: IndexBuilder.build
releases the builder's state part by part as the index takes shape, and without a trim between
the parts RSS only grew through the build (1M stac-geoparquet items: 699 -> 977 MiB, of which
~270 MiB freed blocks kept; the build's peak was the `index` command's: bench/README.md).
A no-op where the C library is not glibc."""

from __future__ import annotations

import ctypes
from typing import Any


def _malloc_trim() -> Any:
    try:
        return getattr(ctypes.CDLL("libc.so.6"), "malloc_trim", None)
    except OSError:  # not glibc
        return None


_TRIM = _malloc_trim()


def trim() -> None:
    """Hand the heap's free pages back to the OS (a few ms at a 1M build's heap)."""
    if _TRIM is not None:
        _TRIM(0)


def no_huge_pages() -> None:
    """numpy's large arrays (4 MB and more) no longer madvised for transparent huge pages, in
    this process and those it forks. Where the page cache holds most of the memory (a build
    reading gigabytes of catalogs and writing a snapshot as large: no free 2 MB block left),
    each such fault had the kernel compact memory first, mostly in vain: 0.34 of the 0.41 s of
    huge-page faults in a 1M ndjson build's serial tail (perf, bench/README.md, session 15),
    where 4 KB pages cost a few ms. A no-op where numpy has no such switch."""
    try:
        from numpy._core import multiarray  # noqa: PLC0415 (numpy's own switch: NUMPY_MADVISE_HUGEPAGE at import)
    except ImportError:
        return
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is not None:
        switch(False)
