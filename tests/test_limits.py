"""Size limits: documents have one, configured roots (bulk files) a larger one; `index` refuses
to write a snapshot that lacks one of its roots."""

from __future__ import annotations

import json
from pathlib import Path

from server.catalog.loader import LoadOptions, load_catalogs
from tests.helpers import run_cli


def write_bulk(folder: Path, items: int) -> tuple[Path, Path]:
    collection = {
        "type": "Collection", "id": "bulk", "stac_version": "1.0.0", "description": "bulk items",
        "license": "CC-BY-4.0", "links": [],
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}},
    }
    (folder / "collection.json").write_text(json.dumps(collection))
    with (folder / "items.ndjson").open("w") as f:
        for i in range(items):
            f.write(json.dumps({
                "type": "Feature", "stac_version": "1.0.0", "id": f"item-{i}", "collection": "bulk",
                "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}, "bbox": [0.5, 0.5, 0.5, 0.5],
                "properties": {"datetime": "2020-01-01T00:00:00Z", "note": "x" * 100}, "links": [], "assets": {},
            }) + "\n")
    return folder / "collection.json", folder / "items.ndjson"


def test_a_bulk_root_may_exceed_the_document_limit(tmp_path: Path) -> None:
    collection, items = write_bulk(tmp_path, 2000)
    assert items.stat().st_size > 100_000
    index, report = load_catalogs([str(collection), str(items)], LoadOptions(max_document_bytes=100_000))
    assert index.size == 2000 and report.skipped == 0


def test_a_linked_document_over_the_limit_is_skipped(tmp_path: Path) -> None:
    collection, _ = write_bulk(tmp_path, 1)
    doc = json.loads(collection.read_text())
    doc["links"] = [{"rel": "item", "href": "./big.json"}]
    collection.write_text(json.dumps(doc))
    big = {"type": "Feature", "stac_version": "1.0.0", "id": "big", "geometry": None,
           "properties": {"datetime": "2020-01-01T00:00:00Z", "blob": "y" * 200_000}, "links": [], "assets": {}}
    (tmp_path / "big.json").write_text(json.dumps(big))
    index, report = load_catalogs([str(collection)], LoadOptions(max_document_bytes=100_000))
    assert index.size == 0
    assert "byte limit" in dict(report.skips)[str(tmp_path / "big.json")]


def test_index_refuses_to_write_a_snapshot_missing_a_root(tmp_path: Path) -> None:
    collection, _ = write_bulk(tmp_path, 5)
    missing = tmp_path / "nope" / "catalog.json"
    out = tmp_path / "out.idx"
    result = run_cli(["index", str(collection), str(missing), "-o", str(out)])
    assert result.returncode == 1
    assert "not loaded" in result.stderr and not out.exists()
    assert run_cli(["index", str(collection), "-o", str(out)]).returncode == 0 and out.exists()


def test_a_bad_line_in_ndjson_is_skipped_with_its_number(tmp_path: Path) -> None:
    collection, items = write_bulk(tmp_path, 10)
    lines = items.read_text().splitlines()
    lines[4] = "{ not json"
    items.write_text("\n".join(lines) + "\n")
    index, report = load_catalogs([str(collection), str(items)])
    assert index.size == 9
    assert any(where.endswith("items.ndjson line 5") for where, _ in report.skips)
