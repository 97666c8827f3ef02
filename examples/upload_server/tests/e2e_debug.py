"""Cases of what the server tells about itself while it runs: GET /debug/uploads lists
every upload in progress with the server's own figures, and leaves it out once it
has ended; SIGUSR1 logs the pool's diagnosis (admit::describe), naming the upload
that holds the most by its label."""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import time
from typing import Callable, Optional

from e2e_clients import open_raw, read_http_response
from e2e_context import Ctx, finish, hold
from e2e_support import KiB, MiB, CaseFailure, check, chunks_of, log, payload, tiered

FIELDS = ("id", "protocol", "name", "declared_size", "reserved_bytes", "buffer_bytes",
          "received_bytes", "age_seconds", "rate_bytes_per_second")


async def debug_uploads(ctx: Ctx) -> Optional[list]:
    r = await ctx.curl(ctx.url("/debug/uploads"), timeout=10)
    check(r.status == 200, f"GET /debug/uploads: expected 200, got {r.describe()}")
    check(r.headers.get("content-type", "").startswith("application/json"),
          f"GET /debug/uploads: expected JSON, got {r.describe()}")
    uploads = r.json().get("uploads")
    check(isinstance(uploads, list), f"GET /debug/uploads: expected a list 'uploads', got "
                                     f"{r.describe()}")
    for entry in uploads:
        check(isinstance(entry, dict) and all(key in entry for key in FIELDS),
              f"GET /debug/uploads: expected every entry to have {FIELDS}, got {entry}")
    return uploads


async def wait_listing(ctx: Ctx, predicate: Callable[[list], bool], what: str,
                       timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        uploads = await debug_uploads(ctx)
        if predicate(uploads):
            return uploads
        if time.monotonic() > deadline:
            raise CaseFailure(f"GET /debug/uploads did not show {what} within {timeout:g} s; "
                              f"last: {uploads}")
        await asyncio.sleep(0.05)


def entry_named(uploads: list, name: str) -> Optional[dict]:
    return next((entry for entry in uploads if entry["name"] == name), None)


async def begin_multipart(ctx: Ctx, boundary: str, filename: str, data_size: int):
    """Opens a multipart upload of one file part of `data_size` bytes, by hand, and
    waits for its 100 Continue. Returns the stream and the part's header, not yet sent."""
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"{filename}\"\r\n\r\n").encode()
    length = len(prefix) + data_size + len(f"\r\n--{boundary}--\r\n")
    reader, writer = await open_raw(ctx.server.port)
    writer.write((f"POST /api/v1/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                  f"multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n"
                  f"Expect: 100-continue\r\n\r\n").encode())
    status, _, _ = await read_http_response(reader, 10)
    if status != 100:
        writer.close()
        raise CaseFailure(f"expected 100 Continue for '{filename}', got {status}")
    return reader, writer, prefix


async def debug_uploads_listed(ctx: Ctx) -> None:
    """--buffer memory: a WebSocket upload and a multipart one in progress appear in
    GET /debug/uploads with their protocol, name (the multipart one's once its part
    header has been parsed), declared size, reservation, part, the bytes received so far (what
    was sent), an age and a rate; each leaves the list when it is stored."""
    ctx.start_server("--budget", "200MiB", "--buffer", "memory")
    check(await debug_uploads(ctx) == [], "expected no uploads listed before any began")

    ws_data = payload(3 * MiB, seed=1401)
    ws = await hold(ctx, "listed.bin", len(ws_data))
    first = ws_data[:MiB + 5]
    check(await ws.send_all(chunks_of(first, 64 * KiB)), f"'listed.bin' closed: {ws.close_code}")
    uploads = await wait_listing(
        ctx, lambda ups: (entry_named(ups, "listed.bin") or {}).get("received_bytes") == len(first),
        f"'listed.bin' with {len(first)} bytes received")
    entry = entry_named(uploads, "listed.bin")
    log(f"WebSocket upload in progress: {entry}")
    reserved = tiered(len(ws_data))
    expected = {"protocol": "ws", "declared_size": len(ws_data), "reserved_bytes": reserved,
                "buffer_bytes": reserved}
    for key, value in expected.items():
        check(entry[key] == value, f"expected {key}={value} for 'listed.bin', got {entry}")
    check(entry["id"].startswith("ws#"), f"expected an id ws#N, got {entry}")
    check(entry["age_seconds"] > 0 and entry["rate_bytes_per_second"] > 0,
          f"expected a positive age and rate, got {entry}")

    # A multipart upload, its body sent in part by hand: its name comes with the body,
    # which the parser sees once the part (its 410 KiB reservation) is full.
    boundary = "e2eDebugBoundary"
    form_data = payload(2 * MiB, seed=1402)
    suffix = f"\r\n--{boundary}--\r\n".encode()
    reader, writer, prefix = await begin_multipart(ctx, boundary, "form listed.bin", len(form_data))
    length = len(prefix) + len(form_data) + len(suffix)
    try:
        sent = prefix + form_data[:600 * KiB]
        writer.write(sent)
        await writer.drain()
        uploads = await wait_listing(
            ctx, lambda ups: (entry_named(ups, "form_listed.bin") or {}).get("received_bytes")
            == len(sent), f"'form_listed.bin' (sanitised) with {len(sent)} bytes received")
        entry = entry_named(uploads, "form_listed.bin")
        log(f"multipart upload in progress: {entry}")
        check(entry["protocol"] == "http" and entry["declared_size"] == length
              and entry["reserved_bytes"] == tiered(length) and entry["id"].startswith("http#"),
              f"expected the multipart upload's protocol http, declared_size {length} and "
              f"reserved_bytes {tiered(length)}, got {entry}")
        check(entry_named(uploads, "listed.bin") is not None,
              f"expected both uploads listed, got {uploads}")

        writer.write(form_data[600 * KiB:] + suffix)
        await writer.drain()
        status, _, body = await read_http_response(reader, 30)
        check(status == 201, f"expected the multipart upload stored (201), got {status} {body!r}")
    finally:
        writer.transport.abort()
    await wait_listing(ctx, lambda ups: entry_named(ups, "form_listed.bin") is None,
                       "the stored multipart upload gone from the list")

    check(await ws.send_all(chunks_of(ws_data[len(first):], 64 * KiB)),
          f"'listed.bin' closed: {ws.close_code} {ws.close_reason!r}")
    await ws.finished(30)
    ws.expect_done()
    check(ws.done.get("sha256") == hashlib.sha256(ws_data).hexdigest(), f"wrong sha256: {ws.done}")
    await wait_listing(ctx, lambda ups: ups == [], "no upload listed once both are stored")
    await ctx.wait_idle()


