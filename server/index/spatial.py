"""A packed two-level box index over numpy arrays (a static R-tree).

Boxes are sorted along a Z-order curve of their centres and grouped into leaves of
LEAF records; leaves are grouped into nodes of FANOUT leaves. A query tests node boxes,
then the leaf boxes inside hit nodes, then the records inside hit leaves, all vectorized.
It holds ~40 bytes per record, where an STRtree holds a GEOS geometry (~300 bytes) each.
"""

from __future__ import annotations

import numpy as np

LEAF = 64
FANOUT = 64


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


def _hits(boxes: np.ndarray, q: tuple[float, float, float, float]) -> np.ndarray:
    return (boxes[:, 0] <= q[2]) & (boxes[:, 2] >= q[0]) & (boxes[:, 1] <= q[3]) & (boxes[:, 3] >= q[1])


class BoxIndex:
    def __init__(self, positions: np.ndarray, bounds: np.ndarray) -> None:
        """``bounds[i]`` (minx, miny, maxx, maxy) is the box of record ``positions[i]``."""
        if len(positions):
            cx = (bounds[:, 0] + bounds[:, 2]) / 2
            cy = (bounds[:, 1] + bounds[:, 3]) / 2
            qx = np.clip((cx + 180.0) / 360.0 * 65535, 0, 65535)
            qy = np.clip((cy + 90.0) / 180.0 * 65535, 0, 65535)
            order = np.argsort(_spread_bits(qx) | (_spread_bits(qy) << np.uint64(1)), kind="stable")
        else:
            order = np.zeros(0, dtype=np.int64)
        self.positions = positions[order]
        self.boxes = np.ascontiguousarray(bounds[order])
        self.leaves = _group_bounds(self.boxes, LEAF) if len(order) else np.zeros((0, 4))
        self.nodes = _group_bounds(self.leaves, FANOUT) if len(self.leaves) else np.zeros((0, 4))

    def query(self, q: tuple[float, float, float, float]) -> np.ndarray:
        """Unsorted positions of the records whose box intersects box ``q``."""
        n = len(self.positions)
        if not n:
            return self.positions
        nodes = np.flatnonzero(_hits(self.nodes, q))
        leaves = _expand(nodes, FANOUT, len(self.leaves))
        leaf_boxes = self.leaves[leaves]
        hit = _hits(leaf_boxes, q)
        inside = hit & _inside(leaf_boxes, q)
        whole = _expand(leaves[inside], LEAF, n)
        partial = _expand(leaves[hit & ~inside], LEAF, n)
        partial = partial[_hits(self.boxes[partial], q)]
        return self.positions[np.concatenate((whole, partial))]


def _inside(boxes: np.ndarray, q: tuple[float, float, float, float]) -> np.ndarray:
    return (boxes[:, 0] >= q[0]) & (boxes[:, 2] <= q[2]) & (boxes[:, 1] >= q[1]) & (boxes[:, 3] <= q[3])


def _expand(groups: np.ndarray, size: int, limit: int) -> np.ndarray:
    """Indices of every member of the given groups of ``size`` consecutive entries."""
    idx = (groups[:, None] * size + np.arange(size)).ravel()
    return idx[idx < limit]
