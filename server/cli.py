"""`stac-static-api serve [ROOT ...] [--host HOST] [--port PORT]`: load, then listen."""

from __future__ import annotations

import argparse
import logging
import sys

from server import __version__
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
    serve.add_argument("--log-level", help="debug, info, warning, error")
    serve.add_argument("--reload-interval", type=float,
                       help="reload the catalogs every N seconds (SIGHUP and POST /_mgmt/reload also reload)")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        k: v for k, v in vars(args).items()
        if k in Settings.model_fields and v not in (None, [])
    }
    return Settings(**overrides)


def serve(settings: Settings) -> int:
    import uvicorn

    from server.app import create_app, load_options, roots_of
    from server.catalog.loader import LoadError, load_catalogs

    try:
        index, report = load_catalogs(roots_of(settings), load_options(settings))
    except LoadError as exc:
        print(f"stac-static-api: {exc}", file=sys.stderr)
        return 1
    print(f"stac-static-api: {report.summary()}", file=sys.stderr)
    app = create_app(settings, index=index)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return serve(settings)
    return 2
