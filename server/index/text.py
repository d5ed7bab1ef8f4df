"""Inverted index of words for free-text search (`q`).

Words are lowercase runs of letters and digits. A single-word term matches any word it
prefixes; a multi-word term is a phrase (its words in order, the last one as a prefix),
found through the postings of its words and then confirmed on the candidates' text.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)
TEXT_FIELDS = ("title", "description", "keywords")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def document_text(doc: dict[str, Any]) -> list[str]:
    """The searchable texts of a collection or of an item's properties."""
    out = []
    for key in TEXT_FIELDS:
        value = doc.get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return out


def phrase_in(term_words: list[str], text_words: list[str]) -> bool:
    k = len(term_words)
    for i in range(len(text_words) - k + 1):
        if text_words[i + k - 1].startswith(term_words[-1]) and text_words[i : i + k - 1] == term_words[:-1]:
            return True
    return False


class TextIndexBuilder:
    def __init__(self) -> None:
        self._postings: dict[str, array] = {}

    def add(self, row: int, texts: Iterable[str]) -> None:
        seen = set()
        for text in texts:
            seen.update(words(text))
        for word in seen:
            postings = self._postings.get(word)
            if postings is None:
                postings = self._postings[word] = array("i")  # rows: int32, as the columns' (columns.py)
            postings.append(row)

    def merge(self, other: TextIndexBuilder, offset: int) -> None:
        """Append another builder's postings (its rows numbered from 0) as rows ``offset`` on."""
        postings = self._postings
        for word, rows in other._postings.items():
            mine = postings.get(word)
            if mine is None:
                mine = postings[word] = array("i")
            mine.frombytes((np.frombuffer(rows, dtype=np.int32) + np.int32(offset)).tobytes())

    def freeze(self, new_position: np.ndarray) -> TextIndex:
        vocab = sorted(self._postings)  # each word's rows dropped once placed (once only)
        postings = [np.sort(new_position[np.frombuffer(self._postings.pop(w), dtype=np.int32)]) for w in vocab]
        postings = [p[p >= 0] for p in postings]  # rows dropped from the index are -1
        if any(not len(p) for p in postings):  # words only dropped rows had are gone
            kept = [i for i, p in enumerate(postings) if len(p)]
            vocab, postings = [vocab[i] for i in kept], [postings[i] for i in kept]
        return TextIndex(vocab, postings)


class TextIndex:
    def __init__(self, vocab: list[str], postings: list[np.ndarray]) -> None:
        self.vocab = vocab
        self.postings = postings

    def prefix(self, stem: str) -> np.ndarray:
        lo = bisect_left(self.vocab, stem)
        hi = lo
        while hi < len(self.vocab) and self.vocab[hi].startswith(stem):
            hi += 1
        if hi == lo:
            return np.zeros(0, dtype=np.int64)
        if hi == lo + 1:
            return self.postings[lo]
        return np.unique(np.concatenate(self.postings[lo:hi]))

    def exact(self, word: str) -> np.ndarray:
        i = bisect_left(self.vocab, word)
        if i < len(self.vocab) and self.vocab[i] == word:
            return self.postings[i]
        return np.zeros(0, dtype=np.int64)

    def term(self, term: str, text_of: Callable[[int], list[str]]) -> np.ndarray:
        """Sorted positions whose text contains the term (word prefix or phrase)."""
        term_words = words(term)
        if not term_words:
            return np.zeros(0, dtype=np.int64)
        if len(term_words) == 1:
            return self.prefix(term_words[0])
        candidates = self.prefix(term_words[-1])
        for w in term_words[:-1]:
            candidates = np.intersect1d(candidates, self.exact(w), assume_unique=True)
        keep = [p for p in candidates if phrase_in(term_words, [w for t in text_of(int(p)) for w in [*words(t), "\x00"]])]
        return np.array(keep, dtype=np.int64)
