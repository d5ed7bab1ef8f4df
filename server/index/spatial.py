"""A packed two-level box index over numpy arrays (a static R-tree), aware of time.

Records are split into time slabs (~equal counts, by start time); within a slab they are
sorted along a Z-order curve of their box centres and grouped into leaves of LEAF records;
leaves are grouped into nodes of FANOUT leaves. Every leaf and node also knows the range of
its records' start and end times. A query tests node boxes, then the leaf boxes inside hit
nodes, then the records inside hit leaves, all vectorized; with a time window, nodes and
leaves of other times are skipped, so a bbox+datetime search only touches the records of
the slabs it spans instead of every record in the box. Records of a leaf wholly inside the
query box and window are taken without a test of their own.

For box queries, it also tells which records surely intersect the box without looking at
their geometry: those whose own box lies inside it, and those with one of four "extreme"
vertices inside it. A record's leftmost vertex lies on its box's left side, so only where
along that side needs storing: one byte (in 255ths) per extreme vertex.
It holds ~60 bytes per record, where an STRtree holds a GEOS geometry (~300 bytes) each.
"""

from __future__ import annotations

import numpy as np
import shapely

LEAF = 64
FANOUT = 64
SLAB = 65_536  # records per time slab: fewer, larger slabs favour queries without a window

UNKNOWN = 255  # an extreme_fractions entry that says nothing

Window = tuple[int, int]


