"""An index built from a previous one's rows and a few new ones: what a reload re-reads only
where the catalog changed is merged here, by position, instead of indexing a million items
again (~50 us each).

``ReusingBuilder.add_reused`` takes rows of the previous index (its item bytes, WKB, times,
bounds, columns, words) in load order, interleaved with items added as usual; ``build`` then
makes the index a full build of the same items would make: the same order (newest first, then
collection, then id: the previous index's rows keep theirs, so the new ones are merged in), the
same columns, words, tree and extents. Only what is cheap from arrays is rebuilt (the spatial
index from the bounds, the id lookup); nothing is parsed again.

The previous index is only read; it may be the serving one or a mapped snapshot.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from server.index.blobs import BlobColumn, BlobWriter, FileBlobWriter, SourceFile, SplitBlobColumn
from server.index.builder import IndexBuilder
from server.index.columns import TIME_KEYS, BoolPart, Column, NumberPart, ObjectPart, StringPart, _all_date_times, _time_part
from server.index.ids import IdColumn, bytes_hash
from server.index.index import Index
from server.index.space_time import items_extent
from server.index.text import TextIndex
from server.index.vocab import TextBlock, compact, merge_block

__all__ = ["ReusingBuilder"]

# Below this share of live bytes, the item bytes of the previous index are copied row by row
# (compacted) instead of as one buffer with the dead rows in it.
COMPACT_BELOW = 0.75
# A reload's snapshot refers to the previous one's buffer of item bytes instead of copying it
# (a SplitBlobColumn: 2.3 GB at a million items, ~5 s of copying), and to its footprints (WKB,
# 141 MB at a million: copied and hashed again, ~0.3 CPU-s of the write), while that buffer holds at
# least COMPACT_BELOW of live bytes and the bytes read since, held in the new snapshot, stay
# within MORE_AT_MOST of its size (or MORE_AT_LEAST bytes: a small catalog's are cheap to hold
# twice); past either, the reload writes all of them again (compacts).
MORE_AT_MOST = 0.25
MORE_AT_LEAST = 64 * 1024 * 1024


class ReusingBuilder(IndexBuilder):
    """An IndexBuilder that can also take rows of ``previous`` as they are.

    With a ``spool`` (a snapshot being written, IndexBuilder), the reused rows' item bytes and
    footprints are copied into the new file (in one piece, or only the live rows when most of
    the previous buffer is dead): the new snapshot stands alone and the build holds none of
    them in memory. With ``refer`` too, the item bytes and footprints of the previous snapshot's
    file stay there, the new one referring to it (_append_blobs), until the item bytes are due
    to be compacted (the footprints then too)."""

    def __init__(self, previous: Index, on_reject: Callable[..., None] | None = None,
                 spool: BinaryIO | None = None, refer: bool = False) -> None:
        """``refer``: the snapshot being spooled may refer to the previous one's file for the
        reused items' bytes (_append_blobs) instead of holding a copy: a reload's, kept beside it."""
        super().__init__(on_reject, spool)
        self.previous = previous
        self.refer = refer
        self._reused_rows = array("q")  # builder rows taken from the previous index
        self._reused_from = array("q")  # their positions there

    @property
    def reused(self) -> int:
        """Rows taken from the previous index (after build(): those kept, duplicates dropped)."""
        if len(self.positions) == len(self._ids) and len(self._reused_rows):
            return int((self.positions[np.frombuffer(self._reused_rows, dtype=np.int64)] >= 0).sum())
        return len(self._reused_rows)

    def add_reused(self, positions: np.ndarray, nodes: np.ndarray, labels: list[str]) -> None:
        """Append the previous index's rows at ``positions`` (in load order), each linked by the
        tree node ``nodes[i]`` and reported as ``labels[i]`` should it be a duplicate (an item of
        that collection and id loaded before it: found when the index is built, as for any)."""
        old = self.previous
        positions = np.asarray(positions, dtype=np.int64)
        nodes = np.asarray(nodes, dtype=np.int32)
        codes = old.codes[positions]
        load_code = np.zeros(len(old.collection_names) + 1, dtype=np.int32)  # by old code + 1 (-1: none)
        for code in np.unique(codes).tolist():
            name = old.collection_names[code] if code >= 0 else None
            load_code[code + 1] = self._collection_codes.setdefault(name, len(self._collection_codes))
        first = len(self._ids)
        data, lengths = _take(old.ids.blobs, positions)
        ids = self._ids
        ids.ends.frombytes((len(ids.data) + np.cumsum(lengths)).astype(np.int64).tobytes())
        ids.data += data
        self._labels.extend(labels)
        self.tree.row_nodes.frombytes(nodes.astype(np.int32).tobytes())
        self._collection_code.frombytes(load_code[codes + 1].astype(np.int32).tobytes())
        self._start.frombytes(old.start[positions].astype(np.int64).tobytes())
        self._end.frombytes(old.end[positions].astype(np.int64).tobytes())
        self._sort_time.frombytes(old.sort_time[positions].astype(np.int64).tobytes())
        self._reused_rows.frombytes(np.arange(first, first + len(positions), dtype=np.int64).tobytes())
        self._reused_from.frombytes(positions.tobytes())

    def build(self) -> Index:
        if not self._reused_rows:
            return super().build()
        self._flush_geometries()
        old = self.previous
        n = len(self._ids)
        reused_rows = np.frombuffer(self._reused_rows, dtype=np.int64)
        reused_from = np.frombuffer(self._reused_from, dtype=np.int64)
        is_new = np.ones(n, dtype=bool)
        is_new[reused_rows] = False
        start = np.frombuffer(self._start, dtype=np.int64)
        end = np.frombuffer(self._end, dtype=np.int64)
        sort_time = np.frombuffer(self._sort_time, dtype=np.int64)
        coll_names = sorted({c for c in self._collection_codes if c is not None} | set(self.collections))
        final_code = {name: code for code, name in enumerate(coll_names)}
        remap = np.full(max(len(self._collection_codes), 1), -1, dtype=np.int32)
        for name, load_code in self._collection_codes.items():
            remap[load_code] = final_code.get(name, -1) if name is not None else -1
        codes = remap[np.frombuffer(self._collection_code, dtype=np.int32)]
        ids = self._ids.freeze()
        # each row's id hash (ids.bytes_hash): the previous index's for its rows, hashed for
        # the new ones only; they find the duplicates (with the collection) and the ids
        id_hashes = np.empty(n, dtype=np.uint64)
        id_hashes[reused_rows] = old.ids.hashes()[reused_from]
        new_rows = np.flatnonzero(is_new)
        id_hashes[new_rows] = np.fromiter((bytes_hash(v) for v in ids.views(new_rows)), dtype=np.uint64,
                                          count=len(new_rows))
        load_codes = np.frombuffer(self._collection_code, dtype=np.int32).astype(np.uint64)
        keyed = id_hashes ^ (load_codes * np.uint64(0x9E3779B97F4A7C15))  # (collection, id)
        self._id_hashes = array("q")
        self._id_hashes.frombytes(keyed.view(np.int64).tobytes())
        self._reject_duplicates(ids)
        order = self._merged_order(ids, reused_rows, reused_from, is_new, codes, sort_time)
        new_position = np.full(n, -1, dtype=np.int64)
        new_position[order] = np.arange(len(order), dtype=np.int64)
        self.positions = new_position

        # where each final position's data is: a previous position, or a new row's ordinal
        from_old = ~is_new[order]
        row_old = np.full(n, -1, dtype=np.int64)
        row_old[reused_rows] = reused_from
        old_at = row_old[order][from_old]
        ordinal = (np.cumsum(is_new) - 1)[order][~from_old]
        old_to_final = np.full(old.size, -1, dtype=np.int64)
        old_to_final[reused_from] = new_position[reused_rows]

        new_bounds = np.concatenate(self._bounds) if self._bounds else np.zeros((0, 4))
        new_extremes = np.concatenate(self._extremes) if self._extremes else np.zeros((0, 4), np.uint8)
        old_extremes = np.zeros((old.size, 4), dtype=np.uint8)
        boxes = old._boxes
        if boxes.extremes is not None:
            old_extremes[boxes.positions] = boxes.extremes
        bounds = _gather(old.bounds, old_at, new_bounds, ordinal, from_old)
        extremes = _gather(old_extremes, old_at, new_extremes, ordinal, from_old)
        final_start, final_end, final_codes = start[order], end[order], codes[order]
        json = _append_blobs(self._json, old.json, old_at, ordinal, from_old, self.refer)
        # the footprints refer to the previous file only while the item bytes do: once those are
        # compacted, the snapshot stands alone again (the next reload refers to it)
        wkb = _append_blobs(self._wkb, old.wkb, old_at, ordinal, from_old, isinstance(json, SplitBlobColumn))
        for cid in sorted(self._extents_from_items):
            rows = np.flatnonzero(final_codes == final_code[cid])
            self.collections[cid]["extent"] = items_extent(bounds[rows], final_start[rows], final_end[rows])
        return Index(
            ids=IdColumn.merged(self._ids.freeze(order), id_hashes[order], old.ids, old_to_final),
            codes=final_codes,
            collection_names=coll_names,
            start=final_start,
            end=final_end,
            sort_time=sort_time[order],
            bounds=bounds,
            extremes=extremes,
            json=json,
            wkb=wkb,
            columns=_merge_columns(old.columns, old_to_final, self._columns.freeze(new_position)),
            text=_merge_text(old.text, old_to_final, self._text.freeze(new_position)),
            collections=self.collections,
            root=self.root,
            links_last=True,
            tree=self.tree.freeze(new_position, len(order)),
        )

    def _merged_order(self, ids: BlobColumn, reused_rows: np.ndarray, reused_from: np.ndarray, is_new: np.ndarray,
                      codes: np.ndarray, sort_time: np.ndarray) -> np.ndarray:
        """The rows in the index's order (newest first, then collection, then id: builder's
        _default_order, ids compared as UTF-8 bytes). The reused ones keep the previous index's
        order (their keys are unchanged and collection codes follow the names' order in both),
        the new ones are sorted and merged in; rows dropped (duplicates, geometries) are left out."""
        old_sorted = reused_rows[np.argsort(reused_from, kind="stable")]
        new_rows = np.flatnonzero(is_new)
        if self._rejected:
            rejected = np.fromiter(self._rejected, dtype=np.int64)
            new_rows = new_rows[~np.isin(new_rows, rejected)]
            old_sorted = old_sorted[~np.isin(old_sorted, rejected)]
        new_ids = np.array(ids.many(new_rows), dtype=object)
        new_sorted = new_rows[np.lexsort((new_ids, codes[new_rows], -sort_time[new_rows]))] if len(new_rows) else new_rows

        def key(row: int) -> tuple[int, int, bytes]:
            return (-int(sort_time[row]), int(codes[row]), ids[row])

        old_list = old_sorted.tolist()
        at = [bisect.bisect_left(old_list, key(row), key=key) for row in new_sorted.tolist()]
        return np.insert(old_sorted, np.array(at, dtype=np.int64), new_sorted) if len(at) else old_sorted.copy()


def _take(column: BlobColumn, positions: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The blobs at ``positions`` joined, and their lengths (a numpy gather: no object per blob)."""
    starts = column.starts[positions]
    lengths = column.ends[positions] - starts
    if not len(lengths):
        return b"", lengths
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.frombuffer(column.data, dtype=np.uint8)[shift + np.arange(int(lengths.sum()))].tobytes(), lengths


def _append_blobs(writer: BlobWriter, old: BlobColumn, old_at: np.ndarray, ordinal: np.ndarray,
                  from_old: np.ndarray, refer: bool = False) -> BlobColumn:
    """The blobs of the final positions: the new ones as ``writer`` holds them (``writer``'s
    ``ordinal[i]``-th blob for the i-th final position not ``from_old``), the previous rows'
    (at ``old_at``) appended to it (to its file, when it spools), the previous buffer in one
    piece or, when most of it is dead, only its live rows. ``refer`` (a reload writing its
    snapshot beside the previous one): the previous snapshot's buffer is not copied at all while
    _referable allows, the column made is a SplitBlobColumn of that buffer and ``writer``'s."""
    new_starts, new_ends = writer.offsets()  # copies; a spool's blobs placed by forked processes where they are
    base = writer.size if isinstance(writer, FileBlobWriter) else len(writer.data)
    starts, ends = old.starts[old_at], old.ends[old_at]
    kept = _referable(writer, old, starts, ends) if refer else None
    if kept is not None:  # the previous base buffer's rows stay there; those of its ``more`` are copied
        old_starts, old_ends = starts.copy(), ends.copy()
        moved = ~kept
        old_starts[moved], old_ends[moved] = _copy_rows(writer, old, starts[moved], ends[moved], base)
        shift = len(old.data)
        old_starts[moved] += shift
        old_ends[moved] += shift
        new_starts, new_ends = new_starts + shift, new_ends + shift
        more = writer.freeze()
        split = SplitBlobColumn(old.data, *_placed_rows(from_old, old_starts, old_ends, new_starts[ordinal],
                                                        new_ends[ordinal]), more.data)
        split.placed, split.more_placed = old.placed, more.placed
        return split
    live = int((ends - starts).sum())
    if live >= COMPACT_BELOW * len(old.data) and not isinstance(old, SplitBlobColumn):
        spool = writer if isinstance(writer, FileBlobWriter) else None
        if spool is not None and old.placed is not None:
            # from the previous snapshot's file to the spool by the kernel (FileBlobWriter.append_range)
            spool.append_range(old.placed[0].fileno(), old.placed[1], len(old.data))
        else:
            writer.append(old.data)  # type: ignore[arg-type]  # any buffer: written or joined as is
        old_starts, old_ends = starts + base, ends + base
    else:  # the live rows only, in the buffer's order (the load's): neighbours there in one piece
        old_starts, old_ends = _copy_rows(writer, old, starts, ends, base)
    column = writer.freeze()
    column.starts, column.ends = _placed_rows(from_old, old_starts, old_ends, new_starts[ordinal], new_ends[ordinal])
    return column  # its placement kept: the snapshot writer finds the bytes in its file


def _referable(writer: BlobWriter, old: BlobColumn, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """Which of the previous rows (``starts``, ``ends`` into ``old``) a reload's column can leave
    where they are, in the previous snapshot's base buffer (``old.data``, in a file a snapshot
    may refer to: SourceFile.base), the others to be copied; None when that buffer is not to be
    referred to (not in such a file, or not spooling) or is due to be compacted: less than
    COMPACT_BELOW of it still live, or what would be held beside it more than MORE_AT_MOST of it
    (and MORE_AT_LEAST)."""
    if not isinstance(writer, FileBlobWriter) or old.placed is None or not isinstance(old.placed[0], SourceFile):
        return None
    if old.placed[0].base is None or not len(old.data):
        return None
    kept = starts < len(old.data)
    lengths = ends - starts
    if int(lengths[kept].sum()) < COMPACT_BELOW * len(old.data):
        return None
    if writer.size + int(lengths[~kept].sum()) > max(MORE_AT_MOST * len(old.data), MORE_AT_LEAST):
        return None
    return kept


def _copy_rows(writer: BlobWriter, old: BlobColumn, starts: np.ndarray, ends: np.ndarray, base: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Append the blobs of ``old`` at ``starts``..``ends`` to ``writer`` in the order they are
    in its buffers (the load's: neighbours there are copied in one piece; by the kernel from a
    file where both are files); their starts and ends in ``writer`` (its first byte at ``base``)."""
    lengths = ends - starts
    by_place = np.argsort(starts, kind="stable")
    spool = writer if isinstance(writer, FileBlobWriter) else None
    for buffer, offset, placed in old.parts():
        s_part, e_part = starts[by_place], ends[by_place]
        inside = (s_part >= offset) & (s_part < offset + len(buffer)) if len(buffer) else np.zeros(len(s_part), bool)
        for s, e in _runs(s_part[inside] - offset, e_part[inside] - offset):
            if spool is not None and placed is not None:
                spool.append_range(placed[0].fileno(), placed[1] + s, e - s)
            else:
                writer.append(buffer[s:e])  # type: ignore[arg-type]
    # an empty blob in no buffer (e.g. at the very end) takes no bytes: its place is its neighbour's end
    new_ends = np.empty_like(lengths)
    new_ends[by_place] = base + np.cumsum(lengths[by_place])
    return new_ends - lengths, new_ends


def _placed_rows(from_old: np.ndarray, old_starts: np.ndarray, old_ends: np.ndarray, new_starts: np.ndarray,
                 new_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The starts and ends of the final positions: the previous rows' where ``from_old``."""
    starts = np.empty(len(from_old), dtype=np.int64)
    ends = np.empty(len(from_old), dtype=np.int64)
    starts[from_old], ends[from_old] = old_starts, old_ends
    starts[~from_old], ends[~from_old] = new_starts, new_ends
    return starts, ends


def _runs(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """The byte ranges [start, end) of blobs taken in this order, those that follow each other
    in the buffer joined into one range."""
    if not len(starts):
        return []
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    firsts = np.concatenate(([0], breaks))
    lasts = np.concatenate((breaks - 1, [len(starts) - 1]))
    return list(zip(starts[firsts].tolist(), ends[lasts].tolist()))


def _gather(old: np.ndarray, old_at: np.ndarray, new: np.ndarray, ordinal: np.ndarray, from_old: np.ndarray) -> np.ndarray:
    out = np.empty((len(from_old), *old.shape[1:]), dtype=old.dtype)
    if old.ndim == 2 and old.flags.c_contiguous and new.flags.c_contiguous and new.dtype == old.dtype:
        # each row as one value: a 1-d gather (a 2-d fancy index of (n, 4) rows was ~3x the time)
        row = np.dtype((np.void, old.dtype.itemsize * old.shape[1]))
        flat = out.view(row).ravel()
        flat[np.flatnonzero(from_old)] = old.view(row).ravel().take(old_at)
        flat[np.flatnonzero(~from_old)] = new.view(row).ravel().take(ordinal)
        return out
    out[from_old] = old[old_at]
    out[~from_old] = new[ordinal]
    return out


def _merge_blobs(old: BlobColumn, old_at: np.ndarray, added: BlobColumn, ordinal: np.ndarray,
                 from_old: np.ndarray) -> BlobColumn:
    """The blobs of the final positions: the previous buffer copied once (or only its live
    rows, when most of it is dead), the new blobs after it (``added[ordinal[i]]`` for the
    i-th final position not ``from_old``)."""
    lengths = old.ends[old_at] - old.starts[old_at]
    live = int(lengths.sum())
    if live >= COMPACT_BELOW * len(old.data):
        data = bytearray(old.data)
        old_starts, old_ends = old.starts[old_at], old.ends[old_at]
    else:
        data = bytearray(live)
        view, source = memoryview(data), old.data
        at = 0
        for s, e in zip(old.starts[old_at].tolist(), old.ends[old_at].tolist()):
            view[at : at + e - s] = source[s:e]
            at += e - s
        old_ends = np.cumsum(lengths)
        old_starts = old_ends - lengths
        del view
    base = len(data)
    data += added.data
    starts = np.empty(len(from_old), dtype=np.int64)
    ends = np.empty(len(from_old), dtype=np.int64)
    starts[from_old], ends[from_old] = old_starts, old_ends
    starts[~from_old], ends[~from_old] = added.starts[ordinal] + base, added.ends[ordinal] + base
    return BlobColumn(data, starts, ends)


def _placed(rows: np.ndarray, old_to_final: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The previous rows' final positions (still sorted: reused rows keep their order) and
    which of them are kept."""
    mapped = old_to_final[rows]
    keep = np.flatnonzero(mapped >= 0)
    return mapped[keep], keep


def _insert(old_rows: np.ndarray, new_rows: np.ndarray, *pairs: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Two sorted row lists merged (no row in both), each pair of values following its rows."""
    at = np.searchsorted(old_rows, new_rows)
    return [np.insert(old_rows, at, new_rows)] + [np.insert(a, at, b) for a, b in pairs]


def _merge_vocab(old_used: list[str], new_vocab: list[str]) -> tuple[list[str], np.ndarray]:
    """The sorted union of two sorted vocabularies, and where each of ``old_used`` lands."""
    known = set(old_used) if len(new_vocab) * 8 > len(old_used) else None
    absent = []
    for word in new_vocab:
        if known is not None:
            if word not in known:
                absent.append(word)
            continue
        i = bisect.bisect_left(old_used, word)
        if i == len(old_used) or old_used[i] != word:
            absent.append(word)
    if not absent:
        return old_used, np.arange(len(old_used), dtype=np.int64)
    cuts = [bisect.bisect_left(old_used, word) for word in absent]
    merged: list[str] = []
    last = 0
    for cut, word in zip(cuts, absent):
        merged.extend(old_used[last:cut])
        merged.append(word)
        last = cut
    merged.extend(old_used[last:])
    shift = np.searchsorted(np.array(cuts, dtype=np.int64), np.arange(len(old_used)), side="right")
    return merged, np.arange(len(old_used), dtype=np.int64) + shift


def _codes_in(vocab: list[str], words: list[str]) -> np.ndarray:
    index = {w: i for i, w in enumerate(vocab)} if len(words) * 8 > len(vocab) else None
    if index is not None:
        return np.array([index[w] for w in words], dtype=np.int64)
    return np.array([bisect.bisect_left(vocab, w) for w in words], dtype=np.int64)


def _merge_strings(old: StringPart | None, old_to_final: np.ndarray, new: StringPart | None) -> StringPart | None:
    if old is None:
        return new
    rows, keep = _placed(old.rows, old_to_final)
    if not len(rows) and new is None:
        return None
    codes = old.codes[keep].astype(np.int64)
    used = np.flatnonzero(np.bincount(codes, minlength=len(old.vocab))) if len(codes) else np.zeros(0, np.int64)
    if isinstance(old.vocab, TextBlock):  # a large vocabulary: merged as bytes, no str a text
        part = _merge_block_part(old, rows, codes, used, new)
        if part is not None:
            return part
    old_vocab = list(old.vocab)  # (a TextBlock decoded once, vocab.compact again below)
    old_used = [old_vocab[c] for c in used.tolist()] if len(used) != len(old_vocab) else old_vocab
    del old_vocab
    renumber = np.full(len(old.vocab), -1, dtype=np.int64)
    if new is None:
        renumber[used] = np.arange(len(used))
        return StringPart(rows, renumber[codes].astype(np.int32), compact(list(old_used)))
    new_vocab = list(new.vocab)
    vocab, landed = _merge_vocab(old_used, new_vocab)
    renumber[used] = landed
    new_codes = _codes_in(vocab, new_vocab)[new.codes]
    rows, merged = _insert(rows, new.rows, (renumber[codes], new_codes))
    return StringPart(rows, merged.astype(np.int32), compact(list(vocab)))


def _merge_block_part(old: StringPart, rows: np.ndarray, codes: np.ndarray, used: np.ndarray,
                      new: StringPart | None) -> StringPart | None:
    """_merge_strings of a part whose vocabulary is a TextBlock (vocab.merge_block); its kept
    ``rows`` (final positions), their ``codes`` and the codes ``used`` (sorted) given; None:
    merge it as a list."""
    assert isinstance(old.vocab, TextBlock)
    size = len(old.vocab)
    if len(used) == size and new is None:  # nothing to change: the block as it is
        return StringPart(rows, codes.astype(np.int32), old.vocab)
    new_vocab = list(new.vocab) if new is not None else []
    merged = merge_block(old.vocab, used, new_vocab)
    if merged is None:
        return None
    block, landed, word_codes = merged
    renumber = np.full(size, -1, dtype=np.int64)
    renumber[used] = landed
    if new is None:
        return StringPart(rows, renumber[codes].astype(np.int32), block)
    rows, merged_codes = _insert(rows, new.rows, (renumber[codes], word_codes[new.codes]))
    return StringPart(rows, merged_codes.astype(np.int32), block)


def _merge_parts(old: Any, old_to_final: np.ndarray, new: Any, kind: type) -> Any:
    """A number or boolean part: rows and values."""
    if old is None:
        return new
    rows, keep = _placed(old.rows, old_to_final)
    if not len(rows) and new is None:
        return None
    values = old.values[keep]
    if new is None:
        return kind(rows, values)
    rows, values = _insert(rows, new.rows, (values, new.values))
    return kind(rows, values)


def _merge_objects(old: ObjectPart | None, old_to_final: np.ndarray, new: ObjectPart | None) -> ObjectPart | None:
    if old is None:
        return new
    rows, keep = _placed(old.rows, old_to_final)
    if not len(rows) and new is None:
        return None
    added = new.blobs if new is not None else BlobColumn(b"", np.zeros(0, np.int64), np.zeros(0, np.int64))
    new_rows = new.rows if new is not None else np.zeros(0, np.int64)
    # the merged order: old rows kept, new rows inserted; blobs follow the same permutation
    at = np.searchsorted(rows, new_rows)
    from_old = np.ones(len(rows) + len(new_rows), dtype=bool)
    from_old[at + np.arange(len(new_rows))] = False
    blobs = _merge_blobs(old.blobs, keep, added, np.arange(len(new_rows)), from_old)
    return ObjectPart(np.insert(rows, at, new_rows), blobs)


def _merge_time(key: str, strings: StringPart | None, old: Column | None, old_to_final: np.ndarray,
                new: Column | None) -> NumberPart | None:
    """The time part a full build would derive from the merged strings: merged from both
    sides' parsed times where the previous index had them, parsed again otherwise (rare)."""
    if strings is None or not (key in TIME_KEYS or _all_date_times(strings.vocab)):
        return None
    old_time, new_time = (old.time if old is not None else None), (new.time if new is not None else None)
    old_strings = old.string if old is not None else None
    new_strings = new.string if new is not None else None
    if old_strings is not None and old_time is None and len(_placed(old_strings.rows, old_to_final)[0]):
        return _time_part(strings)  # the previous index held non-date strings under this key
    if new_strings is not None and new_time is None:
        return _time_part(strings)
    return _merge_parts(old_time, old_to_final, new_time, NumberPart)


def _merge_columns(old: dict[str, Column], old_to_final: np.ndarray, new: dict[str, Column]) -> dict[str, Column]:
    out = {}
    for key in sorted(set(old) | set(new)):
        o, c = old.get(key), new.get(key)
        column = Column(key)
        column.number = _merge_parts(o.number if o else None, old_to_final, c.number if c else None, NumberPart)
        column.string = _merge_strings(o.string if o else None, old_to_final, c.string if c else None)
        column.boolean = _merge_parts(o.boolean if o else None, old_to_final, c.boolean if c else None, BoolPart)
        column.objects = _merge_objects(o.objects if o else None, old_to_final, c.objects if c else None)
        if column.string is not None:
            column.time = _merge_time(key, column.string, o, old_to_final, c)
        if column.parts:
            out[key] = column
    return out


def _merge_text(old: TextIndex, old_to_final: np.ndarray, new: TextIndex) -> TextIndex:
    """Words of the previous index with their kept positions (words left with none are gone,
    as in a full build), merged with the new rows' words."""
    if old.postings:
        lengths = np.array([len(p) for p in old.postings], dtype=np.int64)
        mapped = old_to_final[np.concatenate(old.postings)] if lengths.sum() else np.zeros(0, np.int64)
        word_of = np.repeat(np.arange(len(lengths)), lengths)
        keep = mapped >= 0
        mapped, word_of = mapped[keep], word_of[keep]
        counts = np.bincount(word_of, minlength=len(lengths))
        live = np.flatnonzero(counts)
        postings = np.split(mapped, np.cumsum(counts[live])[:-1]) if len(live) else []
        vocab = [old.vocab[i] for i in live.tolist()]
    else:
        postings, vocab = [], []
    merged, landed = _merge_vocab(vocab, new.vocab)
    if merged is vocab:  # no new word: postings of existing words grow
        out = list(postings)
    else:
        out = [np.zeros(0, np.int64)] * len(merged)
        for i, p in zip(landed.tolist(), postings):
            out[i] = p
    for word, p in zip(new.vocab, new.postings):
        i = bisect.bisect_left(merged, word)
        out[i] = np.union1d(out[i], p) if len(out[i]) else p
    return TextIndex(list(merged), out)
