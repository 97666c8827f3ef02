"""Cases of hostile and unusual HTTP clients: slow, idle and dripping
bodies against the progress deadlines, a stalled request head, several file
parts, encoded names, the status codes (426, 405 with Allow, 431, 414) and the one body
limit.

Every raw client here is one socket, bounded in bytes and in time; each case
ends with /metrics showing nothing in use."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from e2e_clients import open_raw, parse_head, raw_request, read_http_response
from e2e_context import Ctx, expect_no_body_sent
from e2e_support import KiB, MiB, check, chunks_of, json_object, log, payload, within

UPLOAD = "/api/v1/upload"


def upload_head(target: str, length: int, content_type: str = "application/octet-stream") -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


@dataclass
class RawAnswer:
    """The answer a raw client got, and how much of its body it had sent by then."""

    status: int
    headers: dict
    body: bytes
    sent: int
    took: float  # seconds from the start of the request, or of the wait for the answer

    def json(self) -> dict:
        return json_object(self.body, self.describe())

    def describe(self) -> str:
        return (f"HTTP {self.status} after {self.took:.1f} s and {self.sent} body bytes sent; "
                f"headers {self.headers}; body {self.body[:400]!r}")


async def drip(port: int, head: bytes, pieces: list[bytes], interval: float,
               timeout: float) -> RawAnswer:
    """One upload sent in pieces, one every `interval`, while the answer is read
    at the same time: sending stops once the server answers or closes."""
    reader, writer = await open_raw(port)
    started = time.monotonic()
    sent = 0
    try:
        writer.write(head)
        answer = asyncio.ensure_future(read_http_response(reader, timeout))
        for piece in pieces:
            await asyncio.wait({answer}, timeout=interval)
            if answer.done():
                break
            try:
                writer.write(piece)
                await asyncio.wait_for(writer.drain(), 10)
            except (ConnectionError, asyncio.TimeoutError):
                break  # the server closed its side: its answer, if any, is in `answer`
            sent += len(piece)
        status, headers, body = await answer
        return RawAnswer(status, headers, body, sent, time.monotonic() - started)
    finally:
        writer.transport.abort()


async def read_answer(reader: asyncio.StreamReader, timeout: float) -> RawAnswer:
    started = time.monotonic()
    status, headers, body = await read_http_response(reader, timeout)
    return RawAnswer(status, headers, body, 0, time.monotonic() - started)


async def closed_within(reader: asyncio.StreamReader, timeout: float) -> bool:
    """Whether the server closes the connection (EOF or reset) within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            piece = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
        except asyncio.TimeoutError:
            return False
        except ConnectionError:
            return True
        if not piece:
            return True
    return False


def expect_late(answer: RawAnswer, reason: str) -> dict:
    check(answer.status == 408, f"expected 408 ({reason}), got {answer.describe()}")
    body = answer.json()
    check(body.get("reason") == reason and body.get("message"),
          f"expected a 408 with reason '{reason}' and a message, got {answer.describe()}")
    check("close" in answer.headers.get("connection", "").lower(),
          f"expected 'Connection: close' on a 408, got {answer.describe()}")
    return body


def ended_lines(ctx: Ctx) -> list[str]:
    return [line for line in ctx.server.log_tail(400).splitlines() if " ended " in line]


# --- The body deadline is progress, not a buffer fill --------------------------

async def http_slow_client(ctx: Ctx) -> None:
    """An honest client under --body-timeout 2s sends 5000 bytes, 500 every 0.5 s
    (5 s in all, more than twice the timeout): 201, stored byte-identical."""
    ctx.start_server("--budget", "200MiB", "--body-timeout", "2s")
    data = payload(5000, seed=60)
    answer = await drip(ctx.server.port, upload_head(f"{UPLOAD}?name=slow.bin", len(data)),
                        list(chunks_of(data, 500)), interval=0.5, timeout=30)
    check(answer.status == 201, f"expected 201 for a slow but steady body, got {answer.describe()}")
    check(answer.took >= 4, f"expected the body to take about 5 s, it took {answer.took:.1f} s")
    ctx.expect_stored(answer.json(), data, "slow.bin")
    await ctx.wait_store(["slow.bin"])
    await ctx.wait_idle()


