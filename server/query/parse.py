"""Request input (GET query strings or a POST body) → SearchQuery, or a 400 saying why: every
parameter of server.query.parameters that the endpoint takes, parsed by its own parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.errors import InvalidQueryParameter
from server.query.model import SearchQuery
from server.query.parameters import ITEM_SEARCH, PARAMETERS, Parameter, ParseContext, taken_by
from server.settings import RequestLimits

DEFAULT_LIMITS = RequestLimits()


# Per endpoint: the table it was made from, the parameters the endpoint takes, their names
_TAKEN: dict[str, tuple[tuple[Parameter, ...], tuple[Parameter, ...], frozenset[str]]] = {}


def _taken(endpoint: str) -> tuple[tuple[Parameter, ...], frozenset[str]]:
    """The parameters ``endpoint`` takes, and their names: made once per endpoint, and again
    when the table changed (a parameter added to PARAMETERS is taken at once)."""
    table = tuple(PARAMETERS)
    made = _TAKEN.get(endpoint)
    if made is None or made[0] != table:
        parameters = tuple(taken_by(endpoint))
        made = _TAKEN[endpoint] = (table, parameters, frozenset(p.name for p in parameters))
    return made[1], made[2]


def parse_search(
    params: Mapping[str, Any], *, default_limit: int, max_limit: int, body: bool = False,
    limits: RequestLimits = DEFAULT_LIMITS, endpoint: str = ITEM_SEARCH,
) -> SearchQuery:
    """The same rules for GET (all strings) and POST (JSON values). In a POST ``body``, bbox,
    sortby, fields, query and intersects must be JSON, not GET's strings; ids and collections
    may be either (clients, stac-api-validator among them, send comma lists). Parameters the
    endpoint does not take are ignored."""
    parameters, taken = _taken(endpoint)
    if body:
        for parameter in parameters:
            if parameter.body_kind and isinstance(params.get(parameter.name), str):
                raise InvalidQueryParameter(
                    f"Invalid {parameter.name}: expected {parameter.body_kind} in a POST body, got a string")
    context = ParseContext(params, taken, body, default_limit, max_limit, limits)
    query = SearchQuery()
    for parameter in parameters:
        if parameter.parse is None:
            continue
        value = parameter.parse(params.get(parameter.name), context)
        if parameter.attribute:
            setattr(query, parameter.attribute, value)
        else:
            query.extra[parameter.name] = value
    if query.legacy_filter is not None:  # the legacy query extension is one more condition
        query.filter = query.legacy_filter if query.filter is None else \
            {"op": "and", "args": [query.filter, query.legacy_filter]}
    return query
