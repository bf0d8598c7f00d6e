"""The remote engine's HTTP/1.1 client against real sockets: scripted servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from jupyter_llm.engine.remote import http1

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Upstream:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)  # head and body of each
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


@asynccontextmanager
async def serving(
    *answers: Handler, context: ssl.SSLContext | None = None, prefix: str = "/v1"
) -> AsyncIterator[Upstream]:
    """A server whose n-th connection is handled by ``answers[n]`` (the last one repeats)."""
    scheme = "https" if context else "http"
    upstream = Upstream("")

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = answers[min(upstream.connections, len(answers) - 1)]
        upstream.connections += 1
        try:
            await answer(reader, writer)
            await reader.read()  # until the client hangs up
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            upstream.hung_up.set()
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    upstream.url = f"{scheme}://127.0.0.1:{port}{prefix}"
    try:
        yield upstream
    finally:
        server.close()


def answering(upstream_requests: list[bytes], *bodies: bytes, close_after: int = 0) -> Handler:
    """Answer each request on the connection with the next body (already framed, headers
    and all); hang up after ``close_after`` answers (0: never)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for count, body in enumerate(bodies, 1):
            upstream_requests.append(await read_request(reader))
            writer.write(body)
            await writer.drain()
            if count == close_after:
                writer.close()
                return

    return handler


def sse(*events: str) -> bytes:
    chunks = b"".join(f"{len(e.encode()):x}\r\n".encode() + e.encode() + b"\r\n" for e in events)
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


def client(url: str, timeout: float = 5.0, **headers: str) -> http1.Client:
    return http1.Client(url, headers, timeout=timeout, connect_timeout=5.0)


async def lines_of(c: http1.Client, path: str = "chat/completions") -> tuple[int, list[str]]:
    async with c.post(path, b'{"a": 1}') as response:
        return response.status, [line async for line in response.lines()]


async def test_a_chunked_stream_arrives_line_by_line_and_its_connection_is_kept() -> None:
    seen: list[bytes] = []
    first = sse('data: {"n": 1}\n\n', 'data: {"n": 2}\n\ndata: [DO', "NE]\n\n")
    second = sse("data: [DONE]\n\n")
    async with serving(answering(seen, first, second)) as upstream:
        c = client(upstream.url, Authorization="Bearer k")
        assert await lines_of(c) == (
            200,
            ['data: {"n": 1}', "", 'data: {"n": 2}', "", "data: [DONE]", ""],
        )
        assert await lines_of(c) == (200, ["data: [DONE]", ""])
        await c.aclose()
    assert upstream.connections == 1
    head = seen[0].decode()
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{upstream.url.split(':')[2].split('/')[0]}\r\n" in head
    assert "Authorization: Bearer k\r\n" in head
    assert "Content-Length: 8\r\n" in head and head.endswith('\r\n\r\n{"a": 1}')


async def test_an_error_body_with_a_length_is_read_whole() -> None:
    body = b'{"error": {"message": "bad"}}'
    answer = (
        b"HTTP/1.1 400 Bad Request\r\nRetry-After: 2\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    seen: list[bytes] = []
    async with serving(answering(seen, answer, answer)) as upstream:
        c = client(upstream.url)
        for _ in range(2):
            async with c.post("completions", b"{}") as response:
                assert response.status == 400
                assert response.headers["retry-after"] == "2"
                assert await response.read() == body
        await c.aclose()
    assert upstream.connections == 1  # read to its end: kept


async def test_a_body_that_runs_to_the_close_is_read_and_its_connection_dropped() -> None:
    seen: list[bytes] = []
    answer = b"HTTP/1.1 200 OK\r\n\r\ndata: x\n\ndata: [DONE]"
    async with serving(answering(seen, answer, close_after=1)) as upstream:
        c = client(upstream.url)
        assert await lines_of(c) == (200, ["data: x", "", "data: [DONE]"])
        assert await lines_of(c) == (200, ["data: x", "", "data: [DONE]"])
        await c.aclose()
    assert upstream.connections == 2


async def test_a_kept_connection_the_upstream_closed_is_replaced_and_the_request_sent_once() -> (
    None
):
    seen: list[bytes] = []
    answer = sse("data: [DONE]\n\n")
    async with serving(answering(seen, answer, close_after=1)) as upstream:
        c = client(upstream.url)
        assert await lines_of(c) == (200, ["data: [DONE]", ""])
        await asyncio.sleep(0.05)  # the upstream's close arrives while the connection idles
        assert await lines_of(c) == (200, ["data: [DONE]", ""])
        await c.aclose()
    assert upstream.connections == 2
    assert len(seen) == 2


async def test_a_post_whose_connection_fails_once_it_went_out_is_never_sent_again() -> None:
    seen: list[bytes] = []
    answer = sse("data: [DONE]\n\n")

    async def close_on_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answering(seen, answer)(reader, writer)
        seen.append(await read_request(reader))  # the second request: hang up without a word
        writer.close()

    async with serving(close_on_read, answering(seen, answer)) as upstream:
        c = client(upstream.url)
        assert await lines_of(c) == (200, ["data: [DONE]", ""])
        with pytest.raises(http1.Disconnected, match="closed before an answer"):
            await lines_of(c)
        await c.aclose()
    # The upstream may have applied it (and billed it): it saw the POST once, on one connection.
    assert upstream.connections == 1 and len(seen) == 2


async def test_an_idle_connection_is_dropped_before_the_upstreams_keep_alive_ends() -> None:
    seen: list[bytes] = []
    # The upstream keeps it a second at most; dropped a second early, it is never reused.
    answer = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answering(seen, answer, answer)) as upstream:
        c = client(upstream.url)
        for _ in range(2):
            async with c.post("completions", b"{}") as response:
                assert await response.read() == b"ok"
        await c.aclose()
    assert upstream.connections == 2


