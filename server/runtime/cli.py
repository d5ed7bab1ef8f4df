"""`stac-static-api serve [ROOT ...] [--host HOST] [--port PORT]`: load, then listen;
`index ROOT... -o SNAPSHOT`; `export ROOT... -o FILE.parquet|FILE.ndjson` (runtime/export.py).

The loading and serving modules are imported inside the commands, not at the top: `serve`
must cap malloc's arenas (limit_malloc_arenas) before numpy's import starts OpenBLAS's threads
and choose the metrics' mode before prometheus_client's import (metrics_mode), and `--help`
answers without loading numpy, shapely and the index."""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

from pydantic import ValidationError

from server import __version__
from server.runtime.stopping import stop_requested
from server.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stac-static-api", description="STAC API over static catalogs")
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="load catalogs and serve the STAC API")
    serve.add_argument("roots", nargs="*", metavar="ROOT",
                       help="catalog.json / collection.json / folder / item FeatureCollection or ndjson, "
                            "as a path or URL; none: the bundled sample catalog")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--base-url", help="public URL of the API, for the links it writes")
    serve.add_argument("--allow-host", action="append", dest="allow_hosts",
                       help="extra host the loader may fetch from (repeatable)")
    _add_href_arguments(serve, serve_assets=True)
    serve.add_argument("--log-level", help="debug, info, warning, error")
    serve.add_argument("--index", dest="index_file", metavar="FILE|URL",
                       help="start from this index snapshot (see `index`); with ROOTs, a stale one is rebuilt; "
                            "an http(s):// or s3:// URL is downloaded once to a local cache and revalidated at "
                            "each start and reload (no ROOTs then: a replica serves what the builder published)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes sharing one loaded index (forked after the load)")
    serve.add_argument("--watch-interval", type=float,
                       help="check the local catalog files every N seconds and reload when one changed")
    serve.add_argument("--reload-interval", type=float,
                       help="reload the catalogs every N seconds (SIGHUP and POST /_mgmt/reload also reload)")
    index = commands.add_parser("index", help="load catalogs and write an index snapshot for fast starts")
    index.add_argument("roots", nargs="*", metavar="ROOT", help="as for serve")
    index.add_argument("-o", "--output", required=True, metavar="FILE|s3://BUCKET/KEY",
                       help="snapshot file to write, or an s3:// object to upload it to (for replicas: "
                            "serve --index URL)")
    index.add_argument("--allow-host", action="append", dest="allow_hosts",
                       help="extra host the loader may fetch from (repeatable)")
    _add_href_arguments(index, serve_assets=True)
    index.add_argument("--log-level", help="debug, info, warning, error")
    export = commands.add_parser("export", help="load catalogs and write their items as stac-geoparquet or ndjson")
    export.add_argument("roots", nargs="*", metavar="ROOT", help="as for serve")
    export.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="FILE.parquet (stac-geoparquet) or FILE.ndjson (one item per line)")
    export.add_argument("--format", dest="export_format", choices=("parquet", "ndjson"),
                        help="the output's format when its name does not say it")
    export.add_argument("--allow-host", action="append", dest="allow_hosts",
                        help="extra host the loader may fetch from (repeatable)")
    _add_href_arguments(export, serve_assets=False)
    export.add_argument("--log-level", help="debug, info, warning, error")
    return parser


def _add_href_arguments(command: argparse.ArgumentParser, serve_assets: bool) -> None:
    command.add_argument("--public-href", action="append", dest="public_hrefs", metavar="SRC=DST",
                         help="serve hrefs starting with SRC (URL prefix, s3://bucket/prefix/ or local folder) "
                              "starting with DST, the public URL of the same place (repeatable; the longest SRC wins)")
    if serve_assets:
        command.add_argument("--serve-assets", action="store_true", default=None,
                             help="serve the files inside the local roots' folders at /_assets/{root}/{path} "
                                  "(HTTP ranges) and point local hrefs there")


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        k: v for k, v in vars(args).items()
        if k in Settings.model_fields and v not in (None, [])
    }
    return Settings(**overrides)


def _setting_error(error: Any) -> str:
    """One of pydantic's errors on a setting: its name, the reason, and the value when short."""
    reason = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, (str, int, float)) and len(str(value)) <= 200 and str(value) not in reason:
        reason += f" (given {value!r})"
    return f"{'.'.join(map(str, error['loc']))}: {reason}"


