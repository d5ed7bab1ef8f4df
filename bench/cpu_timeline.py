"""Run a command and sample, every 0.5 s, the CPU time of its process (the loader) and of its
descendants (forked indexing children, live or reaped): where the loading process works alone.

    python bench/cpu_timeline.py python -m server index ROOT... -o F

prints (to stderr, after the command ends) a line per sample: seconds, cores used by the process
(L) and by its children (C), then the stretches where the children were idle, with the
process's CPU-s in each (issue 18: the build's serial path)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
IDLE = 0.05  # children below this many cores: the loader works alone


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _descendants(root: int) -> dict[int, int]:
    """CPU ticks (user + system) of each live descendant of ``root``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat(int(name))
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append((int(name), int(fields[11]) + int(fields[12])))
    out, stack = {}, [root]
    while stack:
        for pid, ticks in children.get(stack.pop(), []):
            out[pid] = ticks
            stack.append(pid)
    return out


def main() -> int:
    proc = subprocess.Popen(sys.argv[1:])
    started = time.time()
    rows: list[tuple[float, int, int]] = []
    while proc.poll() is None:
        time.sleep(0.5)
        try:
            fields = _stat(proc.pid)
        except OSError:
            break
        own, reaped = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        rows.append((time.time() - started, own, reaped + sum(_descendants(proc.pid).values())))
    code = proc.wait()
    last, alone, stretches = (0.0, 0, 0), None, []
    for at, own, kids in rows:
        span = max(at - last[0], 1e-6)
        loader, children = (own - last[1]) / HZ / span, max(kids - last[2], 0) / HZ / span
        print(f"{at:6.1f} L{loader:5.2f} C{children:5.2f}", file=sys.stderr)
        if children < IDLE:
            alone = alone or [last[0], at, 0.0]
            alone[1], alone[2] = at, alone[2] + loader * span
        elif alone:
            stretches.append(alone)
            alone = None
        last = (at, own, kids)
    stretches += [alone] if alone else []
    print("loader alone (from-to s: its CPU-s): " + " ".join(f"{a:.1f}-{b:.1f}: {c:.2f}" for a, b, c in stretches),
          file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
