"""The suite's slow, independent preparations, run in the background while the other tests run:

    python -m tests.prepare [container] [stac_browser] [pgstac]

- container: the container tests' base image (debootstrap) and the Dockerfile's image
  (tests/container_images.py), ~3.5 min cold, mostly downloads;
- stac_browser: STAC Browser's npm build (bench/stac_browser.py), ~3 min cold;
- pgstac: pypgstac's virtualenv (tests/test_pgstac_export.py), a pip install.

tests/conftest.py starts this when the session starts, for the test files the run selects;
the three run at once, each in a thread (they wait on their child processes). Each one does
what the test's own fixture would, under the same lock, and only when that test would run
(opted in, tools there): the fixture then waits for it and finds the result cached. A
preparation that fails only prints why; the test then does the work again and fails with the
reason itself. Prints one line per preparation: what it did and how long it took."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

Work = Callable[[], str]


# Each returns the work to do (run in a thread) or why there is none; they import in the main
# thread, one after the other (numpy's C extension does not take two threads importing it at once).


def container() -> Work | str:
    # test_container skips at import (pytest.skip at module level) when its tests would not run.
    import tests.test_container  # noqa: F401
    from tests.container_images import build_api_image, build_base_image

    def work() -> str:
        base = build_base_image()
        with tempfile.TemporaryDirectory(prefix="stac-static-api-prepare-") as folder:
            return build_api_image(base, Path(folder))

    return work


def stac_browser() -> Work | str:
    from tests.test_stac_browser import _missing

    missing = _missing()
    if missing is not None:
        return f"not needed: {missing}"
    from bench.stac_browser import build

    cache = Path(os.environ.get("STAC_BROWSER_CACHE") or Path.home() / ".cache" / "stac-static-api")

    def work() -> str:
        dist, times = build(cache)
        return f"{dist} ({times or 'reused'})"

    return work


def pgstac() -> Work | str:
    from tests.test_pgstac_export import postgres_bin, pypgstac_venv

    if postgres_bin() is None:
        return "not needed: no PostgreSQL with PostGIS"
    return lambda: str(pypgstac_venv())


PREPARATIONS: dict[str, Callable[[], Work | str]] = {"container": container, "stac_browser": stac_browser,
                                                     "pgstac": pgstac}


def _outcome(step: Callable[[], Work | str]) -> Work | str:
    try:
        return step()
    except BaseException as exc:  # pytest.skip/fail raise BaseException subclasses: reported, not raised
        return f"{type(exc).__name__}: {str(exc)[-2000:]}"


def _run(name: str, work: Work | str, started: float) -> None:
    outcome = work if isinstance(work, str) else _outcome(work)
    print(f"prepare {name}: {outcome} ({time.monotonic() - started:.1f} s)", flush=True)


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in PREPARATIONS]
    if unknown:
        print(f"unknown preparations {unknown}; known: {list(PREPARATIONS)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    works = {name: _outcome(PREPARATIONS[name]) for name in names}
    threads = [threading.Thread(target=_run, args=(name, work, started), name=name) for name, work in works.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