def _load(settings: Settings, index_file: str | None, remote_cache: Any = None, replica: Any = None,
          later: list[Any] | None = None) -> Any:
    """The index to serve (from ``replica``, a RemoteSnapshot, when given), its load counted in
    the metrics; ``later``: as _load_index's."""
    from server import metrics

    started = time.monotonic()
    try:
        index = replica.load() if replica is not None else _load_index(settings, index_file, remote_cache, later)
    except Exception:
        metrics.observe_load(False, time.monotonic() - started)
        raise
    metrics.observe_load(True, time.monotonic() - started)
    return index


def _load_index(settings: Settings, index_file: str | None, remote_cache: Any = None,
                later: list[Any] | None = None) -> Any:
    """The index to serve: from the snapshot when it is usable, else from the roots.

    A snapshot read from more than ``settings.start_check_files`` local files is served before
    they are checked when ``later`` is given (a list: the StartCheck the reloader runs once the
    server serves is appended): stat()ing them took 71-117 s at 4.05M files."""
    from server.catalog.configured import load_options, roots_of
    from server.catalog.loader import load_catalogs
    from server.index.index import degraded_reason
    from server.runtime.remote_snapshot import check_hrefs
    from server.runtime.snapshot import SnapshotError, read_snapshot, stale_reason, write_snapshot
    from server.runtime.start_check import StartCheck

    previous = None
    if index_file:
        try:
            index, header = read_snapshot(index_file, verify=False)
            index.version = 1  # a start's, whatever it was when written (a start check's reload rewrites it)
            files = len(index.fingerprint)
            background = later is not None and files > settings.start_check_files
            stale = None if background else stale_reason(index.fingerprint, header, index_file)
            if stale is not None:
                if settings.roots and _root_keys(settings.roots) == _root_keys(header["roots"]):
                    previous = index  # rebuilt below, reusing the items of unchanged files
                raise SnapshotError(stale)
            if not settings.roots:
                settings.roots = header["roots"]  # reloads re-read the snapshot's sources
            elif _root_keys(settings.roots) != _root_keys(header["roots"]):
                raise SnapshotError(f"{index_file} was built from {header['roots']}, not from the roots given")
            check_hrefs(index, settings, index_file)
            if later is not None and background:
                # the check holds the fingerprint and header, not the index a reload replaces
                fingerprint, path = index.fingerprint, index_file
                later.append(StartCheck(path, files, lambda: stale_reason(fingerprint, header, path, processes=1),
                                        index.version))
                print(f"stac-static-api: {index.size} items from snapshot {index_file}, served while its {files} "
                      f"source files are checked in the background (STAC_STATIC_START_CHECK_FILES="
                      f"{settings.start_check_files})", file=sys.stderr)
            else:
                print(f"stac-static-api: {index.size} items from snapshot {index_file}", file=sys.stderr)
            return index
        except SnapshotError as exc:
            if not settings.roots:
                raise
            print(f"stac-static-api: {exc}; rebuilding it from the roots", file=sys.stderr)
    options = load_options(settings, remote_cache)
    options.previous = previous
    index, report = load_catalogs(roots_of(settings), options)
    del previous, options  # its mapping goes with it
    print(f"stac-static-api: {report.summary()}", file=sys.stderr)
    degraded = degraded_reason(index.load_report) if index_file else None
    if degraded is not None:  # as `index` writes none: the next start would take it for complete
        print(f"stac-static-api: ERROR: {index_file} not rewritten: the index rebuilt from the roots is degraded "
              f"({degraded}); it is served, and the next start rebuilds it again", file=sys.stderr)
    elif index_file:
        try:
            write_snapshot(index_file, index, roots_of(settings))
        except OSError as exc:  # a read-only folder, a full disk: the rebuilt index serves all the same
            print(f"stac-static-api: WARNING: {index_file} not rewritten ({exc}): the index rebuilt from the roots "
                  "is served; the next start rebuilds it again (rebuild it with `index`)", file=sys.stderr)
    return index


def _root_keys(roots: list[str]) -> list[str]:
    """Roots as compared with a snapshot's: URLs as written, paths resolved."""
    return [root if "://" in root else os.path.realpath(root) for root in roots]


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and
    numpy temporaries of the threadpool's searches leave them holding freed memory: at 1M
    items under load, anonymous RSS grew 10% in 7 minutes with the default and 3.6% with two
    arenas, at the same requests/s (bench/load.py). Same as MALLOC_ARENA_MAX=2; a no-op
    where mallopt is not glibc's."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL(None).mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # server.metrics.MULTIPROCESS_ENV, named before it is imported