async def http_idle_body(ctx: Ctx) -> None:
    """--slots 1 --body-timeout 2s: a client that sends its head and then nothing
    holds the slot, gets 408 body_timeout after about 2 s, and the slot comes back
    (the next upload is stored); one log line says so, without its own slot."""
    ctx.start_server("--budget", "200MiB", "--slots", "1", "--body-timeout", "2s")
    reader, writer = await open_raw(ctx.server.port)
    try:
        writer.write(upload_head(f"{UPLOAD}?name=idle.bin", 100 * KiB))
        await writer.drain()
        await ctx.wait_metrics(lambda m: m["admit_slots_in_use"] == 1,
                               "the idle upload admitted (admit_slots_in_use 1)")
        answer = await read_answer(reader, 15)
        expect_late(answer, "body_timeout")
        check(answer.json().get("received_bytes") == 0,
              f"expected received_bytes 0 in the 408, got {answer.describe()}")
        check(await closed_within(reader, 10), "expected the connection closed after the 408")
    finally:
        writer.transport.abort()
    await ctx.wait_idle()
    data = payload(3000, seed=61)
    r = await ctx.curl_raw(ctx.write_file("after.bin", data), "after.bin")
    check(r.status == 201, f"expected the slot back for the next upload (201), got {r.describe()}")
    ctx.expect_stored(r.json(), data, "after.bin")
    lines = ended_lines(ctx)
    cut = [line for line in lines if "cut off" in line]
    check(len(cut) == 1 and "slots 0/1" in cut[0],
          f"expected one 'ended ... cut off' line with 'slots 0/1' (the upload's own slot "
          f"not counted), got {lines}")
    await ctx.wait_store(["after.bin"])
    await ctx.wait_idle()


async def http_min_rate(ctx: Ctx) -> None:
    """--body-timeout 1s --min-rate 10KiB: a client dripping 100 bytes every 0.2 s
    (500 B/s, never idle for a second) is cut off with 408 long before its
    1 MiB body; nothing stored, nothing held."""
    ctx.start_server("--budget", "200MiB", "--body-timeout", "1s", "--min-rate", "10KiB")
    pieces = [b"x" * 100] * 50  # at most 10 s of dripping
    answer = await drip(ctx.server.port, upload_head(f"{UPLOAD}?name=drip.bin", MiB), pieces,
                        interval=0.2, timeout=20)
    body = expect_late(answer, "body_timeout")
    check(answer.sent < len(pieces) * 100 and answer.took < 8,
          f"expected the drip cut off within a few seconds, got {answer.describe()}")
    check(body.get("min_rate") == 10 * KiB, f"expected min_rate {10 * KiB} in the 408, got {body}")
    log(f"cut off after {answer.took:.1f} s, {answer.sent} bytes sent: {body.get('message')}")
    await ctx.wait_store([])
    await ctx.wait_idle()


async def http_header_timeout(ctx: Ctx) -> None:
    """--header-timeout 1s: half a request line then silence gets 408
    header_timeout and a close; a connection that sends nothing is closed with a
    log line."""
    ctx.start_server("--header-timeout", "1s")
    reader, writer = await open_raw(ctx.server.port)
    try:
        writer.write(b"POST /api/v1/upl")
        await writer.drain()
        expect_late(await read_answer(reader, 10), "header_timeout")
        check(await closed_within(reader, 10), "expected the connection closed after the 408")
    finally:
        writer.transport.abort()
    reader, writer = await open_raw(ctx.server.port)
    try:
        check(await closed_within(reader, 10),
              "expected a connection that sent nothing closed after --header-timeout")
    finally:
        writer.transport.abort()
    deadline = time.monotonic() + 5
    while "sent nothing" not in ctx.server.log_tail(50) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    check("sent nothing" in ctx.server.log_tail(50),
          "expected a log line for the connection closed for sending nothing")
    await ctx.wait_idle()


# --- Every file part is stored ----------------------------------------------------

async def http_two_files(ctx: Ctx) -> None:
    """curl -F with two file parts (3000 bytes, and 100 KiB + 7 across the read
    buffer): 201 lists both, both stored byte-identical; the log line of the
    upload's end does not count its own slot."""
    ctx.start_server("--budget", "200MiB", "--slots", "4")
    first, second = payload(3000, seed=62), payload(100 * KiB + 7, seed=63)
    a, b = ctx.write_file("first.txt", first), ctx.write_file("second.bin", second)
    r = await ctx.curl("-X", "POST", ctx.url(UPLOAD), "-F", f"file=@{a}", "-F", f"other=@{b}")
    check(r.status == 201, f"expected 201, got {r.describe()}")
    files = r.json().get("files")
    check(isinstance(files, list) and len(files) == 2,
          f"expected \"files\" listing both parts, got {r.describe()}")
    ctx.expect_stored(files[0], first, "first.txt")
    ctx.expect_stored(files[1], second, "second.bin")
    await ctx.wait_store(["first.txt", "second.bin"])
    lines = ended_lines(ctx)
    check(len(lines) == 1 and "slots 0/4" in lines[0],
          f"expected one 'ended' line saying 'slots 0/4', got {lines}")
    await ctx.wait_idle()


