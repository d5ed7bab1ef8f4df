"""A static file server on 127.0.0.1 that waits a fixed time before each answer (a bucket's
time to first byte), fast enough that the client, not the server, is what a run measures.

    python bench/ttfb_server.py FOLDER --latency-ms 20 [--port 0] [--port-file F]
        [--busy-seconds S [--busy-from N]] [--capacity N] [--status 429] [--close-after N]
        [--tls CERT KEY [--http1]] [--bucket [--md5-cache FILE]] [--arrivals N]

Why not http.server: 32 threads sleeping 10 ms cap it near 1,800 requests/s, and a thread per
request past that; here one asyncio loop (uvloop when installed) answers each request from a
timer, so thousands wait at once for no CPU. HTTP/1.1 with keep-alive (no pipelining: libcurl
sends one request at a time per connection); with --tls, HTTP/2 as well when the `h2` package
is installed (ALPN), as S3 and most CDNs offer.

Also the misbehaving servers the loader's tests need (tests/test_remote_concurrency.py):
`--busy-seconds S` answers 503 to every request in the S seconds from the first one (or
the `--busy-from N`th; `/_stats` is not counted),
`--capacity N` answers 503 to a request that arrives while N are already waiting (a bucket's
SlowDown), `--status 429` makes those 429s instead, `--close-after N` closes a keep-alive
connection after N answers without saying so (no `Connection: close`, as a server's idle
timeout does). GET `/_stats` answers JSON: requests, the most answers waiting at once
(`most_in_flight`), the most connections open at once, 503/429s sent, connections opened,
304s sent, and per request the answers waiting when it came and its status (`arrivals`: the
first `--arrivals N`, 100,000 unless told, then only counted as `arrivals_dropped`: a bench
bucket answers a million requests a full load of the 1M set, and a pair a request held 64 B
of each, for as long as it ran, and made each /_stats a JSON of them all).
Each file has an ETag (its mtime and size); `If-None-Match` with it answers 304.
`--bucket` makes the folder an S3-style bucket endpoint at `/`: each file's ETag is the MD5 of its
bytes (as a plain S3 upload's; kept by path while its size and mtime stay), and
`GET /?list-type=2&prefix=P[&start-after=K][&continuation-token=T]` answers ListObjectsV2 XML
(1,000 keys a page, in UTF-8 byte order, with those ETags and sizes), and `PUT /KEY` (body: the
object) and `DELETE /KEY` write and remove objects as a bucket's client does. As a bucket, it
keeps its listing in memory: the keys are walked and sorted once, in a thread from the server's
start, each key's <Contents> made once (when first listed, read or written); after that a page
is a join of them, no stat a key, and the listing changes only by PUT and DELETE through the
server, which update it at once (never listed stale). A file changed on disk behind its back is
served as it is by GET but listed as it was, as a bucket's listing would not see it either: change
the folder through the server (bench/reload.py --listing does). `--md5-cache FILE`: the MD5s
known (by path, with the size and mtime they are of) are read from FILE at the start and written
to it on SIGTERM, so a restart over a million files does not read and hash 5.9 GB again before
its first listing (minutes on a loaded machine); the keys listed are then those it holds (every
file read or written through the server before, as `index` reads them all), not walked again,
and each key's first <Contents> is made from what it holds (no stat: a million cold inodes made
the first listing ~5 min at load 15-21, session 14). Its paths are full paths: for a `cp -al`
copy of the folder, rewrite them first.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import html
import json
import os
import pickle
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote

try:
    import uvloop
except ImportError:  # pragma: no cover - plain asyncio is slower but works
    uvloop = None

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
except ImportError:
    h2 = None


class Stats:
    """What /_stats answers: counters, and the first ``arrivals_kept`` requests' arrivals (the
    tests read a load's first few thousand); bounded however long the server runs."""

    def __init__(self, arrivals_kept: int = 100_000) -> None:
        self.requests = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.refused = 0
        self.not_modified = 0
        self.first = 0.0
        self.arrivals: list[tuple[int, int]] = []  # per request: answers waiting when it came, its status
        self.arrivals_kept = arrivals_kept
        self.arrivals_dropped = 0  # requests past the first arrivals_kept: counted, not listed

    def arrived(self, status: int) -> None:
        if len(self.arrivals) < self.arrivals_kept:
            self.arrivals.append((self.in_flight, status))
        else:
            self.arrivals_dropped += 1

    def as_json(self) -> bytes:
        return json.dumps({
            "requests": self.requests, "most_in_flight": self.most_in_flight, "connections": self.connections,
            "most_open": self.most_open, "refused": self.refused, "not_modified": self.not_modified, "arrivals": self.arrivals,
            "arrivals_dropped": self.arrivals_dropped,
        }).encode()