def metrics_mode(workers: int, enabled: bool) -> str | None:
    """Before prometheus_client is imported: under --workers (with metrics on), the library's
    multiprocess mode, in a private folder made here (returned: the caller removes it), whose
    files every worker writes and any worker's scrape reads; otherwise values in the process,
    whatever PROMETHEUS_MULTIPROC_DIR the environment had (its stale files would be summed)."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics' mode was chosen")
    os.environ.pop(MULTIPROCESS_ENV, None)
    if workers <= 1 or not enabled:
        return None
    folder = tempfile.mkdtemp(prefix="stac-static-api-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    return folder


def serve(settings: Settings, index_file: str | None = None, workers: int = 1) -> int:
    limit_malloc_arenas()  # before any thread exists
    folder = metrics_mode(workers, settings.metrics)
    try:
        return _serve(settings, index_file, workers)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _serve(settings: Settings, index_file: str | None, workers: int) -> int:
    import uvicorn

    # here, not at the top: `index` needs no HTTP server (uvicorn's import was ~0.11 of the
    # 0.30 CPU-s `index` spent importing before it could read a catalog, issue 18)
    from server.api.http_protocol import JsonErrorsProtocol
    from server.catalog.loader import LoadError
    from server.catalog.sources import RemoteCache
    from server.runtime.app import create_app
    from server.runtime.remote_snapshot import RemoteSnapshot, is_remote
    from server.runtime.snapshot import SnapshotError

    remote_cache = RemoteCache()
    replica = None
    if index_file and is_remote(index_file):
        if settings.roots:
            print(f"stac-static-api: --index {index_file} serves what its builder published: give the ROOTs to "
                  "the builder (`stac-static-api index ROOT... -o URL`), not to a replica", file=sys.stderr)
            return 2
        replica = RemoteSnapshot(index_file, settings)
    # A large snapshot's files are checked once it serves: by the one process, or with forked
    # workers by their supervisor (server.runtime.workers), which builds their reloads.
    later: list[Any] = []
    try:
        index = _load(settings, index_file, remote_cache, replica, later)
    except (LoadError, SnapshotError) as exc:
        print(f"stac-static-api: {exc}", file=sys.stderr)
        return 1
    app = create_app(settings, index=index, remote_cache=remote_cache, replica=replica, index_file=index_file)
    if later and workers <= 1:
        app.state.reloader.start_check = later[0]
    del index  # the app holds it; a reference here would keep it alive after a reload swaps it
    config = dict(
        http=JsonErrorsProtocol,
        # no WebSocket endpoint: a request asking to upgrade is answered as the HTTP request it
        # also is (with wsproto installed, uvicorn upgraded it and Starlette refused it with an
        # empty 403, qa19)
        ws="none",
        log_level=settings.log_level,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    if workers > 1:
        from server.runtime.workers import run_forked

        return run_forked(app, config, settings.host, settings.port, workers, later[0] if later else None)
    # One process, no supervisor of ours: whatever started it restarts it (README, Operations).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop_requested)
    uvicorn.run(app, host=settings.host, port=settings.port, **config)  # type: ignore[arg-type]
    return 0


def _load_roots(settings: Settings, spool: Any = None) -> tuple[Any, Any] | None:
    """The settings' catalogs loaded, with the summary said; None (and the reason said) when
    nothing could be loaded. ``spool``: the file the items' bytes go to as they are read."""
    from server.catalog.configured import load_options, roots_of
    from server.catalog.loader import LoadError, load_catalogs

    options = load_options(settings)
    options.item_spool = spool
    # a one-shot build may map its large ndjson files (a file truncated meanwhile kills it: SIGBUS)
    options.map_bulk = spool is not None
    try:
        index, report = load_catalogs(roots_of(settings), options)
    except LoadError as exc:
        print(f"stac-static-api: {exc}", file=sys.stderr)
        return None
    print(f"stac-static-api: {report.summary()}", file=sys.stderr)
    return index, report