async def wait_log(ctx: Ctx, pattern: str, what: str, count: int = 1,
                   timeout: float = 10.0) -> str:
    """The `count`-th line of the server's log that matches `pattern` (a regex)."""
    deadline = time.monotonic() + timeout
    while True:
        ctx.server.check_alive()
        text = ctx.server.log_path.read_text(errors="replace")
        matches = re.findall(pattern, text, re.MULTILINE)
        if len(matches) >= count:
            return matches[count - 1]
        if time.monotonic() > deadline:
            raise CaseFailure(f"the server's log shows no {what} within {timeout:g} s")
        await asyncio.sleep(0.05)


async def debug_sigusr1(ctx: Ctx) -> None:
    """SIGUSR1 logs one line, admit::describe(pool): with --track-reservations on (the
    default) it names the largest upload by its label, "ws#N big.zip", then a larger
    multipart upload's "http#M form.bin" once its part header is parsed; with it off it
    says the records are off. The server goes on serving and exits 0 on SIGTERM."""
    pattern = rf"^pool on signal {int(signal.SIGUSR1)}: .*$"
    for track in ("on", "off"):
        ctx.start_server("--budget", "200MiB", "--track-reservations", track)
        data = payload(8 * MiB, seed=1403)
        up = await hold(ctx, "big.zip", len(data))
        number = int(re.findall(r"^ws#(\d+) declared=", ctx.server.log_path.read_text(),
                                re.MULTILINE)[-1])
        ctx.server.signal(signal.SIGUSR1)
        line = await wait_log(ctx, pattern, "'pool on signal N: ...' line")
        log(f"--track-reservations {track}: {line}")
        check("of 200 MiB held by 1 upload" in line and "slots 1/16" in line,
              f"expected one upload held of 200 MiB and slots 1/16 in the SIGUSR1 line, "
              f"got {line!r}")
        if track == "on":
            label = f'"ws#{number} big.zip"'
            check("largest: #" in line and label in line,
                  f"expected the largest upload named {label} in the SIGUSR1 line, got {line!r}")
            await larger_multipart_named(ctx, pattern)
        else:
            check("track_reservations is off" in line,
                  f"expected the SIGUSR1 line to say the records are off, got {line!r}")
        await finish(up, data)
        await ctx.wait_idle()
        code = ctx.server.stop(timeout=20)
        check(code == 0, f"expected exit 0 on SIGTERM after SIGUSR1, got {code}")



async def larger_multipart_named(ctx: Ctx, pattern: str) -> None:
    """A multipart upload larger than the one held, its body begun by hand: once the
    server has parsed its part header, SIGUSR1 names it as the largest, by its file."""
    reader, writer, prefix = await begin_multipart(ctx, "e2eLabelBoundary", "form.bin", 20 * MiB)
    try:
        writer.write(prefix + payload(256 * KiB, seed=1404))
        await writer.drain()
        uploads = await wait_listing(ctx, lambda ups: entry_named(ups, "form.bin") is not None,
                                     "'form.bin' named")
        number = entry_named(uploads, "form.bin")["id"].split("#")[1]
        ctx.server.signal(signal.SIGUSR1)
        line = await wait_log(ctx, pattern, "a second 'pool on signal N: ...' line", count=2)
        log(f"with a larger multipart upload: {line}")
        label = f'"http#{number} form.bin"'
        check("held by 2 uploads" in line and label in line,
              f"expected 2 uploads held and the largest named {label}, got {line!r}")
    finally:
        writer.transport.abort()  # the server takes it as a client gone: nothing stored
