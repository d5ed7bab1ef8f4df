"""Parsers for the search extensions' parameters: sortby, fields, query (legacy)."""

from __future__ import annotations

from typing import Any

import orjson

from server.errors import InvalidQueryParameter
from server.query.model import FieldsSpec, SortField

QUERY_OPS = {"eq", "neq", "lt", "lte", "gt", "gte", "startsWith", "endsWith", "contains", "in"}
MAX_SORT_FIELDS = 8
FIELDS_MEMBERS = ("include", "exclude")  # of a POST fields object; any other is a 400, not ignored
# Marks a comparison from the legacy query extension, whose clients often send numbers as
# strings ({"gsd": {"lt": "20"}}): such a literal also compares as a number.
COERCE = "x-coerce-numeric-strings"


def parse_sortby(value: Any) -> list[SortField]:
    """GET `+a,-b` (`properties.` optional) or POST [{"field": .., "direction": asc|desc}]. The
    names as given: the index maps them to its columns (Table.property_key)."""
    if value in (None, "", []):
        return []
    fields: list[SortField] = []
    if isinstance(value, str):
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            descending = part.startswith("-")
            name = part.lstrip("+-").strip()
            if not name:
                raise InvalidQueryParameter(f"Invalid sortby {value!r}")
            fields.append(SortField(name, descending))
    elif isinstance(value, list):
        for entry in value:
            if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
                raise InvalidQueryParameter("Invalid sortby: expected [{field, direction}]")
            direction = str(entry.get("direction", "asc")).lower()
            if direction not in ("asc", "desc"):
                raise InvalidQueryParameter(f"Invalid sortby direction {entry.get('direction')!r}")
            fields.append(SortField(entry["field"], direction == "desc"))
    else:
        raise InvalidQueryParameter("Invalid sortby")
    if len(fields) > MAX_SORT_FIELDS:
        raise InvalidQueryParameter(f"Invalid sortby: at most {MAX_SORT_FIELDS} fields")
    return fields


def parse_fields(value: Any) -> FieldsSpec | None:
    """GET `a,-b,+c` or POST {"include": [...], "exclude": [...]}."""
    if value is None:
        return None
    spec = FieldsSpec()
    if value == "":
        return spec  # `fields=`: the default set
    if isinstance(value, str):
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if part.startswith("-"):
                spec.exclude.append(part[1:].strip())
            else:
                spec.include.append(part.lstrip("+").strip())
    elif isinstance(value, dict):
        unknown = sorted(set(value) - set(FIELDS_MEMBERS))
        if unknown:
            raise InvalidQueryParameter(f"Invalid fields: unknown member {unknown[0]!r}; expected include and/or exclude")
        spec.include_given = "include" in value
        for key in FIELDS_MEMBERS:
            names = value.get(key)
            names = [] if names is None else names
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InvalidQueryParameter(f"Invalid fields.{key}: expected an array of strings")
            getattr(spec, key).extend(names)
    else:
        raise InvalidQueryParameter("Invalid fields: expected include/exclude lists")
    return spec


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_to_cql2(value: Any) -> Any:
    """The legacy query extension, translated to CQL2 JSON so one evaluator serves both."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidQueryParameter("Invalid query: not JSON") from None
    if not isinstance(value, dict):
        raise InvalidQueryParameter("Invalid query: expected an object of {property: {op: value}}")
    if not value:  # GET ?query={} parses to {} only here: no condition, as {} in a POST body
        return None
    clauses: list[dict[str, Any]] = []
    for name, ops in value.items():
        if not isinstance(ops, dict) or not ops:
            raise InvalidQueryParameter(f"Invalid query for {name!r}: expected {{op: value}}")
        prop = {"property": name}  # as given: the index maps it (Table.property_key)
        for op, operand in ops.items():
            if op not in QUERY_OPS:
                raise InvalidQueryParameter(f"Invalid query operator {op!r}; use one of {sorted(QUERY_OPS)}")
            if op in ("startsWith", "endsWith", "contains"):
                if not isinstance(operand, str):
                    raise InvalidQueryParameter(f"Invalid query: {op} needs a string")
                text = _like_escape(operand)
                pattern = {"startsWith": f"{text}%", "endsWith": f"%{text}", "contains": f"%{text}%"}[op]
                clauses.append({"op": "like", "args": [prop, pattern]})
            elif op == "in":
                if not isinstance(operand, list) or not operand:
                    raise InvalidQueryParameter("Invalid query: in needs a non-empty array")
                # A scalar property equal to one of the values, or an array property sharing one.
                clauses.append({"op": "or", "args": [
                    {"op": "in", "args": [prop, operand], COERCE: True},
                    {"op": "a_overlaps", "args": [prop, operand]},
                ]})
            else:
                if isinstance(operand, (dict, list)):
                    raise InvalidQueryParameter(f"Invalid query: {op} needs a scalar")
                symbol = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
                clauses.append({"op": symbol, "args": [prop, operand], COERCE: True})
    return clauses[0] if len(clauses) == 1 else {"op": "and", "args": clauses}
