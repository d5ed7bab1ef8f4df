"""S3 ListObjectsV2 listings read fast: each key's ETag and size, 1,000 keys a page, for a reload
that takes a remote item document whose listed ETag is the MD5 of the bytes it read before as
unchanged without requesting it (server.catalog.reuse).

A page is fetched as a plain GET (an s3:// bucket's through a URL boto3 presigns: no request
is sent for that; a bucket endpoint over http(s), `BASE?list-type=2&prefix=...`) and its XML
read by one regular expression: botocore's parser took 52-68 ms of CPU a page on this (loaded)
machine, a minute for a million keys; parse_columns ~0.9 ms (bench/listing_parse.py). A page
is split into flat columns of bytes (key, ETag, size), never a Python object an entry beyond
those; the keys found become one sorted numpy array and the ETags 16-byte MD5s in one pass, and
the locations' keys are looked up in it by one searchsorted (Listing): a million keys cost the
loader ~2.7 CPU-s besides the GETs, where str keys, tuples and dicts cost 7.8. The range of
the keys wanted (sorted) is cut in parts listed at once, each from after the last key of the part before (`start-after`) to
its own last key, each part's pages following their continuation tokens. An s3:// listing the
presigned URLs cannot read (a bucket in another region answers 301) is read through boto3 instead.
"""

from __future__ import annotations

import bisect
import html
import itertools
import logging
import re
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

import numpy as np
import urllib3

from server.catalog.sources import FetchError, read_within

try:  # libcurl's multi interface: a listing's parts followed at once from one thread (HttpPages.follow)
    from server.catalog.curl import CurlSession
except ImportError:  # pycurl not installed: each part's pages from a thread of its own (urllib3)
    CurlSession = None  # type: ignore[assignment,misc]

log = logging.getLogger("stac_static_api.loader")

LIST_PARTS = 32  # parts of a listing of many keys listed at once
LIST_PART_KEYS = 5_000  # keys a part lists at least
MAX_PAGES = 100_000  # pages one part follows at most (a server that never ends its listing)
MAX_EMPTY_PAGES = 100  # truncated pages without an entry in a row, at most (one that never ends with new tokens)
MAX_PAGE_BYTES = 64 << 20  # one ListObjectsV2 page read at most (S3's: 1,000 keys, ~0.5 MB)

Page = Callable[[dict[str, str]], bytes]  # the query parameters of one ListObjectsV2 request -> its XML
# the parts (_part) of a listing followed at once, each's pages one after another: their columns (HttpPages.follow)
Follow = Callable[[list[Generator[dict[str, str], bytes, "Columns"]]], list["Columns"]]
Columns = tuple[list[bytes], list[bytes], list[bytes]]  # a page's keys, ETags (unquoted) and sizes, as listed

# an entry as S3 writes it (Key, LastModified, ETag, checksums, Size, ... in that order): one
# findall over the page, the ETag without its quotes; a page where it does not match every entry
# is read entry by entry
_QUOTE = rb"(?:&quot;|&#34;|\")?"
_FAST = re.compile(rb"<Contents>\s*<Key>([^<]*)</Key>\s*(?:<LastModified>[^<]*</LastModified>\s*)?"
                   rb"(?:<ETag>" + _QUOTE + rb"([^<&\"]*)" + _QUOTE + rb"</ETag>\s*)?"
                   rb"(?:<Checksum\w*>[^<]*</Checksum\w*>\s*)*<Size>(\d+)</Size>")
_PLAIN_ETAGS = [re.compile(rb"<ETag>" + quote + rb"([^<&\"]*)" + quote + rb"</ETag>")
                for quote in (rb"&quot;", rb"\"", rb"&#34;", rb"")]