async def test_a_request_cancelled_before_the_answers_headers_hangs_up_at_once() -> None:
    got = asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got.set()  # then serving() waits for the client to hang up

    async with serving(never_answers) as upstream:
        c = client(upstream.url, timeout=60)
        task = asyncio.create_task(lines_of(c))
        await asyncio.wait_for(got.wait(), 5)
        # Without the cycle collector, a connection nobody closed stays open as long as the
        # cancel's traceback is kept (as a task keeps it): only a close on cancel hangs up.
        gc.disable()
        try:
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as cancelled:
                await task
            await asyncio.wait_for(upstream.hung_up.wait(), 1)  # not at the timeout or exit
        finally:
            gc.enable()
        assert cancelled.value is not None
        await c.aclose()


async def test_leaving_a_stream_early_hangs_up() -> None:
    seen: list[bytes] = []

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        end = asyncio.ensure_future(reader.read())  # b"" once the client hangs up
        while not end.done():
            writer.write(b"8\r\ndata: x\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)

    async with serving(endless) as upstream:
        c = client(upstream.url)
        async with c.post("completions", b"{}") as response:
            lines = response.lines()
            assert await anext(lines) == "data: x"
        await asyncio.wait_for(upstream.hung_up.wait(), 5)
        await c.aclose()


async def test_an_upstream_silent_past_the_timeout_is_a_read_timeout() -> None:
    async def no_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ndata: x\r\n")
        await asyncio.sleep(10)

    for silent in (no_answer, stalls):
        async with serving(silent) as upstream:
            c = client(upstream.url, timeout=0.3)
            with pytest.raises(http1.ReadTimeout, match=r"0\.3 s"):
                await lines_of(c)
            await c.aclose()


async def test_broken_answers_raise_errors_that_say_what_broke() -> None:
    async def hangs_up_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()
        writer.close()

    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    async def bad_chunk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")

    cases = [
        (hangs_up_mid_body, http1.Disconnected, "95 bytes short"),
        (not_http, http1.ProtocolError, "not an HTTP/1.1 status line"),
        (bad_chunk, http1.ProtocolError, "bad chunk size"),
    ]
    for handler, error, words in cases:
        async with serving(handler) as upstream:
            c = client(upstream.url)
            with pytest.raises(error, match=words):
                await lines_of(c)
            await c.aclose()


def replying(answer: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)

    return handler


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("size", "words"),
    [
        (b"-1", "bad chunk size"),  # int(x, 16) took each of these
        (b"0x1a", "bad chunk size"),
        (b"1_0", "bad chunk size"),
        (b"+5", "bad chunk size"),
        (b" 5", "bad chunk size"),
        (b"1000001", "over 16777216"),
    ],
)
async def test_a_chunk_size_is_hex_digits_and_bounded(size: bytes, words: str) -> None:
    async with serving(replying(CHUNKED + size + b"\r\ndata: x\n\r\n")) as upstream:
        c = client(upstream.url)
        with pytest.raises(http1.ProtocolError, match=words):
            await lines_of(c)
        await c.aclose()


async def test_chunk_extensions_are_ignored() -> None:
    answer = CHUNKED + b"8;name=value\r\ndata: x\n\r\n0\r\n\r\n"
    async with serving(replying(answer)) as upstream:
        c = client(upstream.url)
        assert await lines_of(c) == (200, ["data: x"])
        await c.aclose()


async def test_a_line_with_no_end_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "_LINE_LIMIT", 1000)
    endless = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    async with serving(replying(endless)) as upstream:
        c = client(upstream.url)
        with pytest.raises(http1.ProtocolError, match="runs past 1000 bytes"):
            await lines_of(c)
        await c.aclose()


