"""Issue 18, target 3 from a bucket: what reading one ListObjectsV2 page (1,000 keys) costs in CPU,
botocore's parser (what boto3's list_objects_v2 and its paginator run) against
server.catalog.listing.parse_page (one regular expression), on a page shaped as S3 writes it.

    python bench/listing_parse.py [--pages 20]

A million keys are 1,000 pages: the CPU-seconds for them are the ms a page printed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.catalog.listing import parse_page  # noqa: E402


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


def cpu_ms(work: object, runs: int) -> float:
    started = time.process_time()
    for _ in range(runs):
        work()  # type: ignore[operator]
    return (time.process_time() - started) / runs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    body = page()
    entries, token = parse_page(body)
    assert len(entries) == 1000 and token == "abc"
    print(f"one page: {len(body):,} bytes, 1,000 keys")
    print(f"listing.parse_page: {cpu_ms(lambda: parse_page(body), args.pages * 10):.2f} ms CPU a page")
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
