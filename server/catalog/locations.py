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


OUTSIDE_ROOTS = "outside the catalog root"  # how every refusal of a place out of scope begins


@dataclass
class Scope:
    """The set of places the loader may read from."""

    folders: list[str] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    allow_outside_root: bool = False
    lexical_folders: list[str] = field(default_factory=list)

    def add_root(self, location: str) -> None:
        if is_remote(location) or is_s3(location):
            self.origins.add(origin(location))
        else:
            folder = location if os.path.isdir(location) else os.path.dirname(location)
            self.folders.append(os.path.realpath(folder))
            self.lexical_folders.append(os.path.abspath(folder))

    def refusal(self, location: str) -> str | None:
        """Why ``location`` may not be read, or None. For a local path this is the check of
        the path as written (no `..` out of the root); where symlinks lead is checked on the
        opened file (``real_refusal``)."""
        if is_remote(location) or is_s3(location):
            if origin(location) in self.origins:
                return None
            host = (urlsplit(location).hostname or "").lower()
            if host in self.hosts:
                return None
            return f"{OUTSIDE_ROOTS}s (host {host!r} not allowed)"
        if "://" in location:
            return f"unsupported scheme in {location!r}"
        if not self.folders:
            return "local file reached from a remote catalog"
        if self.allow_outside_root:
            return None
        if _inside(location, self.lexical_folders) or _inside(location, self.folders):
            return None
        return f"{OUTSIDE_ROOTS} folders"

    def real_refusal(self, real_path: str) -> str | None:
        """Why the file actually opened (symlinks resolved) may not be read, or None."""
        if self.allow_outside_root or not self.folders or _inside(real_path, self.folders):
            return None
        return f"{OUTSIDE_ROOTS} folders (through a symlink)"


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)
