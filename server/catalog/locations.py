"""Where a document lives: an absolute local path or an http(s) URL, and which links may be followed.

A catalog may only lead the loader to documents inside the configured roots' scope: the
root's folder for a local root, the root's origin for a remote one, plus hosts the operator
allowed. Everything else (other hosts, file://, metadata addresses, ``..`` escapes) is refused.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

REMOTE_SCHEMES = ("http", "https")


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def is_url(location: str) -> bool:
    """Not a local path: http(s):// or s3://."""
    return is_remote(location) or is_s3(location)


def is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://")) or location[:8].lower().startswith(("http://", "https://"))


def resolve_href(base: str, href: str) -> str:
    """Absolute location of ``href`` as written in the document at ``base``."""
    if is_remote(href):
        return href
    if "://" not in href[:12] and ":" not in href[:2]:  # the common case: a relative path
        if is_remote(base):
            return urljoin(base, href)
        if is_s3(base):  # urljoin does not know s3://
            bucket, _, key = base[len("s3://"):].partition("/")
            path = posixpath.normpath(posixpath.join("/" + posixpath.dirname(key), href)).lstrip("/")
            return f"s3://{bucket}/{path}"
        if href.startswith("/"):
            return os.path.normpath(href)
        return os.path.normpath(os.path.join(os.path.dirname(base), unquote(href)))
    parts = urlsplit(href)
    if parts.scheme in REMOTE_SCHEMES:
        return href
    if parts.scheme == "file":
        return os.path.normpath(unquote(parts.path))
    if len(parts.scheme) > 1:  # s3://, ftp://, ... kept as written (a single letter is a drive)
        return href
    if is_remote(base):
        return urljoin(base, href)
    if os.path.isabs(href):
        return os.path.normpath(href)
    return os.path.normpath(os.path.join(os.path.dirname(base), unquote(href)))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class RealPaths:
    """os.path.realpath for many files in few trees: one lstat per new folder, not per component."""

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def folder(self, path: str) -> str:
        known = self._folders.get(path)
        if known is not None:
            return known
        parent = os.path.dirname(path)
        if parent == path:
            real = path
        elif os.path.islink(path):
            real = os.path.realpath(path)
        else:
            real = os.path.join(self.folder(parent), os.path.basename(path))
        self._folders[path] = real
        return real

    def file(self, path: str) -> str:
        if os.path.islink(path):
            return os.path.realpath(path)
        return os.path.join(self.folder(os.path.dirname(path)), os.path.basename(path))


@dataclass
class Scope:
    """The set of places the loader may read from."""

    folders: list[str] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    allow_outside_root: bool = False
    real_paths: RealPaths = field(default_factory=RealPaths)

    def add_root(self, location: str) -> None:
        if is_remote(location) or is_s3(location):
            self.origins.add(origin(location))
        else:
            folder = location if os.path.isdir(location) else os.path.dirname(location)
            self.folders.append(os.path.realpath(folder))

    def refusal(self, location: str, real: str | None = None) -> str | None:
        """Why ``location`` (with ``real``, its resolved path if local) may not be read, or None."""
        if is_remote(location) or is_s3(location):
            if origin(location) in self.origins:
                return None
            host = (urlsplit(location).hostname or "").lower()
            if host in self.hosts:
                return None
            return f"outside the catalog roots (host {host!r} not allowed)"
        if "://" in location:
            return f"unsupported scheme in {location!r}"
        if not self.folders:
            return "local file reached from a remote catalog"
        if self.allow_outside_root:
            return None
        real = real or self.real_paths.file(location)
        for folder in self.folders:
            if real == folder or real.startswith(folder.rstrip(os.sep) + os.sep):
                return None
        return "outside the catalog root folders"
