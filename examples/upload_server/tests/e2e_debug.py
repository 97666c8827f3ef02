"""Cases of what the server tells about itself while it runs: GET /debug/uploads lists
every upload in progress with the server's own figures, and leaves it out once it
has ended."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Callable, Optional

from e2e_clients import open_raw, read_http_response
from e2e_context import Ctx, hold
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
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"form listed.bin\"\r\n\r\n").encode()
    form_data = payload(2 * MiB, seed=1402)
    suffix = f"\r\n--{boundary}--\r\n".encode()
    length = len(prefix) + len(form_data) + len(suffix)
    reader, writer = await open_raw(ctx.server.port)
    try:
        writer.write((f"POST /api/v1/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      f"multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n"
                      f"Expect: 100-continue\r\n\r\n").encode())
        status, _, _ = await read_http_response(reader, 10)
        check(status == 100, f"expected 100 Continue for the multipart upload, got {status}")
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