_ENTRY = re.compile(rb"<Contents>(.*?)</Contents>", re.S)
_KEY = re.compile(rb"<Key>([^<]*)</Key>")
_ETAG = re.compile(rb"<ETag>([^<]*)</ETag>")
_SIZE = re.compile(rb"<Size>(\d+)</Size>")
_ALL_HEX = re.compile(rb"[0-9a-fA-F]*")
_TRUNCATED = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>")
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_HEX = np.full(256, 255, dtype=np.uint8)  # a hex digit's value; 255: not one
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
_HEX[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def parse_columns(body: bytes) -> tuple[Columns, str | None]:
    """The keys (UTF-8), ETags (their quotes removed) and sizes (decimal) of the entries of one
    ListObjectsV2 answer, as bytes, and its continuation token (None: the last page); FetchError
    when it is not a listing (an error page, HTML, a ListObjects v1 answer). No object a key but
    the findall's: a million keys are a thousand of these."""
    head = body[:512]
    if b"<ListBucketResult" not in head:
        raise FetchError(f"not a ListObjectsV2 answer: {head[:80]!r}")
    # three plain findalls (lists of bytes, no tuple an entry: findall's million tuples had the
    # cyclic GC run over them), each entry's Key, ETag and Size when every entry has one of each:
    # 0.6 ms a page, where one split by the pattern of a whole entry took 1.5 (bench/listing_parse.py)
    n = body.count(b"<Contents>")
    keys, sizes = _KEY.findall(body), _SIZE.findall(body)
    etags: list[Any] = []
    if len(keys) == n and len(sizes) == n:
        for plain in _PLAIN_ETAGS:  # as S3 quotes them (&quot;), others (", &#34;, none)
            etags = plain.findall(body)
            if len(etags) == n:
                break
    if len(etags) != n or len(keys) != n or len(sizes) != n:  # an ETag missing or with an entity: each entry's pattern
        split = _FAST.split(body)
        keys, etags, sizes = split[1::4], split[2::4], split[3::4]
    if len(keys) != n:
        keys, etags, sizes = [], [], []
        for block in _ENTRY.findall(body):
            key, etag, size = _KEY.search(block), _ETAG.search(block), _SIZE.search(block)
            if key is None or size is None:
                raise FetchError("a listing entry without its Key or Size")
            keys.append(key.group(1))
            etags.append(html.unescape(etag.group(1).decode("ascii", "replace")).strip('"').encode() if etag else b"")
            sizes.append(size.group(1))
    elif None in etags:  # entries without an ETag
        etags = [b"" if etag is None else etag for etag in etags]
    if b"&" in b"".join(keys):
        keys = [html.unescape(key.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
                if b"&" in key else key for key in keys]
    token = None
    if _TRUNCATED.search(body):
        next_token = _TOKEN.search(body)
        if next_token is None:
            raise FetchError("a truncated listing without a NextContinuationToken")
        token = html.unescape(next_token.group(1).decode("utf-8", "replace"))
    return (keys, etags, sizes), token


def parse_page(body: bytes) -> tuple[list[tuple[str, tuple[str, int]]], str | None]:
    """The entries of one ListObjectsV2 answer as (key, (ETag, size)) and its continuation token."""
    (keys, etags, sizes), token = parse_columns(body)
    return [(key.decode("utf-8", "surrogateescape"), (etag.decode("ascii", "replace"), int(size)))
            for key, etag, size in zip(keys, etags, sizes)], token


class Listing:
    """The objects a listing found, as arrays: the keys (UTF-8, sorted, numpy bytes), each one's
    ETag as the 16 bytes of an MD5 (``md5`` False when it is not one: a multipart upload's) and
    its size. ``find`` looks up a million keys in one searchsorted."""

    def __init__(self, keys: list[bytes], etags: list[bytes], sizes: list[bytes]) -> None:
        n = len(keys)
        self.digests: np.ndarray
        self._listed = keys  # as listed (find_keys looks them up by their hashes)
        self._keys: np.ndarray | None = None  # the keys as one sorted numpy array: made when first used
        self._by_hash: tuple[np.ndarray, np.ndarray] | None = None  # find_keys': hashes sorted, their rows
        # int() a size: 0.1 CPU-s a million, where np.array(bytes).astype(int64) took 0.9
        self.sizes = np.fromiter(map(int, sizes), dtype=np.int64, count=n) if n else np.zeros(0, dtype=np.int64)
        joined = b"".join(etags)
        if len(joined) == 32 * n and _ALL_HEX.fullmatch(joined):  # all plain MD5s, the common case
            self.md5 = np.ones(n, dtype=bool)
            self.digests = np.frombuffer(bytes.fromhex(joined.decode("ascii")), dtype=np.uint8).reshape(n, 16)
            return
        tags = np.array(etags, dtype=bytes) if n else np.zeros(0, dtype="S32")
        width = tags.dtype.itemsize
        if width < 32:
            self.md5 = np.zeros(n, dtype=bool)
            self.digests = np.zeros((n, 16), dtype=np.uint8)
        else:
            digits = tags.view(np.uint8).reshape(n, width)
            values = _HEX[digits[:, :32]]
            self.md5 = (values != 255).all(axis=1)
            if width > 32:
                self.md5 &= digits[:, 32] == 0
            self.digests = ((values[:, 0::2] << 4) | values[:, 1::2]).astype(np.uint8)

    @property
    def keys(self) -> np.ndarray:
        """The keys (UTF-8, sorted, each once: numpy bytes); the other columns in their order from then on."""
        if self._keys is None:
            n = len(self._listed)
            self._keys = np.array(self._listed, dtype=bytes) if n else np.zeros(0, dtype="S1")
            self._sort_once()
        return self._keys

    def _sort_once(self) -> None:
        keys = self._keys
        assert keys is not None
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():  # parts that overlap, a server out of order
            keys_sorted, first = np.unique(keys, return_index=True)
            self._keys, self.sizes, self.md5, self.digests = keys_sorted, self.sizes[first], self.md5[first], self.digests[first]
            self._listed, self._by_hash = keys_sorted.tolist(), None

    def __len__(self) -> int:
        return len(self.keys)

    def find_keys(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Listing.find for ``keys`` as a list of bytes in any order, looked up by their hashes:
        no sort of a million 70-byte keys (argsort 1.8 CPU-s, numpy arrays of them 1.4), but a
        hash a key (~0.1 s a million), one int64 argsort and searchsorted, and each key found
        compared with the listed one (a hash equal by chance is no match). Keys listed twice or
        two hashes equal: find, on the sorted keys."""
        if self._keys is None and self._by_hash is None:
            n = len(self._listed)
            hashes = np.fromiter(map(hash, self._listed), dtype=np.int64, count=n)
            rows = np.argsort(hashes, kind="stable")
            hashes = hashes[rows]
            if n < 2 or not (hashes[1:] == hashes[:-1]).any():
                self._by_hash = (hashes, rows)
        if self._by_hash is None:
            return self.find(np.array(keys, dtype=bytes) if keys else np.zeros(0, dtype="S1"))
        hashes, rows = self._by_hash
        n, m = len(hashes), len(keys)
        if not n or not m:
            return np.zeros(m, dtype=bool), np.zeros((m, 16), dtype=np.uint8), np.zeros(m, dtype=np.int64)
        wanted = np.fromiter(map(hash, keys), dtype=np.int64, count=m)
        order = np.argsort(wanted)  # searched in order: 0.16 CPU-s a million, 0.41 in a random order
        at = np.empty(m, dtype=np.int64)
        at[order] = np.minimum(np.searchsorted(hashes, wanted[order]), n - 1)
        row = rows[at]
        listed = self._listed
        same = np.fromiter(map(bytes.__eq__, keys, map(listed.__getitem__, row.tolist())), dtype=bool, count=m)
        found = (hashes[at] == wanted) & same & self.md5[row]
        return found, self.digests[row], self.sizes[row]

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each of ``keys`` (numpy bytes, UTF-8): listed with an MD5 ETag; that MD5 (16 bytes); its
        size. Searched in sorted order (keys in a random order, as a catalog's links to tiles are:
        1.6 CPU-s of searchsorted for a million, 0.09 s sorted; sorting them costs ~0.8)."""
        if len(keys) > 1 and not (keys[1:] >= keys[:-1]).all():
            order = np.argsort(keys, kind="stable")
            return _in_order(self.find(keys[order]), order)
        if not len(self.keys) or not len(keys):
            return np.zeros(len(keys), dtype=bool), np.zeros((len(keys), 16), dtype=np.uint8), np.zeros(len(keys), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = (self.keys[at] == keys) & self.md5[at]
        return found, self.digests[at], self.sizes[at]

    def as_dict(self) -> dict[str, tuple[str, int]]:
        """key -> (ETag as hex, '' when not an MD5; size): for tests and logs."""
        return {key.decode("utf-8", "surrogateescape"): (digest.tobytes().hex() if md5 else "", int(size))
                for key, digest, md5, size in zip(self.keys.tolist(), self.digests, self.md5.tolist(), self.sizes.tolist())}


def list_keys(page: Page, prefix: str, keys: np.ndarray, threads: int = 16, follow: Follow | None = None) -> Listing:
    """The objects under ``prefix``, at least those of ``keys`` (UTF-8, sorted, numpy bytes) that
    exist; ``page`` fetches one ListObjectsV2 answer (``follow``: the parts at once, _list_parts).
    Each part keeps the keys up to its last one (the next part lists from after it), so the parts
    joined are in order."""
    parts = max(1, min(LIST_PARTS, len(keys) // LIST_PART_KEYS))
    return _list_parts(page, prefix, [keys[len(keys) * i // parts - 1] for i in range(1, parts)], threads, follow)


def _part(prefix: str, cuts: list[bytes], i: int) -> Generator[dict[str, str], bytes, Columns]:
    """Part i of a listing cut at ``cuts``: yields the query parameters of its next page, is
    sent that page's answer, returns the part's columns; FetchError for a listing that does not
    go forward or never ends."""
    parts = len(cuts) + 1
    found: Columns = ([], [], [])
    params = {"list-type": "2", "prefix": prefix}
    if i > 0:
        params["start-after"] = cuts[i - 1].decode("utf-8", "surrogateescape")
    last = cuts[i] if i + 1 < parts else None
    previous: tuple[str | None, bytes | None] = (None, None)  # the last token and key
    empty = 0
    for _ in range(MAX_PAGES):
        (names, etags, sizes), token = parse_columns((yield params))
        # a listing goes forward: keys after the last page's, a new token, not endlessly empty
        if token is not None and token == previous[0]:
            raise FetchError("a listing that gives the same continuation token again")
        if names and previous[1] is not None and names[0] <= previous[1]:
            raise FetchError("a listing page whose keys do not follow the previous page's")
        empty = 0 if names else empty + 1
        if empty > MAX_EMPTY_PAGES:
            raise FetchError(f"a listing of more than {MAX_EMPTY_PAGES} empty pages in a row")
        previous = (token, names[-1] if names else previous[1])
        if last is not None and names and names[-1] >= last:
            end = bisect.bisect_right(names, last)
            names, etags, sizes, token = names[:end], etags[:end], sizes[:end], None
        found[0].extend(names)
        found[1].extend(etags)
        found[2].extend(sizes)
        if token is None:
            return found
        params = {"list-type": "2", "prefix": prefix, "continuation-token": token}
    raise FetchError(f"a listing of more than {MAX_PAGES} pages")


def _list_parts(page: Page, prefix: str, cuts: list[bytes], threads: int = 16, follow: Follow | None = None) -> Listing:
    """The objects under ``prefix`` in len(cuts) + 1 parts listed at once: part i from after
    cuts[i - 1] (the first from the prefix's first key) to cuts[i] (the last to the end);
    ``cuts`` sorted, each once. With ``follow`` (libcurl's multi interface from this thread,
    each part's next page asked for as soon as its page is read: HttpPages.follow); else each
    part in a thread of its own (urllib3, ``page``). 1,000 pages of 1,000 keys from the bench
    bucket on loopback, the Listing made (load 2, /tmp/s16/curl_list2.py): threads 2.12-2.42 CPU-s
    and s; libcurl 1.42-1.46."""
    parts = [_part(prefix, cuts, i) for i in range(len(cuts) + 1)]
    if follow is not None:
        columns = follow(parts)
    else:
        def drive(part: Generator[dict[str, str], bytes, Columns]) -> Columns:
            params = next(part)
            while True:
                try:
                    params = part.send(page(params))
                except StopIteration as done:
                    return cast(Columns, done.value)

        with ThreadPoolExecutor(min(len(parts), threads)) as pool:
            columns = list(pool.map(drive, parts))
    return Listing(*(list(itertools.chain.from_iterable(c[j] for c in columns)) for j in range(3)))


class ListingTimeout(FetchError):
    """A listing not done by its deadline (settings.listing_timeout)."""


class HttpPages:
    """ListObjectsV2 pages over plain GETs (urllib3, retried on 429/5xx and dropped connections).
    ``deadline`` (time.monotonic()): when the whole listing must be done, however slowly a
    server sends its bytes (the timeout is per read); past it, ListingTimeout."""

    def __init__(self, timeout: float, retries: int, deadline: float | None = None, limit: float | None = None) -> None:
        self.http = urllib3.PoolManager(
            maxsize=32, block=False, timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504),
                                  redirect=False, raise_on_status=False))
        self.timeout = timeout
        self.retries = retries
        self.deadline = deadline
        self.limit = limit  # the seconds the deadline allowed, for its message
        self.requests = 0
        self._curl: Any = None  # follow's CurlSession, made when first used

    @property
    def can_follow(self) -> bool:
        """Whether ``follow`` is there (pycurl installed)."""
        return CurlSession is not None

    def follow(self, parts: list[Generator[dict[str, str], bytes, Columns]], url_of: Callable[[dict[str, str]], str]
               ) -> list[Columns]:
        """The parts' columns, each part's pages one after another through libcurl (all parts
        at once from this thread, keep-alive, retried on 429/5xx and dropped connections as
        ``get``, MAX_PAGE_BYTES at most a page, none past the deadline; each page read as it
        arrives, the part's next asked for then); ``url_of``: a page's URL. FetchError for
        the first page that failed, ListingTimeout past the deadline."""
        deadline = float("inf") if self.deadline is None else self.deadline
        now = time.monotonic()
        if now >= deadline:
            raise self._late()
        if self._curl is None:
            self._curl = CurlSession(max(len(parts), 1), min(self.timeout, deadline - now), self.retries)
            self._curl.ends = self.deadline
        out: list[Columns] = [([], [], [])] * len(parts)

        def following(i: int, body: bytes) -> str | None:
            self.requests += 1
            try:
                return url_of(parts[i].send(body))
            except StopIteration as done:
                out[i] = done.value
                return None

        starts = [url_of(next(part)) for part in parts]
        failed = self._curl.chains(starts, MAX_PAGE_BYTES, following)
        if failed is not None:
            raise self._late() if time.monotonic() >= deadline else FetchError(failed)
        return out

    def _late(self) -> ListingTimeout:
        return ListingTimeout(f"not done within {self.limit:g} s (STAC_STATIC_LISTING_TIMEOUT)")

    def get(self, url: str) -> bytes:
        self.requests += 1
        deadline = float("inf") if self.deadline is None else self.deadline
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        wait = min(self.timeout, left)  # no read waits past the deadline
        try:
            response = self.http.request("GET", url, redirect=False, preload_content=False,
                                         timeout=urllib3.Timeout(connect=wait, read=wait))
        except urllib3.exceptions.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from None
        try:
            if response.status != 200:
                raise FetchError(f"HTTP {response.status}")
            data = read_within(response, MAX_PAGE_BYTES, deadline, self._late)
        except urllib3.exceptions.HTTPError as exc:
            response.close()
            raise FetchError(f"{type(exc).__name__}: {exc}") from None
        except FetchError:
            response.close()  # (not read to its end: the connection is not reused)
            raise
        response.release_conn()
        return data

    def close(self) -> None:
        self.http.clear()
        if self._curl is not None:
            self._curl.close()
            self._curl = None


def _not_remote(url: str) -> tuple[str, bytes | None, str | None]:
    return url, None, "not an http(s) URL"


def bucket_of(location: str, bases: tuple[str, ...]) -> str | None:
    """The bucket endpoint (one of ``bases``, URLs ending in /) ``location`` is under, if any."""
    for base in bases:
        if location.startswith(base):
            return base
    return None


def location_keys(base: str, locations: list[str]) -> np.ndarray:
    """The bucket key (UTF-8, numpy bytes) of each of ``locations`` (URLs under the bucket endpoint
    ``base``): location_key_list's, as one array."""
    keys = location_key_list(base, locations)
    return np.array(keys, dtype=bytes) if keys else np.zeros(0, dtype="S1")


def location_key_list(base: str, locations: list[str]) -> list[bytes]:
    """The bucket key (UTF-8) of each of ``locations`` (URLs under the bucket endpoint ``base``):
    joined_keys' when no location holds ?, # or %; else each URL's path, unquoted, after the
    base's."""
    keys = joined_keys(base, "\n".join(locations).encode("utf-8", "surrogateescape"), len(locations))
    if keys is not None:
        return keys
    folder = len(unquote(urlsplit(base).path))
    return [unquote(urlsplit(location).path)[folder:].encode("utf-8", "surrogateescape") for location in locations]


def joined_keys(base: str, joined: bytes, count: int) -> list[bytes] | None:
    """The bucket keys (UTF-8) of ``count`` locations newline-joined as UTF-8 bytes (as an
    index's origins hold them), when each is under the bucket endpoint ``base`` and none holds
    ?, # or %: what follows the base, by one replace and split (no object a location but its
    key: ~0.3 CPU-s a million); None otherwise."""
    if not count:
        return []
    prefix = base.encode("utf-8", "surrogateescape")
    if (joined.count(b"\n") == count - 1 and b"?" not in joined and b"#" not in joined
            and b"%" not in joined and joined.count(b"\n" + prefix) == count - 1 and joined.startswith(prefix)):
        return joined.replace(b"\n" + prefix, b"\n")[len(prefix):].split(b"\n")
    return None


def http_listing(base: str, locations: list[str], timeout: float, retries: int, limit: float | None = None,
                 keys: list[bytes] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``locations`` (URLs under the bucket endpoint ``base``: path-style
    ``https://HOST/BUCKET/`` or virtual-host ``https://BUCKET.HOST/``), from the endpoint's listing
    of their common prefix: listed with an MD5 ETag; that MD5; its size (Listing.find);
    FetchError when the endpoint does not answer a listing (ListingTimeout: not within
    ``limit`` seconds). ``keys``: the locations' bucket keys when known (joined_keys), in their order."""
    if keys is None:
        keys = location_key_list(base, locations)
    pages = _pages(timeout, retries, limit)
    try:
        follow = (lambda parts: pages.follow(parts, lambda params: base + "?" + _query(params))) if pages.can_follow else None
        listed = _list_parts(lambda params: pages.get(base + "?" + _query(params)), _common_folder(keys), _cuts(keys),
                             follow=follow)
    finally:
        pages.close()
    return listed.find_keys(keys)


def _cuts(keys: list[bytes]) -> list[bytes]:
    """Where to cut the listing of ``keys`` (in any order) in parts of about as many keys each:
    keys of an evenly spaced sample, sorted, each once (a million keys are not sorted for this:
    a numpy argsort of them cost 1.8 CPU-s)."""
    parts = max(1, min(LIST_PARTS, len(keys) // LIST_PART_KEYS))
    if parts == 1:
        return []
    sample = sorted(set(keys[:: max(1, len(keys) // (parts * 64))]))
    return sorted({sample[len(sample) * i // parts] for i in range(1, parts)})


def _common_folder(keys: list[bytes]) -> str:
    """The longest folder (ending in /) all ``keys`` (any order) are in."""
    if not keys:
        return ""
    return _folder_prefix(np.array([min(keys), max(keys)], dtype=bytes))


def _in_order(found: tuple[np.ndarray, np.ndarray, np.ndarray], order: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Listing.find's answer for keys[order] given back for keys."""
    out = tuple(np.empty_like(column) for column in found)
    for column, placed in zip(out, found):
        column[order] = placed
    return out  # type: ignore[return-value]


def _pages(timeout: float, retries: int, limit: float | None) -> HttpPages:
    return HttpPages(timeout, retries, None if limit is None else time.monotonic() + limit, limit)


def s3_listing(client: Any, bucket: str, keys: list[str], timeout: float, retries: int,
               limit: float | None = None) -> Listing:
    """The objects of ``bucket`` under the common prefix of ``keys`` (sorted), each page fetched
    through a URL ``client`` (boto3's) presigns; ListingTimeout when not done within ``limit`` s."""
    wanted = np.array([key.encode("utf-8", "surrogateescape") for key in keys], dtype=bytes) if keys else np.zeros(0, dtype="S1")
    prefix = _folder_prefix(wanted)
    pages = _pages(timeout, retries, limit)

    def url(params: dict[str, str]) -> str:
        args = {"Bucket": bucket, "Prefix": params["prefix"]}
        if "start-after" in params:
            args["StartAfter"] = params["start-after"]
        if "continuation-token" in params:
            args["ContinuationToken"] = params["continuation-token"]
        try:
            return str(client.generate_presigned_url("list_objects_v2", Params=args, ExpiresIn=900))
        except Exception as exc:  # botocore's NoCredentialsError, ParamValidationError, ...
            raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None

    try:
        return list_keys(lambda params: pages.get(url(params)), prefix, wanted,
                         follow=(lambda parts: pages.follow(parts, url)) if pages.can_follow else None)
    except ListingTimeout:  # (not tried again through boto3)
        raise
    except FetchError as exc:  # e.g. a 301 for a bucket of another region, which boto3 follows
        log.info("S3 listing of s3://%s through presigned URLs failed (%s): listing through boto3", bucket, exc)
    finally:
        pages.close()
    try:
        columns: Columns = ([], [], [])
        for found in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in found.get("Contents", ()):
                columns[0].append(entry["Key"].encode("utf-8", "surrogateescape"))
                columns[1].append(str(entry.get("ETag", "")).strip('"').encode("ascii", "replace"))
                columns[2].append(str(int(entry.get("Size", 0))).encode())
        return Listing(*columns)
    except Exception as exc:  # botocore's ClientError, EndpointConnectionError, ...
        raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None


def _folder_prefix(keys: np.ndarray) -> str:
    """The longest folder (ending in /) all ``keys`` (UTF-8, sorted, numpy bytes) are in."""
    if not len(keys):
        return ""
    first, last = keys[0].decode("utf-8", "surrogateescape"), keys[-1].decode("utf-8", "surrogateescape")
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    common = first[:n]
    return common[: common.rfind("/") + 1]


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