def _spread_bits(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64) & np.uint64(0xFFFF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    v = (v | (v << np.uint64(1))) & np.uint64(0x55555555)
    return v


def _group_bounds(boxes: np.ndarray, size: int) -> np.ndarray:
    """Bounds of consecutive groups of ``size`` boxes."""
    n = len(boxes)
    starts = np.arange(0, n, size)
    return np.column_stack(
        [
            np.minimum.reduceat(boxes[:, 0], starts),
            np.minimum.reduceat(boxes[:, 1], starts),
            np.maximum.reduceat(boxes[:, 2], starts),
            np.maximum.reduceat(boxes[:, 3], starts),
        ]
    )


def _group_times(start: np.ndarray, end: np.ndarray, size: int) -> np.ndarray:
    """(min start, max start, min end, max end) of consecutive groups of ``size`` records."""
    at = np.arange(0, len(start), size)
    return np.column_stack(
        [
            np.minimum.reduceat(start, at),
            np.maximum.reduceat(start, at),
            np.minimum.reduceat(end, at),
            np.maximum.reduceat(end, at),
        ]
    )


def _hits(boxes: np.ndarray, q: tuple[float, float, float, float]) -> np.ndarray:
    return (boxes[:, 0] <= q[2]) & (boxes[:, 2] >= q[0]) & (boxes[:, 1] <= q[3]) & (boxes[:, 3] >= q[1])


class BoxIndex:
    def __init__(
        self,
        positions: np.ndarray,
        bounds: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        extremes: np.ndarray | None = None,
        *,
        slab: int = SLAB,
    ) -> None:
        """``bounds[i]`` (minx, miny, maxx, maxy) is the box of record ``positions[i]``,
        [``start[i]``, ``end[i]``] its time interval (start > end: no time, never in a window)
        and ``extremes[i]`` its extreme_fractions (none: no record is known to intersect a box
        query but by its box)."""
        n = len(positions)
        if n:
            cx = (bounds[:, 0] + bounds[:, 2]) / 2
            cy = (bounds[:, 1] + bounds[:, 3]) / 2
            qx = np.clip((cx + 180.0) / 360.0 * 65535, 0, 65535)
            qy = np.clip((cy + 90.0) / 180.0 * 65535, 0, 65535)
            z = _spread_bits(qx) | (_spread_bits(qy) << np.uint64(1))
            # Slabs of ~``slab`` records by start time; records starting at the same time share
            # one (a catalog of one date keeps purely spatial leaves).
            edges = np.sort(start)[slab::slab]
            # (not np.unique: it imports numpy.ma, ~0.7 MiB resident, which nothing else loads)
            edges = edges[np.concatenate(([True], edges[1:] != edges[:-1]))] if len(edges) else edges
            slabs = np.searchsorted(edges, start, side="right")
            order = np.lexsort((z, slabs))
        else:
            order = np.zeros(0, dtype=np.int64)
        self.positions = positions[order]
        self.boxes = np.ascontiguousarray(bounds[order])
        self.start = np.ascontiguousarray(start[order])
        self.end = np.ascontiguousarray(end[order])
        self.extremes = None if extremes is None else np.ascontiguousarray(extremes[order])
        self.leaves = _group_bounds(self.boxes, LEAF) if n else np.zeros((0, 4))
        self.nodes = _group_bounds(self.leaves, FANOUT) if n else np.zeros((0, 4))
        self.leaf_times = _group_times(self.start, self.end, LEAF) if n else np.zeros((0, 4), np.int64)
        self.node_times = (
            np.column_stack(
                [
                    np.minimum.reduceat(self.leaf_times[:, 0], np.arange(0, len(self.leaves), FANOUT)),
                    np.maximum.reduceat(self.leaf_times[:, 3], np.arange(0, len(self.leaves), FANOUT)),
                ]
            )
            if n
            else np.zeros((0, 2), np.int64)
        )

    def query(self, q: tuple[float, float, float, float], window: Window | None = None) -> np.ndarray:
        """Unsorted positions of the records whose box intersects box ``q`` (and, given a
        ``window`` (lo, hi), whose interval meets it: start <= hi and end >= lo)."""
        return self.positions[np.concatenate(self._slots(q, window))]

    def classify(self, q: tuple[float, float, float, float], window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As query, with whether each record surely intersects the box ``q`` itself (its box
        is inside ``q``, or an extreme vertex is): the others need an exact test."""
        whole, partial = self._slots(q, window)
        boxes = self.boxes[partial]
        sure = _inside(boxes, q)
        if self.extremes is not None:
            rest = np.flatnonzero(~sure)
            sure[rest] = _extreme_inside(boxes[rest], self.extremes[partial[rest]], q)
        slots = np.concatenate((whole, partial))
        return self.positions[slots], np.concatenate((np.ones(len(whole), dtype=bool), sure))

    def _slots(self, q: tuple[float, float, float, float], window: Window | None) -> tuple[np.ndarray, np.ndarray]:
        """Slots of the matching records in leaves wholly inside ``q`` and the window, and of
        those in the other leaves met."""
        n = len(self.positions)
        if not n:
            return self.positions, self.positions
        node_hit = _hits(self.nodes, q)
        if window is not None:
            lo, hi = window
            node_hit &= (self.node_times[:, 0] <= hi) & (self.node_times[:, 1] >= lo)
        leaves = _expand(np.flatnonzero(node_hit), FANOUT, len(self.leaves))
        leaf_boxes = self.leaves[leaves]
        hit = _hits(leaf_boxes, q)
        inside = _inside(leaf_boxes, q)
        if window is not None:
            t = self.leaf_times[leaves]
            hit &= (t[:, 0] <= hi) & (t[:, 3] >= lo)
            inside &= (t[:, 1] <= hi) & (t[:, 2] >= lo)
        inside &= hit
        whole = _expand(leaves[inside], LEAF, n)
        partial = _expand(leaves[hit & ~inside], LEAF, n)
        keep = _hits(self.boxes[partial], q)
        if window is not None:
            keep &= (self.start[partial] <= hi) & (self.end[partial] >= lo)
        return whole, partial[keep]


def _inside(boxes: np.ndarray, q: tuple[float, float, float, float]) -> np.ndarray:
    return (boxes[:, 0] >= q[0]) & (boxes[:, 2] <= q[2]) & (boxes[:, 1] >= q[1]) & (boxes[:, 3] <= q[3])


def _extreme_inside(boxes: np.ndarray, fractions: np.ndarray, q: tuple[float, float, float, float]) -> np.ndarray:
    """Whether one of the four extreme vertices (see extreme_fractions) surely lies in ``q``:
    the one coordinate on the box's side is exact, the other is known to a 255th of the
    box's size, and must lie inside ``q`` over that whole span (widened by far more than
    any rounding of these few operations)."""
    x0, y0, x1, y1 = q
    minx, miny, maxx, maxy = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    f = fractions.astype(np.float64)
    sx = (maxx - minx) / 255.0
    sy = (maxy - miny) / 255.0
    mx = 1e-9 * (np.abs(minx) + np.abs(maxx))
    my = 1e-9 * (np.abs(miny) + np.abs(maxy))

    def along_y(k: int) -> np.ndarray:
        return (miny + f[:, k] * sy - my >= y0) & (miny + (f[:, k] + 1.0) * sy + my <= y1)

    def along_x(k: int) -> np.ndarray:
        return (minx + f[:, k] * sx - mx >= x0) & (minx + (f[:, k] + 1.0) * sx + mx <= x1)

    known = fractions != UNKNOWN
    left = (minx >= x0) & (minx <= x1) & along_y(0) & known[:, 0]
    right = (maxx >= x0) & (maxx <= x1) & along_y(1) & known[:, 1]
    bottom = (miny >= y0) & (miny <= y1) & along_x(2) & known[:, 2]
    top = (maxy >= y0) & (maxy <= y1) & along_x(3) & known[:, 3]
    return left | right | bottom | top


def extreme_fractions(geoms: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(n, 4) uint8: where a leftmost, rightmost, lowest and highest vertex of each geometry
    lies along that side of its box ``bounds`` (minx, miny, maxx, maxy): floor(255 * t), t
    from 0 (the low end) to 1, at most 254. Every vertex is a point of its geometry, so a
    query box holding one intersects the geometry. UNKNOWN where no vertex lies on that side
    (no coordinates, or bounds that are not the geometry's)."""
    out = np.full((len(geoms), 4), UNKNOWN, dtype=np.uint8)
    coords, which = shapely.get_coordinates(geoms, return_index=True)
    if not len(coords):
        return out
    b = bounds[which]
    x, y = coords[:, 0], coords[:, 1]
    for k, (on, side, other, lo, hi) in enumerate(((x, 0, y, 1, 3), (x, 2, y, 1, 3), (y, 1, x, 0, 2), (y, 3, x, 0, 2))):
        at = np.flatnonzero(on == b[:, side])
        if not len(at):
            continue
        at = at[np.concatenate(([True], which[at][1:] != which[at][:-1]))]  # the first per geometry
        size = b[at, hi] - b[at, lo]
        t = np.divide(other[at] - b[at, lo], size, out=np.zeros(len(at)), where=size > 0)
        out[which[at], k] = np.clip(np.floor(t * 255.0), 0, 254)
    return out


def _expand(groups: np.ndarray, size: int, limit: int) -> np.ndarray:
    """Indices of every member of the given groups of ``size`` consecutive entries."""
    idx = (groups[:, None] * size + np.arange(size)).ravel()
    return idx[idx < limit]


# -- exact answers for a box query without decoding geometries ----------------------------------

_WKB_POLYGON_HEADER = 13  # byte order (1), type (4), ring count (4), exterior ring point count (4)


def wkb_vertex_in_boxes(
    data: memoryview, starts: np.ndarray, ends: np.ndarray, boxes: list[tuple[float, float, float, float]]
) -> np.ndarray:
    """For each WKB blob ``data[starts[i]:ends[i]]``: True when it is a little-endian 2D
    Polygon a vertex of whose exterior ring lies in one of the closed ``boxes``.

    Such a vertex is a point of the polygon inside the box, so the polygon intersects the box:
    the answer GEOS gives, from comparisons alone (no arithmetic, so no rounding). False means
    "cannot tell" (no vertex inside, another geometry type, another byte order): those still
    need the exact test. This reads the coordinates straight out of the blob buffer, vectorized,
    where decoding the geometries (shapely.from_wkb) costs ~0.5 us each."""
    out = np.zeros(len(starts), dtype=bool)
    if not len(starts):
        return out
    buf = np.frombuffer(data, dtype=np.uint8)
    rows = np.flatnonzero(ends - starts >= _WKB_POLYGON_HEADER + 16)
    if not len(rows):
        return out
    head = buf[starts[rows, None] + np.arange(_WKB_POLYGON_HEADER)]
    words = np.ascontiguousarray(head[:, 1:]).view("<u4")  # type, ring count, point count
    npts = words[:, 2].astype(np.int64)
    ok = (head[:, 0] == 1) & (words[:, 0] == 3) & (words[:, 1] >= 1) & (npts >= 1)
    ok &= starts[rows] + _WKB_POLYGON_HEADER + 16 * npts <= ends[rows]
    rows, npts = rows[ok], npts[ok]
    if not len(rows):
        return out
    # The coordinates are float64 pairs at any byte offset: gather them through the one of
    # eight float64 views of the buffer (shifted by 0..7 bytes) in which they are aligned.
    offsets = starts[rows] + _WKB_POLYGON_HEADER
    order = np.argsort(offsets & 7, kind="stable")
    rows, npts, offsets = rows[order], npts[order], offsets[order]
    counts = 2 * npts
    first = np.cumsum(counts) - counts
    total = int(first[-1] + counts[-1])
    flat = np.repeat((offsets >> 3) - first, counts) + np.arange(total)
    shift = offsets & 7
    groups = np.searchsorted(shift, np.arange(9))
    values = np.empty(total, dtype=np.float64)
    for k in range(8):
        a, b = groups[k], groups[k + 1]
        if a == b:
            continue
        lo, hi = first[a], first[b - 1] + counts[b - 1]
        view = np.frombuffer(data, dtype="<f8", offset=k, count=(len(buf) - k) // 8)
        values[lo:hi] = view[flat[lo:hi]]
    x, y = values[0::2], values[1::2]
    inside = np.zeros(len(x), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    out[rows] = np.logical_or.reduceat(inside, first // 2)
    return out
