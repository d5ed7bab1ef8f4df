"""S3 ListObjectsV2 listings read fast: each key's ETag and size, 1,000 keys a page, for a reload
that takes a remote item document whose listed ETag is the MD5 of the bytes it read before as
unchanged without requesting it (server.catalog.reuse).

A page is fetched as a plain GET (an s3:// bucket's through a URL boto3 presigns: no request
is sent for that; a bucket endpoint over http(s), `BASE?list-type=2&prefix=...`) and its XML
read by one regular expression: botocore's parser took 52-68 ms of CPU a page on this (loaded)
machine, a minute for a million keys; parse_page 2.2 ms (bench/listing_parse.py). The range of the keys wanted (sorted) is cut
in parts listed at once, each from after the last key of the part before (`start-after`) to
its own last key, each part's pages following their continuation tokens. An s3:// listing the
presigned URLs cannot read (a bucket in another region answers 301) is read through boto3 instead.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import urllib3

from server.catalog.sources import FetchError

log = logging.getLogger("stac_static_api.loader")

LIST_PARTS = 32  # parts of a listing of many keys listed at once
LIST_PART_KEYS = 5_000  # keys a part lists at least
MAX_PAGES = 100_000  # pages one part follows at most (a server that never ends its listing)

Page = Callable[[dict[str, str]], bytes]  # the query parameters of one ListObjectsV2 request -> its XML
Listed = dict[str, tuple[str, int]]  # key -> (ETag without quotes, size)

# an entry as S3 writes it (Key, LastModified, ETag, checksums, Size, ... in that order): one
# findall over the page; a page where it does not match every entry is read entry by entry
_FAST = re.compile(rb"<Contents>\s*<Key>([^<]*)</Key>\s*(?:<LastModified>[^<]*</LastModified>\s*)?"
                   rb"(?:<ETag>([^<]*)</ETag>\s*)?(?:<Checksum\w*>[^<]*</Checksum\w*>\s*)*<Size>(\d+)</Size>")
_ENTRY = re.compile(rb"<Contents>(.*?)</Contents>", re.S)
_KEY = re.compile(rb"<Key>([^<]*)</Key>")
_ETAG = re.compile(rb"<ETag>([^<]*)</ETag>")
_SIZE = re.compile(rb"<Size>(\d+)</Size>")
_TRUNCATED = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>")
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")


def parse_page(body: bytes) -> tuple[list[tuple[str, tuple[str, int]]], str | None]:
    """The entries of one ListObjectsV2 answer and its continuation token (None: the last
    page); FetchError when it is not a listing (an error page, HTML, a ListObjects v1 answer)."""
    head = body[:512]
    if b"<ListBucketResult" not in head:
        raise FetchError(f"not a ListObjectsV2 answer: {head[:80]!r}")
    found = _FAST.findall(body)
    if len(found) != body.count(b"<Contents>"):
        found = []
        for block in _ENTRY.findall(body):
            key, etag, size = _KEY.search(block), _ETAG.search(block), _SIZE.search(block)
            if key is None or size is None:
                raise FetchError("a listing entry without its Key or Size")
            found.append((key.group(1), etag.group(1) if etag is not None else b"", size.group(1)))
    entries = []
    for key, etag, size in found:
        name = key.decode("utf-8", "surrogateescape")
        tag = etag.decode("ascii", "replace")
        if "&" in name:
            name = html.unescape(name)
        if "&" in tag:
            tag = html.unescape(tag)
        entries.append((name, (tag.strip('"'), int(size))))
    token = None
    if _TRUNCATED.search(body):
        next_token = _TOKEN.search(body)
        if next_token is None:
            raise FetchError("a truncated listing without a NextContinuationToken")
        token = html.unescape(next_token.group(1).decode("utf-8", "replace"))
    return entries, token


def list_keys(page: Page, prefix: str, keys: list[str], threads: int = 16) -> Listed:
    """key -> (ETag, size) of the objects under ``prefix``, at least those of ``keys`` (sorted)
    that exist; ``page`` fetches one ListObjectsV2 answer."""
    parts = max(1, min(LIST_PARTS, len(keys) // LIST_PART_KEYS))
    cuts = [len(keys) * i // parts for i in range(parts + 1)]

    def part(i: int) -> list[tuple[str, tuple[str, int]]]:
        found: list[tuple[str, tuple[str, int]]] = []
        params = {"list-type": "2", "prefix": prefix}
        if i > 0:
            params["start-after"] = keys[cuts[i] - 1]
        last = keys[cuts[i + 1] - 1] if i + 1 < parts else None
        for _ in range(MAX_PAGES):
            entries, token = parse_page(page(params))
            found.extend(entries)
            if token is None or (last is not None and found and found[-1][0] >= last):
                return found
            params = {"list-type": "2", "prefix": prefix, "continuation-token": token}
        raise FetchError(f"a listing of more than {MAX_PAGES} pages")

    with ThreadPoolExecutor(min(parts, threads)) as pool:
        return {key: value for found in pool.map(part, range(parts)) for key, value in found}


class HttpPages:
    """ListObjectsV2 pages over plain GETs (urllib3, retried on 429/5xx and dropped connections)."""

    def __init__(self, timeout: float, retries: int) -> None:
        self.http = urllib3.PoolManager(
            maxsize=32, block=False, timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504),
                                  redirect=False, raise_on_status=False))
        self.requests = 0

    def get(self, url: str) -> bytes:
        self.requests += 1
        try:
            response = self.http.request("GET", url, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from None
        if response.status != 200:
            raise FetchError(f"HTTP {response.status}")
        return response.data

    def close(self) -> None:
        self.http.clear()


def bucket_of(location: str, bases: tuple[str, ...]) -> str | None:
    """The bucket endpoint (one of ``bases``, URLs ending in /) ``location`` is under, if any."""
    for base in bases:
        if location.startswith(base):
            return base
    return None


def http_listing(base: str, locations: list[str], timeout: float, retries: int) -> Listed:
    """The (ETag, size) of each of ``locations`` (URLs under the bucket endpoint ``base``:
    path-style ``https://HOST/BUCKET/`` or virtual-host ``https://BUCKET.HOST/``) that the
    endpoint's listing of their common prefix holds, by location; FetchError when the endpoint
    does not answer a listing."""
    folder = len(unquote(urlsplit(base).path))
    plain, n = "?#%", len(base)  # a URL with none of these: its key is what follows the base
    keyed = [(location[n:] if not any(c in location for c in plain) else unquote(urlsplit(location).path)[folder:],
              location) for location in locations]
    keys = sorted(key for key, _ in keyed)
    pages = HttpPages(timeout, retries)
    try:
        listed = list_keys(lambda params: pages.get(base + "?" + _query(params)), _folder_prefix(keys), keys)
    finally:
        pages.close()
    return {location: listed[key] for key, location in keyed if key in listed}


def s3_listing(client: Any, bucket: str, keys: list[str], timeout: float, retries: int) -> Listed:
    """key -> (ETag, size) of the objects of ``bucket`` under the common prefix of ``keys``
    (sorted), each page fetched through a URL ``client`` (boto3's) presigns."""
    prefix = _folder_prefix(keys)
    pages = HttpPages(timeout, retries)

    def page(params: dict[str, str]) -> bytes:
        args = {"Bucket": bucket, "Prefix": params["prefix"]}
        if "start-after" in params:
            args["StartAfter"] = params["start-after"]
        if "continuation-token" in params:
            args["ContinuationToken"] = params["continuation-token"]
        try:
            url = client.generate_presigned_url("list_objects_v2", Params=args, ExpiresIn=900)
        except Exception as exc:  # botocore's NoCredentialsError, ParamValidationError, ...
            raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None
        return pages.get(url)

    try:
        return list_keys(page, prefix, keys)
    except FetchError as exc:  # e.g. a 301 for a bucket of another region, which boto3 follows
        log.info("S3 listing of s3://%s through presigned URLs failed (%s): listing through boto3", bucket, exc)
    finally:
        pages.close()
    try:
        out: Listed = {}
        for found in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in found.get("Contents", ()):
                out[entry["Key"]] = (str(entry.get("ETag", "")).strip('"'), int(entry.get("Size", 0)))
        return out
    except Exception as exc:  # botocore's ClientError, EndpointConnectionError, ...
        raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None


def _folder_prefix(keys: list[str]) -> str:
    """The longest folder (ending in /) all ``keys`` (sorted) are in."""
    if not keys:
        return ""
    first, last = keys[0], keys[-1]
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    common = first[:n]
    return common[: common.rfind("/") + 1]


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
