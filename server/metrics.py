"""The server's Prometheus metrics, each defined once here and counted where it happens: HTTP
requests and their latency (server.api.metrics), the response cache (server.api.caching),
loads and reloads (server.runtime), remote fetches (server.catalog.sources, curl_pool).
GET /_mgmt/metrics writes them with what the serving index says of itself (server.api.metrics).

A base module like settings and errors: it imports nothing of ours, so every layer may count.

Under ``serve --workers N`` the library's multiprocess mode sums every process's counters in
one scrape: each process writes its values to files of its own in PROMETHEUS_MULTIPROC_DIR
(a private folder the parent makes, server.runtime.cli), and a scrape through any worker reads
them all. The variable must be set before prometheus_client is first imported, which is why
nothing imports this module before `serve` has decided (runtime/cli.py). A worker that dies
leaves its counter files, so nothing it counted is lost; its replacement has another pid, so
nothing is counted twice; the one live gauge (which index version each process serves) is
removed with the process (``mark_process_dead``).

A reload built in a child process (runtime/child_build.py) counts in that process's own
registry and hands the counters back in a file (``counter_values`` / ``add_counter_values``),
so the scrape sees them without a file per reload piling up in the folder.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.multiprocess import mark_process_dead

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # the library's: set before its first import (runtime/cli.py)

# The *_created series (when each labelled child was first used) double the output and say
# nothing the counters do not.
disable_created_metrics()

# Request latency buckets: from a response-cache hit (tens of microseconds) and an item GET
# (well under a millisecond) to a search at the query time budget (10 s).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Loads: a sample catalog in ~0.1 s, 1,000,000 items from a snapshot ~3 s, from files minutes.
LOAD_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

COUNTERS: dict[str, Counter] = {}  # by name: what a child process counts and hands back (docstring)


def _counter(name: str, documentation: str, labels: list[str]) -> Counter:
    COUNTERS[name] = Counter(name, documentation, labels)
    return COUNTERS[name]


HTTP_REQUESTS = _counter(
    "stac_static_http_requests", "HTTP requests answered, by route template (unknown paths: 'unmatched'), "
    "method and status.", ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "stac_static_http_request_duration_seconds", "Seconds from a request's arrival to its last body byte, by "
    "operation and the representation answered (json, html, other).", ["operation", "format"],
    buckets=LATENCY_BUCKETS)
RESPONSE_CACHE = _counter(
    "stac_static_response_cache_requests", "GET requests the response cache looked up: hit (answered from "
    "memory), miss (computed), not_modified (a 304 to If-None-Match).", ["result"])
LOADS = _counter(
    "stac_static_loads", "Catalog loads built by this server, the first one and every reload, by result "
    "(success, failure: the previous index kept serving).", ["result"])
LOAD_DURATION = Histogram(
    "stac_static_load_duration_seconds", "Seconds each load or reload took, by result.", ["result"],
    buckets=LOAD_BUCKETS)
REMOTE_REQUESTS = _counter(
    "stac_static_remote_requests", "Requests sent for remote catalog documents, retries included, by "
    "source (http, s3).", ["source"])
REMOTE_RETRIES = _counter(
    "stac_static_remote_retries", "Of those, retries (after a timeout, a dropped connection, a 429 or a 5xx).",
    ["source"])
REMOTE_ERRORS = _counter(
    "stac_static_remote_errors", "Remote documents that could not be read after the retries (an HTTP error, "
    "the network, a timeout, over the size limit).", ["source"])
REMOTE_NOT_MODIFIED = _counter(
    "stac_static_remote_not_modified", "Remote documents a reload found unchanged (304 to a conditional "
    "request: no transfer).", ["source"])
_process_index_version: Gauge | None = None


def set_process_index_version(version: int) -> None:
    """One sample per live serving process (under --workers the library adds its pid): which
    index version each serves; a worker that missed a reload shows an older one, a dead one's
    sample goes with it (process_gone). Made on first use, in a serving process: made at
    import, the parent of the workers would show as a process serving version 0."""
    global _process_index_version
    if _process_index_version is None:
        _process_index_version = Gauge("stac_static_process_index_version", "The index version each live "
                                       "serving process serves.", multiprocess_mode="liveall")
    _process_index_version.set(version)


def process_gone(pid: int) -> None:
    """A worker died or stopped: its live gauges go (its counters stay, counted once)."""
    folder = os.environ.get(MULTIPROCESS_ENV)
    if folder:
        mark_process_dead(pid, folder)


def observe_load(ok: bool, seconds: float) -> None:
    result = "success" if ok else "failure"
    LOADS.labels(result).inc()
    LOAD_DURATION.labels(result).observe(seconds)


def count_remote(source: str, requests: int = 0, retries: int = 0, errors: int = 0, not_modified: int = 0) -> None:
    """Add a batch's remote fetch counts (the batch's own tally: libcurl's sessions count in
    plain integers, a fetch_worker process sends them back with its last record)."""
    for counter, amount in ((REMOTE_REQUESTS, requests), (REMOTE_RETRIES, retries), (REMOTE_ERRORS, errors),
                            (REMOTE_NOT_MODIFIED, not_modified)):
        if amount:
            counter.labels(source).inc(amount)


def counter_values() -> list[tuple[str, dict[str, str], float]]:
    """This process's counters, (name, labels, value) for each labelled child counted, for a
    parent process to add (JSON-able)."""
    values = []
    for name, counter in COUNTERS.items():
        for metric in counter.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.value:
                    values.append((name, dict(sample.labels), sample.value))
    return values


def add_counter_values(values: list[Any]) -> None:
    """Add a child process's ``counter_values()`` to this process's counters."""
    for name, labels, value in values:
        counter = COUNTERS.get(name)
        if counter is not None and value > 0:
            counter.labels(**labels).inc(value)
