"""What a whole search must return, in order: Item Search with the extensions combined
(bbox, datetime, collections, ids, filter, query, q, sortby), and Collection Search (bbox
and datetime on the collections' extents, filter, q, sortby).
"""

from __future__ import annotations

from typing import Any

from tests.oracles.cql2 import evaluate
from tests.oracles.freetext import q_predicate
from tests.oracles.query import query_extension
from tests.oracles.records import Record
from tests.oracles.search import Oracle, bbox_shape, interval
from tests.oracles.sort import sort_records


def expected_items(
    oracle: Oracle,
    records: list[Record],
    *,
    bbox: list[float] | None = None,
    intersects: dict[str, Any] | None = None,
    datetime: str | None = None,
    collections: list[str] | None = None,
    ids: list[str] | None = None,
    filter: Any = None,
    query: dict[str, Any] | None = None,
    q: str | list[str] | None = None,
    sortby: list[tuple[str, bool]] | None = None,
) -> list[Any]:
    """Keys of the items a search selects, in the order the server must return them."""
    base = {k: v for k, v in {"bbox": bbox, "intersects": intersects, "datetime": datetime,
                              "collections": collections, "ids": ids}.items() if v is not None}
    keep = oracle.evaluate(base)
    chosen = [r for r in records if r.key in keep]
    if filter is not None:
        chosen = [r for r in chosen if evaluate(filter, r) is True]
    if query is not None:
        chosen = [r for r in chosen if query_extension(query, r) is True]
    if q is not None:
        pred = q_predicate(q)
        chosen = [r for r in chosen if pred(r)]
    return [r.key for r in sort_records(chosen, sortby or [])]


def expected_collections(
    records: list[Record],
    *,
    bbox: list[float] | None = None,
    datetime: str | None = None,
    filter: Any = None,
    q: str | None = None,
    sortby: list[tuple[str, bool]] | None = None,
) -> list[str]:
    chosen = records
    if bbox is not None:
        box = bbox_shape(bbox)
        chosen = [r for r in chosen if r.geometry is not None and r.geometry.intersects(box)]
    if datetime is not None:
        lo, hi = interval(datetime)
        chosen = [r for r in chosen if r.start is not None and r.start <= hi and r.end >= lo]
    if filter is not None:
        chosen = [r for r in chosen if evaluate(filter, r) is True]
    if q is not None:
        pred = q_predicate(q)
        chosen = [r for r in chosen if pred(r)]
    return [r.id for r in sort_records(chosen, sortby or [])]
