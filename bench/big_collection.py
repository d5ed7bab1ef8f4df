"""Peak memory of reading one large collection.json (issue: a big collection dropped whole).

    python bench/big_collection.py [--links 250000] [--dir /tmp/big-collection] [--max-document-bytes N]

Writes DIR/catalog.json linking DIR/big/collection.json, a Collection whose links list ``--links`` item links (250,000 of
these make ~35 MB, the size of the generated 1M-item catalog's largest collections); the item
files themselves are not written, so every item is skipped as unreadable and what is measured
is the structure: reading, parsing and walking the collection document. In a fresh process:
RSS after imports, then load_catalogs(), then peak RSS (VmHWM) over that baseline, and the
load's time and summary. Missing items are skipped quietly (logging at ERROR).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time


def status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def write(folder: str, links: int) -> str:
    folder = os.path.join(folder, "big")
    path = os.path.join(folder, "collection.json")
    os.makedirs(folder, exist_ok=True)
    doc = {
        "type": "Collection", "stac_version": "1.0.0", "id": "big", "description": "big", "license": "proprietary",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [{"rel": "self", "href": "./collection.json"}] + [
            {"rel": "item", "href": f"./items/2023/{name}/{name}.json", "type": "application/geo+json"}
            for name in (f"S2B_MSIL2A_{n:08d}_N0509_R008_T31UFQ" for n in range(links))],
    }
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    root = {"type": "Catalog", "stac_version": "1.0.0", "id": "root", "description": "root",
            "links": [{"rel": "child", "href": "./big/collection.json"}]}
    with open(os.path.join(os.path.dirname(folder), "catalog.json"), "w") as f:
        json.dump(root, f)
    return path


def worker(path: str, max_document_bytes: int | None) -> None:
    logging.basicConfig(level=logging.ERROR)
    from server.catalog.loader import LoadOptions, load_catalogs

    options = LoadOptions(progress=False)
    if max_document_bytes:
        options.max_document_bytes = max_document_bytes
    base = status_kb("VmRSS")
    started = time.perf_counter()
    try:
        _, report = load_catalogs([path], options)
        summary = report.summary()
    except Exception as exc:  # noqa: BLE001 - reported as the result
        summary = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    peak = status_kb("VmHWM")
    print(json.dumps({"baseline_mib": base / 1024, "peak_mib": peak / 1024, "peak_over_baseline_mib": (peak - base) / 1024,
                      "seconds": seconds, "summary": summary}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=250_000)
    parser.add_argument("--dir", default="/tmp/big-collection")
    parser.add_argument("--max-document-bytes", type=int)
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.max_document_bytes)
        return
    path = os.path.join(args.dir, "big", "collection.json")
    if not os.path.exists(path) or os.path.getsize(path) < args.links * 130:
        path = write(args.dir, args.links)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB, {args.links} item links")
    extra = ["--max-document-bytes", str(args.max_document_bytes)] if args.max_document_bytes else []
    root = os.path.join(args.dir, "catalog.json")  # the collection reached as a child, as in the issue
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", root, *extra],
                         capture_output=True, text=True, check=True).stdout
    print(out.strip())


if __name__ == "__main__":
    main()
