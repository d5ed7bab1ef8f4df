"""Every setting of the server, its default and its help text, in one place.

Values come from keyword arguments (the CLI), then environment variables prefixed
``STAC_STATIC_`` (e.g. ``STAC_STATIC_MAX_LIMIT=500``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# "SRC=DST": split at the first "=" that a URL scheme follows (a SRC may hold "=", a DST is a URL).
_PUBLIC_HREF = re.compile(r"(?P<source>.+?)=(?P<public>[A-Za-z][A-Za-z0-9+.-]*://.+)")


def public_href_pair(text: str) -> tuple[str, str]:
    """(SRC, DST) of one ``SRC=DST`` mapping, SRC a local folder made absolute; ValueError with
    the reason for anything else."""
    match = _PUBLIC_HREF.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"public href {text!r} is not SRC=DST with DST a URL (e.g. http://bucket/=https://data.example.org/)")
    source, public = match["source"].strip(), match["public"].strip()
    if "://" not in source:  # a local folder: absolute, and matched by whole folders
        if source.startswith("file:"):
            raise ValueError(f"public href {text!r}: write a local folder as a path, not a file: URL")
        source = os.path.join(os.path.abspath(source), "")
        public = public if public.endswith("/") else public + "/"
    return source, public


@dataclass(frozen=True)
class RequestLimits:
    """Each keeps one request's work bounded; going over is a 400 that says so (settings
    STAC_STATIC_MAX_IDS, _MAX_COLLECTIONS, _MAX_VERTICES)."""

    max_ids: int = 10_000
    max_collections: int = 10_000
    max_vertices: int = 20_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STAC_STATIC_", extra="ignore")

    roots: list[str] = Field(
        default_factory=list,
        description="Catalog roots: paths or http(s) URLs of catalog.json, collection.json, "
        "a folder, an item FeatureCollection or ndjson file. Empty: the bundled sample catalog.",
    )
    public_hrefs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SRC=DST: hrefs starting with SRC (a URL prefix such as http://bucket/ or s3://bucket/prefix/, "
        "or a local folder, absolute or relative to the working directory) are served starting with DST instead, "
        "the public URL of the same place; the longest SRC wins. Env: a JSON list, or SRC=DST pairs separated by "
        "commas.",
    )
    serve_assets: bool = Field(
        False, description="Serve the files inside the local roots' folders at /_assets/{root}/{path} (HTTP range "
        "requests for GDAL/rasterio) and point local asset and link hrefs there.",
    )
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, description="Port to listen on.")
    base_url: str | None = Field(
        None,
        description="Public URL of the API (e.g. https://example.com/stac). When unset, links "
        "are built from the request and X-Forwarded-*/Forwarded headers.",
    )
    title: str = Field("stac-static-api", description="Landing page title when the root has none.")
    description: str = Field(
        "STAC API over static catalogs", description="Landing page description when the root has none."
    )
    api_id: str = Field("stac-static-api", description="Landing page id when the root has none.")
    default_limit: int = Field(10, ge=1, description="Page size when a request gives no limit.")
    max_limit: int = Field(10000, ge=1, description="Largest page size; larger limits are clamped.")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Extra hosts the loader may fetch from, beyond the roots' own origins.",
    )
    bucket_listings: list[str] = Field(
        default_factory=list,
        description="URLs of S3-style bucket endpoints (path-style https://HOST/BUCKET/ or virtual-host "
        "https://BUCKET.HOST/) whose item documents a reload checks with one ListObjectsV2 listing "
        "(GET URL?list-type=2&prefix=..., 1,000 keys a request) instead of a conditional request each: "
        "a document whose listed ETag is the MD5 of the bytes read before is unchanged. An endpoint "
        "that answers no listing (403, 404, not XML) is logged and its documents fetched as usual.",
    )
    listing_timeout: float = Field(300.0, gt=0, description="Seconds one bucket listing of a reload (an "
                                   "endpoint's, an S3 prefix's) may take in all, however slowly its pages "
                                   "arrive (fetch_timeout bounds each read); past it, logged, its documents are "
                                   "fetched as without a listing.")
    allow_outside_root: bool = Field(
        False, description="Let local catalogs follow links outside the root's folder."
    )
    max_document_bytes: int = Field(
        32 * 1024 * 1024, description="Larger item documents (reached through an item link) are skipped."
    )
    max_structure_bytes: int | None = Field(
        None, ge=1, description="Larger catalogs, collections and bulk item files (roots and child links) are "
        "not read, an error (/_mgmt/ready: degraded). Unset: an eighth of physical memory, 256 MiB to 8 GiB "
        "(a link list takes ~4x its size once parsed); never below max_document_bytes. A configured root may "
        "always be 8 GiB.",
    )
    max_documents: int = Field(5_000_000, description="Stop loading after this many documents.")
    max_depth: int = Field(64, description="Deepest catalog nesting followed.")
    fetch_concurrency: int = Field(32, ge=1, description="Documents fetched at once while loading (at the start, "
                                   "with libcurl; the urllib3 and S3 paths keep this many).")
    fetch_max_concurrency: int = Field(256, ge=1, description="With libcurl, remote documents in flight grow from "
                                       "fetch_concurrency up to this while documents/s grows, and halve on "
                                       "429/502-504/timeouts/dropped connections.")
    index_processes: int = Field(0, ge=0, description="Processes that read and index local item files (2,000 "
                                 "or more), the lines of a large ndjson file, or the row groups of a local "
                                 "stac-geoparquet file (1 MiB or more), at once, "
                                 "forked by the loading one, which appends their results in order (the same "
                                 "index); 0: one per core, 1: the loading process only.")
    fetch_timeout: float = Field(20.0, description="Seconds per remote request.")
    fetch_retries: int = Field(3, ge=0, description="Retries of a remote request on timeout/429/5xx.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies trusted for X-Forwarded-* headers (uvicorn's setting)."
    )
    log_level: str = Field("info", description="Logging level.")
    reload_interval: float = Field(0.0, ge=0, description="Reload the catalogs every N seconds (0: never). "
                                   "SIGHUP and POST /_mgmt/reload reload at any time.")
    reload_in_child: bool = Field(True, description="Build reloaded indexes in a child process, which "
                                  "writes a snapshot the server maps (the build neither competes with "
                                  "requests for the GIL nor leaves garbage in the server's heap); false: in "
                                  "a thread of the server.")
    reload_unreadable_seconds: float = Field(
        3600.0, ge=0, description="A catalog, collection or bulk file the serving index read that reloads cannot "
        "read (an error status past the retries, the network, a file half written; not gone) fails every reload "
        "for up to this many seconds after the first that could not (the previous index serves, which has what "
        "is under it); a reload past that goes ahead without it, served degraded as one gone (a document broken "
        "for good would otherwise hold back every other change). 0: at once; inf: never.")
    response_cache_bytes: int = Field(64 * 1024 * 1024, ge=0, description="Memory for cached GET response "
                                      "bodies, keyed by index version and URL (0: no cache).")
    match_cache_bytes: int = Field(64 * 1024 * 1024, ge=0, description="Memory for the matches of recent "
                                   "searches, so the next pages of a search cost no search (0: none).")
    gzip_min_bytes: int = Field(4096, ge=0, description="Responses of at least this many bytes are gzipped for "
                                "clients that accept it (level 1: ~3 us per KB, ~10x smaller JSON; 0: never).")
    cache_max_age: int = Field(30, ge=0, description="Cache-Control max-age (seconds) on GET responses; "
                               "clients and CDNs revalidate with the ETag after it.")
    watch_interval: float = Field(0.0, ge=0, description="Check the local files read at the last load every "
                                  "N seconds (size, mtime) and reload when one changed (0: never).")
    start_check_files: int = Field(
        100_000, ge=0, description="`serve --index FILE`: a snapshot read from at most this many local files is "
        "checked (each file's size and mtime) before serving; a larger one is served at once and checked in the "
        "background, and reloaded from its roots when a file changed (1M files: 3.8 CPU-s, 6-12 s under load; "
        "4.05M: 71-117 s; 0: always in the background).")
    start_check_retry_seconds: float = Field(
        30.0, gt=0, description="A reload started by the background start check that fails is retried after "
        "this many seconds, then twice as long each time (the stale snapshot stays served meanwhile).")
    start_check_retries: int = Field(5, ge=0, description="How many times that reload is retried before the "
                                     "server gives up (logged; /_mgmt/ready keeps reporting the snapshot stale).")
    shutdown_grace_seconds: float = Field(
        5.0, ge=0, le=3600, allow_inf_nan=False,
        description="Seconds the requests in flight get to finish once SIGTERM or SIGINT asks the server to stop "
        "(uvicorn's timeout_graceful_shutdown); then they are cancelled and it exits 0. Without a bound one slow "
        "client (a body that never ends, a response it does not read) would hold the stop forever. Under "
        "Kubernetes, below the pod's terminationGracePeriodSeconds (30 by default; SIGKILL after it); with "
        "--workers the parent kills a worker still running 5 s past it. 0: cancelled at once.")
    query_time_budget: float = Field(10.0, gt=0, description="Seconds a search may run before it stops with "
                                     "a 400 asking to narrow it.")
    max_request_bytes: int = Field(1024 * 1024, ge=1024, description="Largest POST body; larger ones get a 413.")
    parquet_assets: bool = Field(
        True, description="Load a collection's stac-geoparquet asset (type application/vnd.apache.parquet, or "
        "key geoparquet-items) as that collection's items.")
    search_threads: int = Field(
        1, ge=1, description="Searches, large parses and large pages run at once in worker threads (the rest wait "
        "their turn). One keeps a core for the event loop: under 8 clients of hostile requests /_mgmt/health's "
        "p99 was 69 ms with 1, 125 ms with 2 (2 cores); more cores are better used by --workers.")
    max_header_bytes: int = Field(64 * 1024, ge=1024, description="Most bytes of request header fields in all "
                                  "(as sent, names and values); more is a 431. Above what proxies pass by "
                                  "default (nginx: 8 KiB a line, 32 KiB in all).")
    max_ids: int = Field(RequestLimits.max_ids, ge=1, description="Most ids in one search.")
    max_collections: int = Field(RequestLimits.max_collections, ge=1, description="Most collections in one search.")
    max_vertices: int = Field(RequestLimits.max_vertices, ge=4, description="Most vertices in an intersects geometry.")
    index_cache_dir: str | None = Field(
        None, description="Folder of the local copies of index snapshots served from a URL (`serve --index "
        "http(s)://... or s3://...`), each checked before it replaces the previous copy and revalidated with a "
        "conditional request at each start and reload. Unset: stac-static-api/indexes in $XDG_CACHE_HOME, "
        "else in ~/.cache (the container image: /tmp/stac-static-api).",
    )
    admin_token: str | None = Field(None, description="Bearer token for POST /_mgmt/reload; unset disables it.")
    metrics: bool = Field(True, description="Serve Prometheus metrics at GET /_mgmt/metrics (requests, latency, "
                          "the response cache, the index, loads, remote fetches); false: a 404 there, and no "
                          "request is measured.")
    html_page_items: int = Field(
        1000, ge=1, description="Items on one page of search results for a browser (HTML): a larger limit shows "
        "this many and links the next page (limit=10000 was a 7.6 MB page); JSON answers give the limit asked for.")
    html_tiles: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Background tiles of the pages' maps, a URL template ({z}/{x}/{y}) the browser fetches; "
        "empty: no basemap (footprints still draw).",
    )
    html_tiles_attribution: str = Field(
        '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        description="Attribution shown on the maps for html_tiles (HTML).",
    )

    @field_validator("public_hrefs", mode="before")
    @classmethod
    def _public_hrefs_list(cls, value: Any) -> Any:
        """The environment's text: a JSON list, or SRC=DST pairs separated by commas (for
        compose files); each pair is checked here, so a mistake stops the start."""
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("["):
                try:
                    return ["=".join(public_href_pair(p.strip())) for p in text.split(",") if p.strip()]
                except ValueError as exc:
                    if "," not in text:
                        raise
                    raise ValueError(f"{exc}; the pairs are separated by commas: a URL holding a comma, write it "
                                     f'as a JSON list (["SRC=DST", ...])') from None
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{text!r} is not a JSON list of SRC=DST strings ({exc})") from None
        if isinstance(value, list) and all(isinstance(pair, str) for pair in value):
            # kept as "SRC=DST" with a local SRC made absolute: the value a reload's child process
            # and a snapshot's check see does not depend on the working directory
            return ["=".join(public_href_pair(pair)) for pair in value]
        return value

    @field_validator("bucket_listings")
    @classmethod
    def _bucket_endpoints(cls, value: list[str]) -> list[str]:
        """Each an http(s) URL, ending in / (what the item URLs under it start with)."""
        out = []
        for url in value:
            if not url.lower().startswith(("http://", "https://")):
                raise ValueError(f"{url!r}: a bucket endpoint is an http(s) URL")
            out.append(url if url.endswith("/") else url + "/")
        return out

    def index_cache_folder(self) -> str:
        """index_cache_dir, or its default under the user's cache folder (XDG base directories)."""
        if self.index_cache_dir:
            return os.path.abspath(os.path.expanduser(self.index_cache_dir))
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "stac-static-api", "indexes")

    def public_href_pairs(self) -> list[tuple[str, str]]:
        """The public_hrefs as (SRC, DST), local SRC folders absolute."""
        return [public_href_pair(p) for p in self.public_hrefs]
