"""Hrefs a client can use, made once at load time.

The loader resolves every asset and link href against the document that holds it. For a
catalog read over HTTP that gives the address the *server* reads from (under compose
``http://bucket/...``, a name only the compose network knows); for a catalog on disk, a path on
the server, of use to no client and a map of the server's folders. So each resolved href is,
in this order:

1. mapped: it starts with the SRC of a ``--public-href SRC=DST`` (a URL prefix, an ``s3://``
   prefix or a local folder), so it is served starting with DST; the longest SRC wins;
2. served: with ``--serve-assets``, a local file inside a root's folder is served by the API at
   ``/_assets/{root}/{path}`` (server/index/served.py; server/api/assets.py);
3. a URL (http(s), s3) as resolved;
4. a local path neither maps nor serves: left as the catalog wrote it when that is relative,
   and counted (the load report's ``hrefs_not_public``); an absolute path or ``file:`` URL
   into a root's folder is written relative to the document instead (counted too): never an
   absolute path on the server of the roots' folders.

An absolute path elsewhere is left as written, not counted: the catalog's own text, which may
be a root-relative URL; but the bundled sample's ``/sample/thumbnails/...`` (in a document of
the sample's folder), which the API serves, is stored as a served href (server/index/served.py),
so that it is written below the API's base URL, prefix included.
An href with another scheme (``mailto:``, ``urn:``, ``data:``) is left as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from server.catalog.locations import is_url, resolve_href
from server.index.served import THUMBNAILS_PATH, own_href, served_href
from server.sample import SAMPLE_DIR

# A scheme of two letters or more (one letter is a Windows drive).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
_SAFE = "/~!$&'()*+,;=:@"
_WEB = ("https://", "http://")
_SAMPLE_FOLDER = os.path.join(str(SAMPLE_DIR), "")
_SAMPLE_THUMBNAILS = THUMBNAILS_PATH + "/"


def _folder(path: str) -> str:
    return os.path.join(path, "")  # with its trailing separator: matched by whole folders


def _in_sample(location: str) -> bool:
    """Whether the local document ``location`` is one of the bundled sample's (its folder named
    through a symlink too: resolved, which only the rare root-relative hrefs pay for)."""
    return location.startswith(_SAMPLE_FOLDER) or os.path.realpath(location).startswith(_SAMPLE_FOLDER)


class PublicHrefs:
    """Turns the location an href resolves to into the href served (see the module's doc).
    ``mappings``: (SRC, DST) pairs, a local SRC an absolute folder ending with a separator
    (Settings.public_href_pairs); ``root_folders``: the local roots' folders, as (folder as
    written, real folder) pairs in root order; ``serve``: the API serves the files inside them
    (``--serve-assets``)."""

    def __init__(self, mappings: Iterable[tuple[str, str]] = (), root_folders: Sequence[tuple[str, str]] = (),
                 serve: bool = False) -> None:
        url_mappings, local_mappings = [], []
        for source, public in mappings:
            if "://" in source:
                url_mappings.append((source, public))
            else:  # the folder as written and where it really is (a root named through a symlink)
                for form in dict.fromkeys((_folder(os.path.abspath(source)), _folder(os.path.realpath(source)))):
                    local_mappings.append((form, public))
        self._url_mappings = sorted(url_mappings, key=lambda m: len(m[0]), reverse=True)
        self._local_mappings = sorted(local_mappings, key=lambda m: len(m[0]), reverse=True)
        # the real folders of the roots, one number each (the {root} of /_assets/{root}/...)
        real_folders = list(dict.fromkeys(real for _, real in root_folders))
        folders = []
        for written, real in root_folders:
            number = real_folders.index(real)
            for form in dict.fromkeys((_folder(written), _folder(real))):
                folders.append((form, number))
        self._roots = sorted(folders, key=lambda s: len(s[0]), reverse=True)
        self._served = self._roots if serve else []
        self.asset_roots: list[str] = real_folders if serve else []  # the folders the API serves
        self._local_rules = bool(self._local_mappings or self._served)  # something may make a local href public
        self.not_public = 0  # local hrefs left as written: no mapping and not served
        # A root is in the sample's folder: its thumbnails' hrefs are stored as served (own_href).
        # Known from the roots, not from an href met: forked readers and a reload's reused items
        # do not report back what they met.
        self.sample_hrefs = any(_folder(real).startswith(_SAMPLE_FOLDER) for real in real_folders)
        # starts of hrefs that href() returns as they are, at once: http(s) URLs when no
        # --public-href maps URLs (startswith of an empty tuple is False)
        self.as_written: tuple[str, ...] = () if self._url_mappings else _WEB

    def href(self, base: str, href: str) -> str:
        """The href to serve for ``href`` as written in the document at ``base``. Runs for
        every asset and link of a load, so the common cases come first, cheapest."""
        if href.startswith(_WEB):  # absolute http(s): the most common by far
            return (self._mapped_url(href) or href) if self._url_mappings else href
        if _SCHEME.match(href) and not href[:5].lower() == "file:" and not is_url(href):
            return href  # mailto:, urn:, data: ...
        relative = "://" not in href and not href.startswith(("/", "\\")) and ":" not in href[:2]
        if relative and not self._local_rules and not is_url(base):
            self.not_public += 1  # a local file nothing makes public: as written, nothing to resolve
            return href
        target = resolve_href(base, href)
        if is_url(target):
            return self._mapped_url(target) or target
        public = self._mapped_local(target) or self._served_file(target)
        if public is not None:
            return public
        if relative:
            self.not_public += 1
            return href  # as the catalog wrote it
        if is_url(base) or not any(target.startswith(folder) for folder, _ in self._roots):
            if self.sample_hrefs and href.startswith(_SAMPLE_THUMBNAILS) and _in_sample(base):
                return own_href(href)  # below the API's base URL, which may have a path (a proxy's prefix)
            return href  # the catalog's own text (a root-relative URL?), no path of the roots' folders
        self.not_public += 1
        return quote(os.path.relpath(target, os.path.dirname(base)).replace(os.sep, "/"), safe=_SAFE)

    def location(self, location: str) -> str | None:
        """The public href of a document the loader read (a catalog, an item file), or None
        when it has none (a local file neither mapped nor served)."""
        if is_url(location):
            return self._mapped_url(location) or location
        return self._mapped_local(location) or self._served_file(location)

    def _mapped_url(self, target: str) -> str | None:
        for source, public in self._url_mappings:
            if target.startswith(source):
                return public + target[len(source):]
        return None

    def _mapped_local(self, target: str) -> str | None:
        if not self._local_mappings:
            return None
        folder = _folder(target)
        for source, public in self._local_mappings:
            if folder.startswith(source):
                return public + quote(target[len(source):].replace(os.sep, "/"), safe=_SAFE)
        return None

    def _served_file(self, target: str) -> str | None:
        for folder, number in self._served:
            if target.startswith(folder):
                return served_href(number, target[len(folder):].replace(os.sep, "/"))
        return None
