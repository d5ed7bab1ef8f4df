"""Work split across forked processes, results back in order: the loader indexes the lines of
a large ndjson file (Loader._index_lines_forked), the row groups of a parquet file and chunks of
item files (Loader._load_files_forked) this way.

Indexing an item costs ~40 us of Python (parsing, making it servable, its columns, words and
footprint); one process indexes ~25k items a second at best. Each child, forked with the
loader's state as it is (scope, collections, rules), runs the loader's own code on its share of
the tasks (task i goes to child i % processes) and sends each task's result, pickled, through a
pipe of its own; this process takes them in task order, so what it makes of them is what one
process would have made. A child that dies ends the results early: the caller does the rest
itself. Children are killed once the caller stops reading (all done, or it stopped early).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pickle
import struct
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

LENGTH = struct.Struct("<Q")


def processes(setting: int) -> int:
    """The processes a setting asks for: 0 means one per core."""
    return setting if setting > 0 else (os.cpu_count() or 1)


_fork_safe: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def fork_safe(thread: threading.Thread) -> threading.Thread:
    """Mark ``thread`` as one a fork may leave behind: it holds no lock a forked child could
    want (e.g. it only reads a file and hashes it into an object of its own, as the snapshot's
    FollowingHash does while `index` loads). Returns it."""
    _fork_safe.add(thread)
    return thread


def forkable() -> bool:
    """Whether this process may fork workers: nothing but this thread running, or threads
    marked fork_safe (a fork copies no other thread and could inherit a lock one of them holds)."""
    if not hasattr(os, "fork"):
        return False
    me = threading.current_thread()
    return all(t is me or t in _fork_safe for t in threading.enumerate())


class forked_map(Iterator[Any]):  # noqa: N801 - used as the function it was: forked_map(...) then iterate
    """``work(task)`` of each task, in task order, computed by ``count`` children forked at once
    (the caller goes on meanwhile; iterating waits for each result); ends early (fewer results
    than tasks) if a child dies. ``close()`` kills and reaps the children: call it (e.g. with
    contextlib.closing) once done or given up."""

    def __init__(self, tasks: Sequence[T], count: int, work: Callable[[T], Any]) -> None:
        self.count = count = min(count, len(tasks))
        self.tasks = len(tasks)
        self.done = 0
        self.ended = False  # a child died
        self.pids: list[int] = []
        self.streams: list[io.BufferedReader] = []
        # one buffer for every result, grown as needed: a new one per result (MBs) is memory
        # the kernel hands out and zeroes page by page each time (unpickling copies out of it)
        self.buffer = bytearray()
        try:
            for k in range(count):
                self._fork(tasks[k::count], work)
        except BaseException:
            self.close()
            raise

    def _fork(self, tasks: Sequence[T], work: Callable[[T], Any]) -> None:
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError):  # a larger pipe: fewer hand-offs (Linux: F_SETPIPE_SZ)
            fcntl.fcntl(write_fd, 1031, 1 << 20)
        pid = os.fork()
        if pid == 0:  # the child: its tasks, then leave without running the parent's cleanup
            status = 1
            try:
                os.close(read_fd)
                for stream in self.streams:
                    stream.close()
                with os.fdopen(write_fd, "wb", buffering=1 << 16) as out:
                    for task in tasks:
                        payload = pickle.dumps(work(task), protocol=5)
                        out.write(LENGTH.pack(len(payload)))
                        out.write(payload)
                        out.flush()
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        self.pids.append(pid)
        self.streams.append(io.BufferedReader(io.FileIO(read_fd, "rb"), buffer_size=1 << 20))

    def __next__(self) -> Any:
        if self.done >= self.tasks or self.ended or not self.streams:
            raise StopIteration
        stream = self.streams[self.done % self.count]
        head = stream.read(LENGTH.size)
        if len(head) < LENGTH.size:
            self.ended = True  # the child died: no more results
            raise StopIteration
        (size,) = LENGTH.unpack(head)
        if len(self.buffer) < size:
            self.buffer = bytearray(size + size // 4)
        received = memoryview(self.buffer)[:size]
        if stream.readinto(received) < size:
            self.ended = True
            raise StopIteration
        self.done += 1
        return pickle.loads(received)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.streams = []
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)  # done or abandoned: either way it has nothing more to do
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids = []
