"""The `q` parameter: comma lists (OR) of terms, with the advanced syntax inside each.

Advanced syntax: words and "quoted phrases"; AND, OR (also a plain space) and NOT;
parentheses; `+term` must match and `-term` must not. Parsed to a small tree:
("term", text) | ("and", [...]) | ("or", [...]) | ("not", node) | ("all",).
"""

from __future__ import annotations

import re
from typing import Any

from server.errors import InvalidQueryParameter

Node = tuple[Any, ...]
_TOKEN = re.compile(r'\s*(?:(\()|(\))|([+-]?)"([^"]*)"|([+-]?)([^\s()"]+))')
MAX_TERMS = 64
_WORD = re.compile(r"\w", re.UNICODE)


def split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidQueryParameter(f"Invalid q {text!r}: cannot read at position {pos}")
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(4) is not None:
            out.append((m.group(3) or "", "\x01" + m.group(4)))
        else:
            sign, word = m.group(5) or "", m.group(6)
            if not sign and word in ("AND", "OR", "NOT"):
                out.append((word, word))
            else:
                out.append((sign, word))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], source: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.source = source

    def error(self, why: str) -> InvalidQueryParameter:
        return InvalidQueryParameter(f"Invalid q {self.source!r}: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expression(self) -> Node:
        """A sequence of clauses joined by OR (explicit or by a space), with +/- clauses."""
        optional: list[Node] = []
        required: list[Node] = []
        excluded: list[Node] = []
        while True:
            tok = self.peek()
            if tok is None or tok[0] == ")":
                break
            if tok[0] == "OR":
                self.take()
                continue
            sign, node = self.conjunction()
            (required if sign == "+" else excluded if sign == "-" else optional).append(node)
        if not (optional or required or excluded):
            raise self.error("nothing to search for")
        parts: list[Node] = []
        if required:
            parts.extend(required)
        elif optional:
            parts.append(optional[0] if len(optional) == 1 else ("or", optional))
        else:
            parts.append(("all",))
        parts.extend(("not", n) for n in excluded)
        return parts[0] if len(parts) == 1 else ("and", parts)

    def conjunction(self) -> tuple[str, Node]:
        sign, node = self.unary()
        while self.peek() is not None and self.peek()[0] == "AND":  # type: ignore[index]
            self.take()
            _, right = self.unary()
            node = ("and", [node, right])
            sign = ""
        return sign, node

    def unary(self) -> tuple[str, Node]:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a term")
        if tok[0] == "NOT":
            self.take()
            _, node = self.unary()
            return "", ("not", node)
        if tok[0] == "(":
            self.take()
            node = self.expression()
            if self.peek() is None or self.take()[0] != ")":
                raise self.error("unbalanced parentheses")
            return "", node
        if tok[0] in ("AND", ")"):
            raise self.error(f"unexpected {tok[1]!r}")
        sign, word = self.take()
        text = word.lstrip("\x01")
        if not _WORD.search(text):  # documents are indexed by words: such a term can match nothing
            raise self.error(f"{text!r} has no letters or digits to search for")
        return sign, ("term", text)


def parse_q(value: Any) -> Node | None:
    """GET: a comma-separated string; POST: an array of strings (or one string)."""
    if value is None:
        return None
    if isinstance(value, str):
        pieces = split_commas(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        pieces = [v.strip() for v in value if v.strip()]
    else:
        raise InvalidQueryParameter("Invalid q: expected a string or an array of strings")
    if not pieces:
        return None
    nodes, terms = [], 0
    for piece in pieces:
        tokens = _tokens(piece)
        terms += len(tokens)
        if terms > MAX_TERMS:  # over all pieces: a comma list or an array is no way around it
            raise InvalidQueryParameter(f"Invalid q: more than {MAX_TERMS} terms")
        parser = _Parser(tokens, piece)
        node = parser.expression()
        if parser.peek() is not None:
            raise parser.error("unbalanced parentheses")
        nodes.append(node)
    return nodes[0] if len(nodes) == 1 else ("or", nodes)