# --- Names are decoded -----------------------------------------------------------

# The sanitiser keeps visible non-ASCII letters (storage.hpp): decoded, the
# names are themselves.
CAFE_STORED = "café.txt"
NAIVE_STORED = "naïve.txt"


async def http_decoded_names(ctx: Ctx) -> None:
    """?name=caf%C3%A9.txt is decoded before it is sanitised; a multipart part's
    filename*=UTF-8''na%C3%AFve.txt wins over its filename= and is decoded."""
    ctx.start_server("--budget", "200MiB")
    data = payload(2000, seed=64)
    r = await ctx.curl_raw(ctx.write_file("cafe", data), "caf%C3%A9.txt")
    check(r.status == 201, f"?name=caf%C3%A9.txt: expected 201, got {r.describe()}")
    ctx.expect_stored(r.json(), data, CAFE_STORED)

    boundary = "e2eBoundaryN4me"
    part = payload(1500, seed=65)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve.txt\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode()
    body += part + f"\r\n--{boundary}--\r\n".encode()
    r = await ctx.curl("--data-binary", f"@{ctx.write_file('naive.form', body)}", "-H",
                       f"Content-Type: multipart/form-data; boundary={boundary}", ctx.url(UPLOAD))
    check(r.status == 201, f"filename*=UTF-8''na%C3%AFve.txt: expected 201, got {r.describe()}")
    ctx.expect_stored(r.json(), part, NAIVE_STORED)

    r = await ctx.curl_raw(ctx.write_file("bad", data), "bad%zz.txt")
    check(r.status == 400, f"?name=bad%zz.txt (a bad escape): expected 400, got {r.describe()}")
    await ctx.wait_store([CAFE_STORED, NAIVE_STORED])
    await ctx.wait_idle()


# --- Status codes ----------------------------------------------------------------

async def http_status_codes(ctx: Ctx) -> None:
    """426 with Upgrade: websocket for a plain GET /ws/upload; 405s carry Allow;
    an oversized header line and too many headers get 431; an oversized target
    (in and over the head limit) gets 414."""
    ctx.start_server()
    port = ctx.server.port

    async def ask(request: bytes, what: str) -> tuple[int, dict, bytes]:
        status, headers, body = await raw_request(port, request)
        log(f"{what}: {status} {headers.get('allow') or headers.get('upgrade') or ''}")
        return status, headers, body

    status, headers, body = await ask(b"GET /ws/upload HTTP/1.1\r\nHost: x\r\n\r\n", "GET /ws")
    ctx.soft(status == 426 and headers.get("upgrade", "").lower() == "websocket",
             f"GET /ws/upload without an upgrade: expected 426 with Upgrade: websocket, got "
             f"{status} {headers} {body[:200]!r}")
    for request, allow in ((b"GET /api/v1/upload HTTP/1.1\r\nHost: x\r\n\r\n", {"POST"}),
                           (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                            {"GET", "HEAD"}),
                           (b"DELETE /ws/upload HTTP/1.1\r\nHost: x\r\n\r\n", {"GET"})):
        status, headers, body = await ask(request, request.split(b"\r\n")[0].decode())
        got = {m.strip() for m in headers.get("allow", "").split(",") if m.strip()}
        ctx.soft(status == 405 and got == allow,
                 f"{request.split(b' HTTP')[0].decode()}: expected 405 with Allow: "
                 f"{', '.join(sorted(allow))}, got {status} {headers} {body[:200]!r}")

    long_line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (20 * KiB) + b"\r\n\r\n"
    status, headers, body = await ask(long_line, "a 20 KiB header line")
    ctx.soft(status == 431, f"a 20 KiB header line: expected 431, got {status} {body[:200]!r}")
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(2000))
    status, headers, body = await ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n",
                                      "2000 header fields")
    ctx.soft(status == 431, f"2000 header fields: expected 431, got {status} {body[:200]!r}")

    for size in (10 * KiB, 20 * KiB):
        target = b"/healthz?pad=" + b"a" * size
        status, headers, body = await ask(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                                          f"a {size // KiB} KiB target")
        ctx.soft(status == 414, f"a {size // KiB} KiB target: expected 414, got {status} "
                                f"{body[:200]!r}")

    r = await ctx.curl(ctx.url("/healthz"))
    ctx.soft(r.status == 200, f"GET /healthz after the bad requests: expected 200, got "
                              f"{r.describe()}")
    ctx.raise_soft()
    await ctx.wait_store([])
    await ctx.wait_idle()