class Server:
    def __init__(self, folder: Path, latency: float, busy: float, busy_from: int, capacity: int, status: int,
                 close_after: int) -> None:
        self.folder = str(folder.resolve())
        self.latency = latency
        self.busy = busy
        self.busy_from = busy_from
        self.capacity = capacity
        self.status = status
        self.close_after = close_after
        self.stats = Stats()
        self.bucket = False  # --bucket: MD5 ETags and ListObjectsV2 at /
        self._md5: dict[str, tuple[int, int, bytes]] = {}  # path -> (mtime_ns, size, ETag)
        self._keys: list[bytes] | None = None  # --bucket: every object's key, sorted (keys())
        self._paths: list[str] = []  # each key's file
        self._fragments: list[bytes | None] = []  # each key's <Contents>, None until first listed or read
        self._walker: threading.Thread | None = None
        self.keys_from_md5s = False  # the keys are those of the MD5s read from --md5-cache

    def walk_soon(self) -> None:
        """Walk the folder in a thread now (--bucket): a million item folders take ~10-30 s, longer
        than a client waits for the first listing page (the loader's read timeout is 20 s)."""
        self._walker = threading.Thread(target=self._walk, daemon=True)
        self._walker.start()

    def etag(self, full: str, info: os.stat_result, data: bytes | None = None) -> bytes:
        """A file's ETag: its mtime and size, or (--bucket) the MD5 of its bytes, kept while they stay."""
        if not self.bucket:
            return b'"%x-%x"' % (info.st_mtime_ns, info.st_size)
        known = self._md5.get(full)
        if known is not None and known[0] == info.st_mtime_ns and known[1] == info.st_size:
            return known[2]
        if data is None:
            with open(full, "rb") as f:
                data = f.read()
        tag = b'"%s"' % hashlib.md5(data).hexdigest().encode()
        self._md5[full] = (info.st_mtime_ns, info.st_size, tag)
        return tag

    def keys(self) -> list[bytes]:
        """Every object's key (its path in the folder), sorted as UTF-8 bytes: walked and sorted
        once, from the server's start; after that the listing changes only by PUT and DELETE
        through this server, as a bucket's does (put_object, delete_object)."""
        if self._keys is None:
            if self._walker is not None:
                self._walker.join()  # the walk started with the server
            else:
                self._walk()
        assert self._keys is not None
        return self._keys

    def _walk(self) -> None:
        found = []
        cut = len(self.folder) + 1
        if self.keys_from_md5s:  # --md5-cache: the objects it knows, no walk of a million folders (minutes under load)
            found = [(full[cut:].encode("utf-8", "surrogateescape"), full) for full in self._md5
                     if full.startswith(self.folder + "/")]
        for at, _, files in os.walk(self.folder) if not self.keys_from_md5s else ():
            found += [((at + "/" + name)[cut:].encode("utf-8", "surrogateescape"), at + "/" + name) for name in files]
        found.sort()
        self._keys = [key for key, _ in found]
        self._paths = [path for _, path in found]
        self._fragments = [None] * len(found)
        if self.keys_from_md5s:  # each <Contents> made now, as the walk is waited for: a first
            # listing of a million keys made them in the listing (~6 CPU-s), which a reload
            # measured right after the start paid for on the same two cores (S3's cost none of ours)
            md5 = self._md5
            self._fragments = [self._contents(key, md5[path][2], md5[path][1]) for key, path in found]

    def _contents(self, key: bytes, tag: bytes, size: int) -> bytes:
        return (b"<Contents><Key>%s</Key><ETag>%s</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass>"
                b"</Contents>" % (html.escape(key.decode("utf-8", "surrogateescape"), quote=False).encode(
                    "utf-8", "surrogateescape"), html.escape(tag.decode()).encode(), size))

    def _at(self, full: str) -> tuple[bytes, int, bool]:
        """The key of the file ``full``, where it is (or would be) in the sorted keys, and
        whether it is listed."""
        key = full[len(self.folder) + 1:].encode("utf-8", "surrogateescape")
        keys = self.keys()
        i = bisect.bisect_left(keys, key)
        return key, i, i < len(keys) and keys[i] == key

    def _seen(self, full: str, tag: bytes, size: int, add: bool = True) -> None:
        """The file ``full`` was read or (``add``) written with this ETag and size: its <Contents>
        from now on (a file read that is not listed stays unlisted)."""
        key, i, listed = self._at(full)
        if listed:
            self._fragments[i] = self._contents(key, tag, size)
        elif add:
            self.keys().insert(i, key)
            self._paths.insert(i, full)
            self._fragments.insert(i, self._contents(key, tag, size))

    def put(self, full: str, data: bytes) -> bytes:
        """PUT: the object written (a new file renamed over the old: hard-linked trees stay safe)
        and listed at once with its MD5; its ETag."""
        os.makedirs(os.path.dirname(full), exist_ok=True)
        tmp = f"{full}.put-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, full)
        tag = b'"%s"' % hashlib.md5(data).hexdigest().encode()
        info = os.stat(full)
        self._md5[full] = (info.st_mtime_ns, info.st_size, tag)
        self._seen(full, tag, len(data))
        return tag

    def delete(self, full: str) -> None:
        """DELETE: the file removed and no longer listed (S3 answers 204 for a missing key too)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(full)
        self._md5.pop(full, None)
        _, i, listed = self._at(full)
        if listed:
            del self.keys()[i], self._paths[i], self._fragments[i]

    def list_objects(self, query: str) -> bytes:
        """One ListObjectsV2 page (1,000 keys) of the folder as a bucket: a join of the <Contents>
        kept for each key (made when the key is first listed, read or written), no stat a key."""
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        prefix = params.get("prefix", "").encode()
        keys = self.keys()
        after = bytes.fromhex(params["continuation-token"]) if "continuation-token" in params else \
            params.get("start-after", "").encode()
        at = max(bisect.bisect_left(keys, prefix), bisect.bisect_right(keys, after) if after else 0)
        out: list[bytes] = []
        last = b""
        fragments = self._fragments
        end = _prefix_end(keys, prefix)
        while at < end and len(out) < 1000:
            stop = min(end, at + 1000 - len(out))
            page = fragments[at:stop]
            if None in page:  # never listed nor read since the walk: made once from the file
                for i in range(at, stop):
                    if fragments[i] is None:
                        full = self._paths[i]
                        known = self._md5.get(full) if self.keys_from_md5s else None
                        if known is not None:  # --md5-cache: listed as it was kept, no stat (a cold
                            # inode is a disk read, ~0.3 ms: a million made the first listing ~5 min)
                            fragments[i] = self._contents(keys[i], known[2], known[1])
                            continue
                        try:
                            info = os.stat(full)
                            fragments[i] = self._contents(keys[i], self.etag(full, info), info.st_size)
                        except OSError:  # gone behind the server's back since the walk
                            fragments[i] = b""
                page = fragments[at:stop]
            out += page
            last, at = keys[stop - 1], stop
        more = at < end
        token = b"<NextContinuationToken>%s</NextContinuationToken>" % last.hex().encode() if more else b""
        body = b"".join(out)  # type: ignore[arg-type]
        return (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                b"<Name>bucket</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys>"
                b"<IsTruncated>%s</IsTruncated>%s%s</ListBucketResult>" % (
                    html.escape(prefix.decode(), quote=False).encode(), body.count(b"<Contents>"),
                    b"true" if more else b"false", token, body))

    def answer(self, path: bytes, if_none_match: bytes | None = None, method: bytes = b"GET",
               body: bytes = b"") -> tuple[int, bytes, bytes, bytes | None]:
        """(status, content type, body, ETag) of a GET; 503/429 when busy; 304 when the ETag
        (size and mtime, as a bucket's changes when the object does) is `if_none_match`.
        With --bucket, PUT writes an object and DELETE removes one. Counted as arriving now."""
        stats = self.stats
        if path == b"/_stats":
            return 200, b"application/json", stats.as_json(), None
        now = time.monotonic()
        stats.requests += 1
        if stats.requests == self.busy_from:
            stats.first = now
        if (self.busy and stats.first and now - stats.first < self.busy) or (self.capacity and stats.in_flight >= self.capacity):
            stats.refused += 1
            stats.arrived(self.status)
            return self.status, b"text/plain", b"slow down", None
        stats.arrived(200)
        target, _, query = path.decode("latin-1").partition("?")
        if self.bucket and target == "/" and "list-type=2" in query:
            return 200, b"application/xml", self.list_objects(query), None
        name = unquote(path.split(b"?", 1)[0].decode("latin-1"))
        full = os.path.normpath(os.path.join(self.folder, name.lstrip("/")))
        if not full.startswith(self.folder + os.sep):
            return 404, b"text/plain", b"not found", None
        if method in (b"PUT", b"DELETE"):
            if not self.bucket:
                return 405, b"text/plain", b"method not allowed", None
            if method == b"DELETE":
                self.delete(full)
                return 204, b"text/plain", b"", None
            return 200, b"text/plain", b"", self.put(full, body)
        try:
            with open(full, "rb") as f:
                info = os.fstat(f.fileno())
                data = f.read() if self.bucket else None
                etag = self.etag(full, info, data)
                if data is not None:
                    self._seen(full, etag, info.st_size, add=False)
                if etag == if_none_match:
                    self.stats.not_modified += 1
                    return 304, b"application/json", b"", etag
                return 200, b"application/json", data if data is not None else f.read(), etag
        except OSError:
            return 404, b"text/plain", b"not found", None

    def begin(self) -> None:
        stats = self.stats
        stats.in_flight += 1
        stats.most_in_flight = max(stats.most_in_flight, stats.in_flight)

    def end(self) -> None:
        self.stats.in_flight -= 1

    def opened(self) -> None:
        stats = self.stats
        stats.connections += 1
        stats.open += 1
        stats.most_open = max(stats.most_open, stats.open)

    def closed(self) -> None:
        self.stats.open -= 1


def _prefix_end(keys: list[bytes], prefix: bytes) -> int:
    """The end of the run of the sorted ``keys`` that start with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return len(keys)
    return bisect.bisect_left(keys, stripped[:-1] + bytes([stripped[-1] + 1]))


REASONS = {200: b"OK", 204: b"No Content", 304: b"Not Modified", 404: b"Not Found", 405: b"Method Not Allowed",
           429: b"Too Many Requests", 503: b"Service Unavailable"}


class Http1(asyncio.Protocol):
    """HTTP/1.1, keep-alive, one request at a time per connection (what libcurl sends)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = b""
        self.answered = 0
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.opened()
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            Http2(self.server, transport, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.closed()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if getattr(self, "h2", None) is not None:
            self.h2.data_received(data)
            return
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            request_line, _, headers = head.partition(b"\r\n")
            method, path, _ = request_line.split(b" ", 2)
            lowered = headers.lower()
            condition = None
            at = lowered.find(b"if-none-match:")
            if at >= 0:
                condition = headers[at + 14:].split(b"\r\n", 1)[0].strip()
            at = lowered.find(b"content-length:")
            size = int(headers[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < size:  # the body not all here yet: wait for it
                self.buffer = head + b"\r\n\r\n" + self.buffer
                return
            body, self.buffer = self.buffer[:size], self.buffer[size:]
            answer = self.server.answer(path, condition, method, body)
            self.server.begin()
            self.loop.call_later(self.server.latency, self.respond, *answer)

    def respond(self, status: int, media_type: bytes, body: bytes, etag: bytes | None) -> None:
        self.server.end()
        if self.transport is None:
            return
        self.answered += 1
        extra = b"Retry-After: 0\r\n" if status in (429, 503) else b""
        if etag is not None:
            extra += b"ETag: %s\r\n" % etag
        if status not in (204, 304):
            extra += b"Content-Length: %d\r\n" % len(body)
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s\r\n" % (
            status, REASONS.get(status, b"?"), media_type, extra) + body)
        if self.server.close_after and self.answered >= self.server.close_after:
            self.transport.close()  # unannounced, as an idle timeout would


class Http2:
    """HTTP/2 on a TLS connection that chose it (ALPN), with the `h2` package: many streams
    on one connection, each answered after the latency."""

    def __init__(self, server: Server, transport: asyncio.Transport, owner: Http1) -> None:
        self.server = server
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
        transport.write(self.conn.data_to_send())
        self.unsent: dict[int, memoryview] = {}  # bodies waiting for flow-control window
        owner.h2 = self

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = dict(event.headers)
                answer = self.server.answer(headers[b":path"], headers.get(b"if-none-match"))
                self.server.begin()
                self.loop.call_later(self.server.latency, self.respond, event.stream_id, *answer)
            elif isinstance(event, h2.events.WindowUpdated):
                for stream in list(self.unsent):
                    self.send(stream)
            elif isinstance(event, h2.events.StreamReset):
                self.unsent.pop(event.stream_id, None)
        self.transport.write(self.conn.data_to_send())

    def respond(self, stream: int, status: int, media_type: bytes, body: bytes, etag: bytes | None) -> None:
        self.server.end()
        if self.transport.is_closing():
            return
        headers = [(b":status", str(status).encode()), (b"content-type", media_type)]
        if etag is not None:
            headers.append((b"etag", etag))
        if status == 304:
            self.conn.send_headers(stream, headers, end_stream=True)
            self.transport.write(self.conn.data_to_send())
            return
        self.conn.send_headers(stream, [*headers, (b"content-length", str(len(body)).encode())])
        self.unsent[stream] = memoryview(body)
        self.send(stream)
        self.transport.write(self.conn.data_to_send())

    def send(self, stream: int) -> None:
        """As much of the stream's body as the flow-control window and frame size allow."""
        body = self.unsent[stream]
        while True:
            size = min(len(body), self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size)
            if size <= 0 and body:
                self.unsent[stream] = body
                return
            last = size == len(body)
            self.conn.send_data(stream, bytes(body[:size]), end_stream=last)
            if last:
                del self.unsent[stream]
                return
            body = body[size:]


async def run(args: argparse.Namespace) -> None:
    server = Server(args.folder, args.latency_ms / 1000, args.busy_seconds, args.busy_from, args.capacity,
                    args.status, args.close_after)
    server.bucket = args.bucket
    server.stats = Stats(args.arrivals)
    if args.bucket and args.md5_cache and args.md5_cache.exists():
        with open(args.md5_cache, "rb") as f:
            server._md5 = pickle.load(f)
        server.keys_from_md5s = bool(server._md5)
    if args.bucket:
        server.walk_soon()
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        context.set_alpn_protocols(["h2", "http/1.1"] if h2 is not None and not args.http1 else ["http/1.1"])
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: Http1(server), "127.0.0.1", args.port, ssl=context, backlog=4096)
    port = listener.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = Path(str(args.port_file) + ".tmp")
        tmp.write_text(str(port))
        tmp.rename(args.port_file)
    else:
        print(f"serving {args.folder} on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    listener.close()
    if args.bucket and args.md5_cache:  # (written anew, then renamed over the old)
        with open(f"{args.md5_cache}.tmp", "wb") as f:
            pickle.dump(server._md5, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(f"{args.md5_cache}.tmp", args.md5_cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--busy-seconds", type=float, default=0.0)
    parser.add_argument("--busy-from", type=int, default=1, help="the busy seconds start at this request")
    parser.add_argument("--capacity", type=int, default=0)
    parser.add_argument("--status", type=int, default=503, choices=(429, 503))
    parser.add_argument("--close-after", type=int, default=0)
    parser.add_argument("--arrivals", type=int, default=100_000, help="/_stats lists the first N requests' arrivals")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--http1", action="store_true", help="with --tls: offer HTTP/1.1 only")
    parser.add_argument("--bucket", action="store_true", help="an S3-style bucket: MD5 ETags, ListObjectsV2 at /")
    parser.add_argument("--md5-cache", type=Path, help="with --bucket: the MD5s known, read at the start, written on SIGTERM")
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.install()
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
