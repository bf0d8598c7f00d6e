"""A lean HTTP/1.1 client for one upstream: POSTs whose answers stream, on kept-alive connections.

A remote engine's whole job is moving an upstream's stream of chunks on, so the client's cost
a request and a chunk is the proxy's cost. httpx spends much of that cost in its connection
pool (each request polls every pooled socket to see whether it expired) and its stream layers
(anyio, httpcore, h11); docs/benchmarks.md has the numbers. This client reads asyncio streams
directly:
the status line and headers with one ``readuntil``, then the body as it is framed (chunked,
a length, or until close). It speaks what an OpenAI-compatible server needs: a POST with a
JSON body, ``http`` or ``https`` (the certificates httpx would trust), no redirects. An HTTP
proxy named by the environment is used as httpx would use it (``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``): ``https`` through a ``CONNECT`` tunnel, plain
``http`` through the proxy's forwarding.

Timeouts: ``connect_timeout`` to open a connection, ``timeout`` for each read (an upstream
silent for longer fails the request, however long the whole answer takes). A connection goes
back to the idle list when its answer was read to the end and did not say ``close``; an idle
connection the upstream closed, or one idle longer than the upstream keeps it (its
``Keep-Alive: timeout``, else ``_IDLE_SECS``), is dropped before use.

A POST is never sent twice: once any of its bytes were written, a connection that fails
fails the request (RFC 9112, 9.3.1: the upstream may have started on it, and a hosted API
bills it). Only a request that found its connection closed before a byte went out is sent
on a new one. Expiring idle connections before the upstream does keeps that race rare.

A request cancelled at any point (a job aborted while it waits for the answer's headers,
say) closes its connection at once, so the upstream stops working on it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import ssl
import urllib.request
from collections.abc import AsyncIterator
from urllib.parse import SplitResult, unquote, urlsplit

__all__ = [
    "Client",
    "ConnectError",
    "ConnectTimeout",
    "Disconnected",
    "HttpError",
    "ProtocolError",
    "ReadTimeout",
    "Response",
]

_HEAD_LIMIT = 65536  # bytes of status line and headers
# How long a connection may idle before it is dropped, unless the upstream names a shorter
# keep-alive: under uvicorn's 5 s (vLLM's server, jupyter_llm's proxies), so that the
# upstream seldom closes a connection just as a request goes out on it.
_IDLE_SECS = 4.0
_CHUNK_LIMIT = 16 * 1024 * 1024  # bytes in one chunk of a chunked body (held whole)
_LINE_LIMIT = 16 * 1024 * 1024  # characters in one line of a body read as lines
_INTERIM_LIMIT = 16  # 1xx answers before the real one


class HttpError(Exception):
    """Anything that kept an answer from arriving whole.

    HttpError
    ├── ConnectError      no connection (refused, no route, name unknown, TLS failed)
    │   └── ConnectTimeout
    ├── ReadTimeout       the upstream said nothing for ``timeout`` seconds
    ├── Disconnected      the connection closed before the answer ended
    └── ProtocolError     what came back is not HTTP/1.1 as this client reads it
    """


class ConnectError(HttpError):
    pass


class ConnectTimeout(ConnectError):
    pass


class ReadTimeout(HttpError):
    pass


class Disconnected(HttpError):
    pass


class ProtocolError(HttpError):
    pass


class _Connection:
    __slots__ = ("expires", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.expires = 0.0  # loop time after which an idle connection is not used again

    def usable(self, now: float) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof() and now < self.expires

    def close(self) -> None:
        self.writer.close()


class Response:
    """An answer's status and headers (names in lower case); its body read once, as it comes."""

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        connection: _Connection,
        timeout: float,
        version: str = "HTTP/1.1",
    ) -> None:
        self.status = status
        self.headers = headers
        self._connection = connection
        self._timeout = timeout
        self._version = version
        self.complete = False  # the body was read to its end

    @property
    def reusable(self) -> bool:
        tokens = {t.strip() for t in self.headers.get("connection", "").lower().split(",")}
        if self._version == "HTTP/1.0":  # kept only when it says so (RFC 9112, 9.3)
            return self.complete and "keep-alive" in tokens
        return self.complete and "close" not in tokens

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes, as the upstream framed them (chunked: one chunk each)."""
        reader = self._connection.reader
        encoding = self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        if self.status in (204, 304):  # no body, whatever the headers say (RFC 9112, 6.3)
            self.complete = True
            return
        try:
            if "chunked" in encoding:
                async for chunk in self._chunked(reader):
                    yield chunk
            elif length is not None:
                left = _length(length)
                while left > 0:
                    async with asyncio.timeout(self._timeout):
                        data = await reader.read(min(left, 65536))
                    if not data:
                        raise Disconnected(f"the answer ended {left} bytes short")
                    left -= len(data)
                    yield data
            else:  # the body runs to the connection's end
                while True:
                    async with asyncio.timeout(self._timeout):
                        data = await reader.read(65536)
                    if not data:
                        break
                    yield data
                self.headers["connection"] = "close"
        except TimeoutError:
            raise ReadTimeout(f"no data for {self._timeout:g} s") from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise Disconnected(_reason(exc)) from None
        self.complete = True

    async def _chunked(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            async with asyncio.timeout(self._timeout):
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    raise Disconnected("the connection closed inside a chunked answer")
                size = _chunk_size(line)
                if size == 0:
                    while (await reader.readline()).strip():  # trailers, then a blank line
                        pass
                    return
                data = await reader.readexactly(size + 2)
            yield data[:-2]

    async def lines(self) -> AsyncIterator[str]:
        """The body as text lines (UTF-8, line ends dropped), the last one even unterminated."""
        rest = b""
        async for chunk in self.chunks():
            rest += chunk
            if b"\n" not in chunk:
                if len(rest) > _LINE_LIMIT:
                    raise ProtocolError(f"a line of the answer runs past {_LINE_LIMIT} bytes")
                continue
            *whole, rest = rest.split(b"\n")
            for line in whole:
                yield line.rstrip(b"\r").decode("utf-8", "replace")
        if rest:
            yield rest.rstrip(b"\r").decode("utf-8", "replace")

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


class Client:
    """Requests to one ``base_url`` (``http://host:port/prefix`` or ``https://…``), each with
    ``headers``, on at most as many connections as are open at once; see the module doc."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        connect_timeout: float,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        default_port = 443 if parts.scheme == "https" else 80
        self._host = parts.hostname
        self._port = parts.port or default_port
        self._prefix = parts.path.rstrip("/")
        host = f"[{self._host}]" if ":" in self._host else self._host
        authority = host if self._port == default_port else f"{host}:{self._port}"
        self._host_port = f"{host}:{self._port}"
        self._proxy = _proxy_for(parts.scheme, self._host)
        self._proxy_auth: dict[str, str] = {}
        if self._proxy is not None and self._proxy.username is not None:
            user = f"{unquote(self._proxy.username)}:{unquote(self._proxy.password or '')}"
            self._proxy_auth["Proxy-Authorization"] = f"Basic {_b64(user)}"
        if self._proxy is not None and parts.scheme == "http":  # the proxy forwards it
            self._prefix = f"http://{authority}{self._prefix}"
            headers = {**headers, **self._proxy_auth}
        self._head = f"Host: {authority}\r\n{_header_lines(headers)}"
        # Blocking (reads the CA bundle): build the client off the server's loop.
        self._ssl = _ssl_context() if parts.scheme == "https" else None
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()

    @contextlib.asynccontextmanager
    async def post(self, path: str, body: bytes) -> AsyncIterator[Response]:
        """POST ``body`` (JSON) to ``path`` (relative to the base URL); the answer's status and
        headers have arrived when this yields. Leaving the block early closes the connection."""
        request = (
            f"POST {self._prefix}/{path} HTTP/1.1\r\n{self._head}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        connection, response = await self._send(request)
        self._busy.add(connection)
        try:
            yield response
        finally:
            self._busy.discard(connection)
            now = asyncio.get_running_loop().time()
            connection.expires = now + _keep_alive(response.headers)
            if response.reusable and connection.usable(now):
                self._idle.append(connection)
            else:
                connection.close()

    async def aclose(self) -> None:
        for connection in [*self._idle, *self._busy]:
            connection.close()
        self._idle.clear()
        self._busy.clear()

    async def _send(self, request: bytes) -> tuple[_Connection, Response]:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if not connection.usable(now):
                connection.close()
                continue
            try:
                return connection, await self._exchange(connection, request)
            except _Unsent:  # closed before a byte went out: nothing was applied, try anew
                connection.close()
        connection = await self._connect()
        try:
            return connection, await self._exchange(connection, request)
        except _Unsent as exc:
            connection.close()
            raise Disconnected(
                f"the connection closed before the request went out: {exc}"
            ) from None

    async def _connect(self) -> _Connection:
        where = self._host_port
        if self._proxy is not None:
            where += f" through the proxy {self._proxy.hostname}:{self._proxy.port or 80}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._proxy is None:
                    reader, writer = await asyncio.open_connection(
                        self._host, self._port, ssl=self._ssl, limit=_HEAD_LIMIT
                    )
                else:
                    reader, writer = await self._through_proxy(self._proxy)
        except TimeoutError:
            raise ConnectTimeout(
                f"no connection to {where} within {self._connect_timeout:g} s"
            ) from None
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            raise ConnectError(f"{where}: {_reason(exc)}") from None
        return _Connection(reader, writer)

    async def _through_proxy(
        self, proxy: SplitResult
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the proxy; for https, a tunnel through it with TLS inside."""
        assert proxy.hostname is not None  # _proxy_for checked it
        reader, writer = await asyncio.open_connection(
            proxy.hostname, proxy.port or 80, limit=_HEAD_LIMIT
        )
        if self._ssl is None:
            return reader, writer
        target = self._host_port
        extra = _header_lines(self._proxy_auth)
        try:
            writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            _, status, _ = _parse_head(head)
            if status != 200:
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                raise ConnectError(f"the proxy refused the tunnel to {target}: {line}")
            await writer.start_tls(self._ssl, server_hostname=self._host)
        except BaseException:  # a refusal, a timeout, a cancel: no tunnel is left open
            writer.close()
            raise
        return reader, writer

    async def _exchange(self, connection: _Connection, request: bytes) -> Response:
        reader, writer = connection.reader, connection.writer
        writer.write(request)
        if writer.is_closing():  # the socket refused the first send: no byte left this host
            raise _Unsent("closed by the upstream")
        try:
            await writer.drain()
            for _ in range(_INTERIM_LIMIT + 1):
                async with asyncio.timeout(self._timeout):
                    head = await reader.readuntil(b"\r\n\r\n")
                version, status, headers = _parse_head(head)
                if not 100 <= status < 200:  # 1xx (100 Continue, 103 Early Hints): interim
                    break
            else:
                raise ProtocolError(f"more than {_INTERIM_LIMIT} interim (1xx) answers")
        except BaseException as exc:
            # Sent, or partly: never again (module doc). Cancelled: the upstream must see the
            # job go now, not when the connection is collected.
            connection.close()
            raise _failure(exc, self._timeout) from None
        return Response(status, headers, connection, self._timeout, version)


class _Unsent(Exception):
    """A connection was closed before any byte of the request went out on it."""


def _failure(exc: BaseException, timeout: float) -> BaseException:
    """What a failure while a request goes out or its answer's head comes back means."""
    if isinstance(exc, TimeoutError):
        return ReadTimeout(f"no answer for {timeout:g} s")
    if isinstance(exc, asyncio.IncompleteReadError):
        where = "inside the answer's headers" if exc.partial else "before an answer"
        return Disconnected(f"the connection closed {where}")
    if isinstance(exc, asyncio.LimitOverrunError):
        return ProtocolError(f"the answer's headers are over {_HEAD_LIMIT} bytes")
    if isinstance(exc, OSError):
        return Disconnected(f"the connection failed before an answer: {_reason(exc)}")
    return exc  # a ProtocolError, a cancel: as it is


def _keep_alive(headers: dict[str, str]) -> float:
    """How long the connection may idle: a second under the upstream's ``Keep-Alive:
    timeout=N``, at most ``_IDLE_SECS``."""
    for part in headers.get("keep-alive", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "timeout" and value.strip().isdigit():
            return min(_IDLE_SECS, max(0.0, int(value) - 1.0))
    return _IDLE_SECS


def _parse_head(head: bytes) -> tuple[str, int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.0", "HTTP/1.1") or not (code.isdigit() and code.isascii()):
        raise ProtocolError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ProtocolError(f"not a header line: {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return version, int(code), headers


def _header_lines(headers: dict[str, str]) -> str:
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
            # A line break in a value (an API key read with its newline) would end the
            # header there and start another, or the body, with the rest.
            raise ValueError(f"the header {name!r} has a name or value HTTP cannot carry")
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n")


def _chunk_size(line: bytes) -> int:
    """A chunk-size line's size: hex digits only (``int(x, 16)`` also takes ``-1``, ``0x1a``
    and ``1_0``), at most ``_CHUNK_LIMIT``; extensions after ``;`` are ignored."""
    match = _CHUNK_SIZE.fullmatch(line)
    if match is None:
        raise ProtocolError(f"bad chunk size line {line[:40]!r}")
    size = int(match.group(1), 16)
    if size > _CHUNK_LIMIT:
        raise ProtocolError(f"a chunk of {size} bytes is over {_CHUNK_LIMIT}")
    return size


def _length(value: str) -> int:
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise ProtocolError(f"bad Content-Length {value!r}")
    return length


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the connection closed mid-answer"
    return str(exc) or type(exc).__name__


def _proxy_for(scheme: str, host: str) -> SplitResult | None:
    """The HTTP proxy the environment names for ``scheme://host`` (None: go straight)."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed
    if not url or bypass(host, proxies):
        return None
    proxy = urlsplit(url if "://" in url else f"http://{url}")
    if proxy.scheme != "http" or not proxy.hostname:
        raise ValueError(
            f"the proxy {url!r} for {scheme}://{host} is not an http:// proxy (only those are "
            f"supported); set NO_PROXY={host} to go straight"
        )
    return proxy


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _ssl_context() -> ssl.SSLContext:
    """Trust what httpx would: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, else certifi's
    bundle (httpx's default), else the system's."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile is None and capath is None:
        with contextlib.suppress(ImportError):
            import certifi

            cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)