def build_index(settings: Settings, output: str) -> int:
    from server.runtime.remote_snapshot import is_remote

    if not is_remote(output):
        return _build_index(settings, output)
    if not output.startswith("s3://"):
        print(f"stac-static-api: cannot upload to {output}: write a file (-o FILE) and upload it with your own "
              "tool, or give an s3:// URL", file=sys.stderr)
        return 2
    folder = tempfile.mkdtemp(prefix="stac-static-api-index-")
    try:
        local = os.path.join(folder, "index.snapshot")
        code = _build_index(settings, local)
        return code if code else _upload(local, output)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _upload(path: str, url: str) -> int:
    from server.catalog.sources import Fetcher, FetchError

    started = time.monotonic()
    try:
        with Fetcher(max_bytes=0) as fetcher:
            fetcher.upload(path, url)
    except FetchError as exc:
        print(f"stac-static-api: the snapshot was not published: {exc}", file=sys.stderr)
        return 1
    print(f"stac-static-api: uploaded it to {url} ({os.path.getsize(path)} bytes in {time.monotonic() - started:.1f} s)",
          file=sys.stderr)
    return 0


# A write's errors that mean the disk (or a quota, or RLIMIT_FSIZE) would not take the snapshot
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _build_index(settings: Settings, output: str) -> int:
    from server.catalog.configured import roots_of
    from server.index import heap
    from server.runtime.snapshot import SnapshotWriter

    # The items' bytes go into the snapshot as they are read: the build holds none of them.
    # A build stopped (SIGTERM, Ctrl-C) removes its half-written file: it may be most of a disk.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    heap.no_huge_pages()  # (its numpy arrays: faults that compacted memory in the build's tail)
    try:
        writer = SnapshotWriter(output)
    except OSError as exc:  # a folder missing or read-only, a full disk: said in a line, not a traceback
        print(f"stac-static-api: cannot write {output}: {exc.strerror or exc}; no snapshot written", file=sys.stderr)
        return 1
    try:
        loaded = _load_roots(settings, writer.spool)
        if loaded is None or loaded[1].degraded:
            writer.abort()
        else:
            header = writer.finish(loaded[0], roots_of(settings))
    except OSError as exc:
        writer.abort()
        if exc.errno not in WRITE_ERRNOS:
            raise
        # the disk (or a quota, a file size limit) filled under the snapshot: a line that says
        # so, not a traceback; the half-written file (most of the disk by then) is gone
        print(f"stac-static-api: cannot write {output}: {exc.strerror or exc} (the partial file {writer.tmp} is "
              "removed); no snapshot written", file=sys.stderr)
        return 1
    except BaseException:
        writer.abort()
        raise
    if loaded is None:
        return 1
    index, report = loaded
    # A snapshot without one of its roots, catalogs, collections or bulk files would be served
    # as if complete: every structural document not read fails the build.
    if report.degraded:
        for skipped in report.structure_skips:
            held = f" ({skipped.items} item links)" if skipped.items is not None else ""
            role = "root " if skipped.location in set(report.roots) else ""
            print(f"stac-static-api: {role}{skipped.location} not loaded{held}: {skipped.reason}", file=sys.stderr)
        print("stac-static-api: no snapshot written", file=sys.stderr)
        return 1
    print(f"stac-static-api: wrote {output} ({header['items']} items, {header['local_files']} local files)",
          file=sys.stderr)
    return 0


def export_items(settings: Settings, output: str, fmt: str | None = None) -> int:
    try:
        from server.runtime.export import ExportError, export
    except ImportError as exc:
        print(f"stac-static-api: export needs the parquet extra (pip install 'stac-static-api[parquet]'): {exc}",
              file=sys.stderr)
        return 1
    # A file read elsewhere has no API to serve its assets: their hrefs stay relative (or mapped).
    loaded = _load_roots(settings.model_copy(update={"serve_assets": False}))
    if loaded is None:
        return 1
    try:
        written = export(loaded[0], output, fmt)
    except ExportError as exc:
        print(f"stac-static-api: {exc}", file=sys.stderr)
        return 1
    print(f"stac-static-api: wrote {written} items to {output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:  # a flag or STAC_STATIC_* variable: its reason, not a traceback
        parser.exit(2, f"{parser.prog}: invalid setting: {'; '.join(map(_setting_error, exc.errors()))}\n")
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return serve(settings, args.index_file, args.workers)
    if args.command == "index":
        return build_index(settings, args.output)
    if args.command == "export":
        return export_items(settings, args.output, args.export_format)
    return 2
