"""Issue 18, target 3 from a bucket: what reading one ListObjectsV2 page (1,000 keys) costs in CPU,
botocore's parser (what boto3's list_objects_v2 and its paginator run) against
server.catalog.listing.parse_page (one regular expression), on a page shaped as S3 writes it.

    python bench/listing_parse.py [--pages 20] [--keys 1000000]

A million keys are 1,000 pages: the CPU-seconds for them are the ms a page printed. --keys N:
also the loader's whole client-side cost of listing N keys without HTTP (the pages, made
beforehand, handed to listing.list_keys by a function): the locations' keys, the parts' pages
parsed, the Listing built and each location (in a random order, as a catalog's links to tiles
are) found in it: server.catalog.listing.http_listing with its GETs answered from memory.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bisect  # noqa: E402

from server.catalog import listing  # noqa: E402
from server.catalog.listing import parse_columns, parse_page  # noqa: E402


def page(keys: int = 1000) -> bytes:
    entries = "".join(
        f"<Contents><Key>landsat/c{i % 4}/items/item-{i:07d}.json</Key>"
        f"<LastModified>2026-12-06T20:00:00.000Z</LastModified>"
        f"<ETag>&quot;{hashlib.md5(str(i).encode()).hexdigest()}&quot;</ETag><Size>5{i % 1000:03d}</Size>"
        f"<StorageClass>STANDARD</StorageClass></Contents>" for i in range(keys))
    return ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>b</Name><Prefix>landsat/</Prefix><KeyCount>{keys}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>true</IsTruncated><NextContinuationToken>abc</NextContinuationToken>{entries}"
            "</ListBucketResult>").encode()


def whole(n: int) -> None:
    """The client's CPU for a listing of ``n`` keys (12 folders, as bench/generate.py's), each
    page joined from entries made beforehand."""
    base = "http://127.0.0.1:9/"
    keys = sorted(f"bench-c{i % 12:02d}/ITEM_{i:08d}/ITEM_{i:08d}.json".encode() for i in range(n))
    entries = [b"<Contents><Key>%s</Key><ETag>&quot;%s&quot;</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass>"
               b"</Contents>" % (k, hashlib.md5(k).hexdigest().encode(), 5000 + i % 999) for i, k in enumerate(keys)]

    def page(params: dict[str, str]) -> bytes:  # made from cached entries: ~0.05 s of the CPU a million
        after = bytes.fromhex(params["continuation-token"]) if "continuation-token" in params else \
            params.get("start-after", "").encode()
        at = bisect.bisect_right(keys, after) if after else 0
        more = at + 1000 < n
        token = b"<NextContinuationToken>%s</NextContinuationToken>" % keys[at + 999].hex().encode() if more else b""
        return (b'<?xml version="1.0"?><ListBucketResult xmlns="x"><Name>b</Name><IsTruncated>%s</IsTruncated>%s%s'
                b"</ListBucketResult>" % (b"true" if more else b"false", token, b"".join(entries[at:at + 1000])))

    locations = [base + key.decode() for key in keys]
    random.Random(18).shuffle(locations)  # a catalog's links to tiles: in no key order
    pages = listing.HttpPages.get
    listing.HttpPages.get = lambda self, url: page(dict(parse_qsl(url.partition("?")[2])))  # type: ignore[method-assign]
    try:
        started, wall = time.process_time(), time.perf_counter()
        found, _, _ = listing.http_listing(base, locations, 10, 0)
        cpu = time.process_time() - started
    finally:
        listing.HttpPages.get = pages  # type: ignore[method-assign]
    assert int(found.sum()) == n
    print(f"a whole listing of {n:,} keys, no HTTP: {cpu:.2f} CPU-s ({time.perf_counter() - wall:.2f} s wall)")


def cpu_ms(work: object, runs: int) -> float:
    started = time.process_time()
    for _ in range(runs):
        work()  # type: ignore[operator]
    return (time.process_time() - started) / runs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--keys", type=int, default=0, help="also a whole listing of this many keys, without HTTP")
    args = parser.parse_args()
    body = page()
    entries, token = parse_page(body)
    assert len(entries) == 1000 and token == "abc"
    print(f"one page: {len(body):,} bytes, 1,000 keys")
    print(f"listing.parse_page: {cpu_ms(lambda: parse_page(body), args.pages * 10):.2f} ms CPU a page")
    print(f"listing.parse_columns: {cpu_ms(lambda: parse_columns(body), args.pages * 10):.2f} ms CPU a page")
    if args.keys:
        whole(args.keys)
    try:
        import botocore.session
        from botocore import parsers
    except ImportError:
        print("botocore: not installed (pip install boto3)")
        return
    model = botocore.session.get_session().get_service_model("s3").operation_model("ListObjectsV2")
    response = {"body": body, "headers": {}, "status_code": 200}
    parsed = parsers.RestXMLParser().parse(response, model.output_shape)
    assert len(parsed["Contents"]) == 1000
    ms = cpu_ms(lambda: parsers.RestXMLParser().parse(response, model.output_shape), args.pages)
    print(f"botocore RestXMLParser: {ms:.2f} ms CPU a page")


if __name__ == "__main__":
    main()
