"""The Free Text Extension: ``q`` over a record's texts (title, description, keywords).

Words are ``\\w+`` runs, lowercased. A one-word term matches a word it prefixes; a quoted
phrase of several words matches them in a row in one text, the last as a prefix.
Comma-separated pieces (outside quotes) are OR'ed. The advanced syntax: terms side by side
or with OR are alternatives, AND binds tighter, NOT negates, ``+`` marks a required term and
``-`` an excluded one, parentheses group.
"""

from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"\w+")


def text_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def term_matches(term: str, texts: list[str]) -> bool:
    """A one-word term: a word it prefixes. More words: a phrase in one text, last as prefix."""
    tw = text_words(term)
    if not tw:
        return False
    for text in texts:
        ws = text_words(text)
        for i in range(len(ws) - len(tw) + 1):
            if ws[i : i + len(tw) - 1] == tw[:-1] and ws[i + len(tw) - 1].startswith(tw[-1]):
                return True
    return False


class QSyntaxError(ValueError):
    pass


def split_q_commas(text: str) -> list[str]:
    pieces, buf, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            pieces.append(buf)
            buf = ""
        else:
            buf += ch
    pieces.append(buf)
    return [p.strip() for p in pieces if p.strip()]


def q_tokens(text: str) -> list[tuple[str, str]]:
    """("(",) (")",) ("op", AND|OR|NOT) ("term", sign, text) as kinds and payloads."""
    out: list[Any] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append((ch,))
            i += 1
        elif ch == '"' or (ch in "+-" and text[i + 1 : i + 2] == '"'):
            sign = "" if ch == '"' else ch
            start = i + (1 if ch == '"' else 2)
            close = text.find('"', start)
            if close < 0:
                raise QSyntaxError("unterminated quote")
            out.append(("term", sign, text[start:close]))
            i = close + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in '()"':
                j += 1
            word = text[i:j]
            i = j
            if word in ("AND", "OR", "NOT"):
                out.append(("op", word))
            elif word[0] in "+-" and len(word) > 1:
                out.append(("term", word[0], word[1:]))
            else:
                out.append(("term", "", word))
    return out


def q_parse(piece: str) -> Any:
    """Advanced free text → a predicate over a record's texts (a Python callable)."""
    toks = q_tokens(piece)
    pos = 0

    def peek() -> Any:
        return toks[pos] if pos < len(toks) else None

    def group() -> Any:
        nonlocal pos
        optional, required, excluded = [], [], []
        while peek() is not None and peek()[0] != ")":
            if peek() == ("op", "OR"):
                pos += 1
                continue
            sign, f = clause()
            {"+": required, "-": excluded, "": optional}[sign].append(f)
        if not (optional or required or excluded):
            raise QSyntaxError("empty")
        if required:
            base = lambda t, fs=tuple(required): all(f(t) for f in fs)  # noqa: E731
        elif optional:
            base = lambda t, fs=tuple(optional): any(f(t) for f in fs)  # noqa: E731
        else:
            base = lambda t: True  # noqa: E731
        return lambda t, fs=tuple(excluded): base(t) and not any(f(t) for f in fs)

    def clause() -> tuple[str, Any]:
        nonlocal pos
        sign, f = unary()
        while peek() == ("op", "AND"):
            pos += 1
            _, g = unary()
            f = _both(f, g)
            sign = ""
        return sign, f

    def unary() -> tuple[str, Any]:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise QSyntaxError("expected a term")
        if tok == ("op", "NOT"):
            pos += 1
            _, f = unary()
            return "", (lambda t, f=f: not f(t))
        if tok[0] == "(":
            pos += 1
            f = group()
            if peek() is None or peek()[0] != ")":
                raise QSyntaxError("unbalanced")
            pos += 1
            return "", f
        if tok[0] != "term":
            raise QSyntaxError(f"unexpected {tok}")
        pos += 1
        return tok[1], (lambda t, term=tok[2]: term_matches(term, t))

    f = group()
    if peek() is not None:
        raise QSyntaxError("unbalanced")
    return f


def q_predicate(value: str | list[str]) -> Any:
    pieces = split_q_commas(value) if isinstance(value, str) else [v.strip() for v in value if v.strip()]
    fs = [q_parse(p) for p in pieces]
    return lambda rec: any(f(rec.texts) for f in fs)


def _both(a: Any, b: Any) -> Any:
    """A predicate true where both are."""
    return lambda t: a(t) and b(t)
