"""Exceptions the API raises on purpose, and their mapping to HTTP answers.

Every error body is ``{"code": <exception name>, "description": <message>}``.
"""

from __future__ import annotations


class StacApiError(Exception):
    status_code = 500

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    @property
    def code(self) -> str:
        return type(self).__name__


class InvalidQueryParameter(StacApiError):
    status_code = 400


class InvalidRequestBody(StacApiError):
    status_code = 400


class InvalidRequestHeader(StacApiError):
    """A header the answer depends on, of the wrong form (a Host that is no host[:port])."""

    status_code = 400


class QueryTooExpensive(StacApiError):
    """Over the search time budget (STAC_STATIC_QUERY_TIME_BUDGET)."""

    status_code = 400


class NotFoundError(StacApiError):
    status_code = 404


class PayloadTooLarge(StacApiError):
    status_code = 413


class UnsupportedMediaType(StacApiError):
    status_code = 415


class NotReady(StacApiError):
    status_code = 503


class ServerStopping(StacApiError):
    """A request still running at the end of the stop's grace (server.api.header_limit)."""

    status_code = 503


class RequestHeaderFieldsTooLarge(StacApiError):
    status_code = 431
