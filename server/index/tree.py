"""The static catalog's own tree: which catalogs and collections hold which, in the author's
order, and which items each links, so the API can serve the tree as it was arranged (the
browseable and children extensions) next to its flat /collections and /search.

Node 0 is the landing page. The loader adds a node for every catalog and collection it reads,
under the node whose `child` link led to it, and tells the builder which node's `item` link
led to each item. Freezing then:

- hoists a lone root catalog into the landing page (one root catalog *is* the landing page:
  its children, items and document are the landing page's), while several roots, or a root that
  is a collection, stay children of the landing page, in the order given;
- gives each node its path: the chain of ids from the landing page down to it, one URL segment
  each. A segment already taken by a sibling (two children with one id), or ``children`` (the
  name of the endpoint below a node), gets ``~2``, ``~3``...: a path always names one node;
- keeps each node's items as record positions in the index, in link order (the loader indexes
  items in the order their links were read), all nodes' in one array.

Only items reached through `item` links have a place in the tree. Items read from bulk files
(ndjson, FeatureCollection, stac-geoparquet) or given as roots were linked by nobody: when
there are any, the tree is not ``complete`` and the API does not claim browseable.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LANDING = 0
NO_NODE = -1
LANDING_KIND, CATALOG, COLLECTION = "landing", "Catalog", "Collection"
# The endpoint below a node (/catalogs/{path}/children): no node's segment may be it.
CHILDREN_SEGMENT = "children"
RESERVED_SEGMENTS = frozenset({CHILDREN_SEGMENT})


@dataclass(slots=True)
class Node:
    """A catalog or collection of the tree (or the landing page, node 0). ``segments``: its
    path below the landing page, one segment per level; ``document``: a catalog's own servable
    document (a collection's is the index's)."""

    kind: str
    id: str
    parent: int
    segments: tuple[str, ...] = ()
    children: list[int] = field(default_factory=list)
    document: dict[str, Any] | None = None


class Tree:
    """The frozen tree: nodes in depth-first order (0 the landing page), each node's items as
    index positions in link order."""

    def __init__(self, nodes: list[Node], item_starts: np.ndarray, items: np.ndarray, complete: bool) -> None:
        self.nodes = nodes
        self.item_starts = item_starts  # node i's items are items[item_starts[i]:item_starts[i + 1]]
        self.items = items
        self.complete = complete  # every item of the index has a place: the API is browseable
        self.by_path = {n.segments: i for i, n in enumerate(nodes) if n.kind == CATALOG}
        self.by_collection = {n.id: i for i, n in enumerate(nodes) if n.kind == COLLECTION}
        # per node: the public href of the document it was read from (a URL, or a served file's
        # stored href: server.index.served), None for a local file not served; what relative
        # hrefs in its description resolve against (server.api.pages). Not in Node: a snapshot
        # written before it (no attribute here) still reads; source() answers None for it.
        self.sources: list[str | None] = []

    def source(self, number: int) -> str | None:
        sources = getattr(self, "sources", None) or ()
        return sources[number] if number < len(sources) else None

    @classmethod
    def empty(cls, size: int = 0) -> Tree:
        return cls([Node(LANDING_KIND, "", NO_NODE)], np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64), size == 0)

    def node_items(self, node: int) -> np.ndarray:
        return self.items[int(self.item_starts[node]):int(self.item_starts[node + 1])]

    def find_catalog(self, segments: tuple[str, ...]) -> int | None:
        return self.by_path.get(segments)

    def collection_node(self, collection_id: str) -> int | None:
        return self.by_collection.get(collection_id)

    def ancestors(self, node: int) -> list[int]:
        """The nodes above ``node``, from the landing page down (without it)."""
        out = []
        while node > LANDING:
            node = self.nodes[node].parent
            out.append(node)
        return out[::-1]


class TreeBuilder:
    """Collects nodes and which node linked each item row, as the loader reads them."""

    def __init__(self) -> None:
        self.nodes: list[Node] = [Node(LANDING_KIND, "", NO_NODE)]
        self.row_nodes = array("i")  # per item row of the IndexBuilder: the node linking it, or NO_NODE
        self.sources: list[str | None] = [None]  # per node: Tree.sources

    def add(self, kind: str, node_id: str, parent: int, document: dict[str, Any] | None = None,
            source: str | None = None) -> int:
        if not 0 <= parent < len(self.nodes):
            parent = LANDING
        self.nodes.append(Node(kind, node_id, parent, document=document))
        self.sources.append(source)
        number = len(self.nodes) - 1
        self.nodes[parent].children.append(number)
        return number

    def freeze(self, new_position: np.ndarray, size: int) -> Tree:
        """The Tree of an index of ``size`` records whose row ``r`` is at position
        ``new_position[r]`` (-1: dropped)."""
        nodes = self.nodes
        row_nodes = np.frombuffer(self.row_nodes, dtype=np.int32).astype(np.int64) if len(self.row_nodes) \
            else np.zeros(0, dtype=np.int64)
        landing = nodes[LANDING]
        if len(landing.children) == 1 and nodes[landing.children[0]].kind == CATALOG:  # one root catalog
            root = landing.children[0]
            landing.children, landing.document = nodes[root].children, nodes[root].document
            self.sources[LANDING] = self.sources[root]
            for child in landing.children:
                nodes[child].parent = LANDING
            row_nodes[row_nodes == root] = LANDING
        order = self._depth_first()
        renumber = np.full(len(nodes), NO_NODE, dtype=np.int64)
        renumber[order] = np.arange(len(order))
        final: list[Node] = []
        for old in order:
            n = nodes[old]
            final.append(Node(n.kind, n.id, int(renumber[n.parent]) if n.parent >= 0 else NO_NODE,
                              children=[int(renumber[c]) for c in n.children], document=n.document))
        _assign_segments(final)
        # each node's items, in row (= link) order; rows dropped by the index or linked by no
        # reachable node are left out
        positions = new_position  # one per row, as row_nodes
        owner = np.where(row_nodes >= 0, renumber[np.maximum(row_nodes, 0)], NO_NODE)
        keep = (owner >= 0) & (positions >= 0)
        owner, positions = owner[keep], positions[keep]
        grouping = np.argsort(owner, kind="stable")
        items = positions[grouping].astype(np.int64)
        starts = np.searchsorted(owner[grouping], np.arange(len(final) + 1)).astype(np.int64)
        tree = Tree(final, starts, items, complete=len(items) == size)
        tree.sources = [self.sources[old] for old in order]
        return tree

    def _depth_first(self) -> list[int]:
        order, stack = [], [LANDING]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(reversed(self.nodes[node].children))
        return order


def _assign_segments(nodes: list[Node]) -> None:
    """Each node's path: its parent's and its own id, made unique among its siblings."""
    for node in nodes:  # depth-first: a parent comes before its children
        taken = set(RESERVED_SEGMENTS)
        for child in node.children:
            segment, n = nodes[child].id, 1
            while segment in taken:
                n += 1
                segment = f"{nodes[child].id}~{n}"
            taken.add(segment)
            nodes[child].segments = (*node.segments, segment)