async def test_interim_answers_are_skipped_and_bodiless_ones_end_at_their_head() -> None:
    seen: list[bytes] = []
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"  # no length: yet no body follows
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answering(seen, interim + ok, no_content, not_modified, ok)) as upstream:
        c = client(upstream.url, timeout=2)
        for status, body in ((200, b"ok"), (204, b""), (304, b""), (200, b"ok")):
            async with c.post("completions", b"{}") as response:
                assert (response.status, await response.read()) == (status, body)
        await c.aclose()
    assert upstream.connections == 1


async def test_an_http_1_0_connection_is_kept_only_when_it_says_keep_alive() -> None:
    for keep, connections in ((b"", 2), (b"Connection: keep-alive\r\n", 1)):
        seen: list[bytes] = []
        ok = b"HTTP/1.0 200 OK\r\n" + keep + b"Content-Length: 2\r\n\r\nok"
        async with serving(answering(seen, ok, ok)) as upstream:
            c = client(upstream.url)
            for _ in range(2):
                async with c.post("completions", b"{}") as response:
                    assert await response.read() == b"ok"
            await c.aclose()
        assert upstream.connections == connections, keep


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="'Authorization' has a name or value HTTP cannot"):
        client("http://127.0.0.1:9/v1", Authorization="Bearer key\nX-Injected: 1")


async def test_no_upstream_is_a_connect_error() -> None:
    async with serving(answering([])) as upstream:
        url = upstream.url
    c = client(url)
    with pytest.raises(http1.ConnectError, match=r"127\.0\.0\.1"):
        await lines_of(c)


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http:// or https:// URL"):
        client("ftp://example.com/v1")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1, and a server context that presents it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    args = "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
    san = ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [openssl, *args.split(), *san],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


async def test_https_trusts_ssl_cert_file_and_refuses_a_certificate_it_does_not_trust(
    certificate: tuple[Path, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, context = certificate
    seen: list[bytes] = []
    async with serving(answering(seen, sse("data: [DONE]\n\n")), context=context) as upstream:
        untrusting = client(upstream.url)  # certifi's bundle: no self-signed certificate
        with pytest.raises(http1.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await lines_of(untrusting)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusting = client(upstream.url)
        assert await lines_of(trusting) == (200, ["data: [DONE]", ""])
        await trusting.aclose()


@asynccontextmanager
async def proxy(seen: list[bytes]) -> AsyncIterator[str]:
    """An HTTP proxy on 127.0.0.1: ``CONNECT`` tunnels, and forwarding of plain requests."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        method, target, _ = head.split(b" ", 2)
        if method == b"CONNECT":
            host, port = target.decode().rsplit(":", 1)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target.decode())
            host, port = str(url.hostname), str(url.port)
        far_reader, far_writer = await asyncio.open_connection(host, int(port))
        if method != b"CONNECT":
            far_writer.write(head)
        await asyncio.gather(pipe(reader, far_writer), pipe(far_reader, writer))

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    try:
        yield f"http://user:p%40ss@127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_https_goes_through_the_environments_proxy_in_a_tunnel(
    certificate: tuple[Path, ssl.SSLContext], no_proxy_env: pytest.MonkeyPatch
) -> None:
    cert, context = certificate
    no_proxy_env.setenv("SSL_CERT_FILE", str(cert))
    seen: list[bytes] = []
    upstream_seen: list[bytes] = []
    async with (
        serving(
            answering(upstream_seen, *[sse("data: [DONE]\n\n")] * 2), context=context
        ) as upstream,
        proxy(seen) as proxy_url,
    ):
        no_proxy_env.setenv("HTTPS_PROXY", proxy_url)
        c = client(upstream.url)
        for _ in range(2):
            assert await lines_of(c) == (200, ["data: [DONE]", ""])
        await c.aclose()
    port = upstream.url.split(":")[2].split("/")[0]
    assert len(seen) == 1  # one tunnel, kept for the second request
    assert seen[0].startswith(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in seen[0]  # user:p@ss
    assert upstream_seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"Proxy-Authorization" not in upstream_seen[0]


async def test_http_goes_through_the_proxy_unless_no_proxy_names_the_host(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []
    upstream_seen: list[bytes] = []
    answer = sse("data: [DONE]\n\n")
    async with serving(answering(upstream_seen, answer, answer)) as upstream, proxy(seen) as url:
        no_proxy_env.setenv("HTTP_PROXY", url)
        c = client(upstream.url)
        assert await lines_of(c) == (200, ["data: [DONE]", ""])
        await c.aclose()
        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        straight = client(upstream.url)
        assert await lines_of(straight) == (200, ["data: [DONE]", ""])
        await straight.aclose()
    assert len(seen) == 1
    assert seen[0].startswith(f"POST {upstream.url}/chat/completions HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in seen[0]
    assert upstream_seen[1].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")


def test_a_proxy_that_is_not_http_is_refused_saying_how_to_go_straight(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    no_proxy_env.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ValueError, match=r"not an http:// proxy.*NO_PROXY=example\.com"):
        client("http://example.com/v1")