# --- The body's framing: Content-Length, exactly -----------------------------------------

def split_responses(data: bytes) -> list[tuple[int, dict, bytes]]:
    """Responses back to back, each framed by its Content-Length."""
    responses = []
    while b"\r\n\r\n" in data:
        head, data = data.split(b"\r\n\r\n", 1)
        status, headers = parse_head(head.decode("latin-1").split("\r\n"))
        length = int(headers.get("content-length", "0"))
        responses.append((status, headers, data[:length]))
        data = data[length:]
    return responses


async def http_body_framing(ctx: Ctx) -> None:
    """The body is read past the parser, by its Content-Length: two uploads (100
    bytes, within the head's read; 3 MiB + 5, across reads) and a GET pipelined in
    one write on one connection get 201, 201, 200, the uploads stored whole; a body
    that ends early is a 400 that says how much came."""
    ctx.start_server("--budget", "200MiB")
    small, large = payload(100, seed=81), payload(3 * MiB + 5, seed=82)
    reader, writer = await open_raw(ctx.server.port)
    try:
        writer.write(upload_head(UPLOAD + "?name=small.bin", len(small)) + small +
                     upload_head(UPLOAD + "?name=large.bin", len(large)) + large +
                     b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await within(writer.drain(), 20, "sending the pipelined requests")
        data, deadline = b"", time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                piece = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            except (asyncio.TimeoutError, ConnectionError):
                break
            if not piece:
                break
            data += piece
    finally:
        writer.transport.abort()
    responses = split_responses(data)
    check([status for status, _, _ in responses] == [201, 201, 200],
          f"expected 201, 201, 200 on one connection, got {responses!r:.600}")
    for (_, _, body), data, name in zip(responses, (small, large), ("small.bin", "large.bin")):
        ctx.expect_stored(json_object(body, f"{body!r:.300}")["files"][0], data, name)
    check(responses[2][2] == b"ok\n", f"GET /healthz answered {responses[2]!r}")

    declared, sent = MiB, 300 * KiB
    reader, writer = await open_raw(ctx.server.port)
    try:
        writer.write(upload_head(UPLOAD + "?name=short.bin", declared) + payload(sent, seed=83))
        await within(writer.drain(), 10, "sending the short body")
        writer.write_eof()
        status, _, body = await read_http_response(reader, 10)
    finally:
        writer.transport.abort()
    check(status == 400 and f"ended after {sent} of the {declared} bytes".encode() in body,
          f"a body ending after {sent} of {declared} bytes: expected 400 saying so, got "
          f"{status} {body[:300]!r}")
    await ctx.wait_store(["large.bin", "small.bin"])
    await ctx.wait_idle()


# --- One body limit -----------------------------------------------------------------------

async def http_body_limit(ctx: Ctx) -> None:
    """--max-body 1MiB: a 2 MiB raw body and a 2 MiB multipart body each get 413
    max_body (with a message) instead of a 100 Continue, so their bodies are
    never sent; neither reaches admission."""
    ctx.start_server("--budget", "200MiB", "--max-body", "1MiB")
    path = ctx.write_file("two.bin", payload(2 * MiB, seed=66))
    for what, r in (("raw", await ctx.curl_raw(path, "two.bin", "--expect100-timeout", "30")),
                    ("multipart", await ctx.curl_form(path, "--expect100-timeout", "30"))):
        check(r.status == 413, f"{what} over --max-body: expected 413, got {r.describe()}")
        check(100 not in r.statuses(), f"{what}: expected no 100 Continue, got {r.describe()}")
        body = r.json()
        check(body.get("reason") == "max_body" and body.get("max_body") == MiB
              and isinstance(body.get("message"), str) and body["message"],
              f"{what}: expected {{reason: max_body, max_body: {MiB}, message: ...}}, got {body}")
        expect_no_body_sent(r, 2 * MiB)
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 0, f"expected nothing admitted, got {m.summary()}")
    await ctx.wait_store([])
