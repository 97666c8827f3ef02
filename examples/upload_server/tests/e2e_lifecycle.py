"""Cases of uploads that end abnormally and of the server's own end: clients that
vanish mid-upload, and SIGTERM with uploads running (within and past --grace)."""

from __future__ import annotations

import asyncio
import functools
import random
import signal
import time
import traceback

import websockets.exceptions

from e2e_clients import open_raw, read_http_response
from e2e_context import Ctx, close_json, expect_refusal, hold
from e2e_metrics import REASONS
from e2e_server import describe_exit
from e2e_support import (KiB, MiB, CaseFailure, check, chunks_of, log, payload, rst_on_close,
                         within)


async def abort_200(ctx: Ctx) -> None:
    """200 uploads that vanish mid-way (WebSocket RST/FIN without a close frame, raw HTTP
    raw and multipart bodies cut short by RST/FIN), 16 at a time: everything released,
    no file left, the server still serves an upload."""
    ctx.start_server("--budget", "200MiB", "--slots", "16")
    rng = random.Random(200)
    boundary = "e2eAbortBoundary7MA4YWxk"
    block = payload(MiB, seed=17)
    declared = 4 * MiB

    async def ws_abort(index: int, rst: bool) -> None:
        up = ctx.upload(f"abort{index}.bin", declared)
        ready = await up.start()
        check(ready is not None, f"abort #{index}: expected ready, closed with {up.refused}")
        amount = rng.randrange(64 * KiB, MiB)
        check(await up.send_all(chunks_of(block[:amount], 64 * KiB)),
              f"abort #{index}: the server closed the connection mid-way: {up.close_code}")
        await asyncio.sleep(rng.uniform(0, 0.03))
        up.abort(rst)
        await up.dispose()

    async def http_abort(index: int, rst: bool, multipart: bool) -> None:
        if multipart:
            prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                      f"filename=\"abort{index}.bin\"\r\nContent-Type: application/octet-stream"
                      f"\r\n\r\n").encode()
            length = len(prefix) + declared + len(f"\r\n--{boundary}--\r\n")
            target, content_type = "/api/v1/upload", f"multipart/form-data; boundary={boundary}"
        else:
            prefix, length = b"", declared
            target, content_type = f"/api/v1/upload?name=abort{index}.bin", "application/octet-stream"
        head = (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{ctx.server.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
                + ("Expect: 100-continue\r\n" if multipart else "") + "\r\n").encode()
        reader, writer = await open_raw(ctx.server.port)
        try:
            writer.write(head)
            await within(writer.drain(), 10, f"abort #{index}: sending the request head")
            if multipart:  # with Expect: the 100 proves it was admitted before we vanish
                status, headers, body = await read_http_response(reader, 15)
                check(status == 100, f"abort #{index}: expected '100 Continue', got {status} "
                                     f"{headers} {body[:300]!r}")
            amount = rng.randrange(64 * KiB, MiB)
            writer.write(prefix + block[:amount])
            await within(writer.drain(), 15, f"abort #{index}: sending part of the body")
            await asyncio.sleep(rng.uniform(0, 0.03))
            try:  # nothing may have come back: a refusal here would be a 503
                early = await asyncio.wait_for(reader.read(4096), 0.01)
            except (asyncio.TimeoutError, ConnectionError):
                early = None
            if early:
                raise CaseFailure(f"abort #{index}: the server answered mid-body: {early[:300]!r}")
        finally:
            if rst:
                rst_on_close(writer.transport)
            writer.transport.abort()

    # Four kinds in turn: WebSocket RST, WebSocket FIN, multipart RST, raw FIN.
    kinds = (lambda i: ws_abort(i, rst=True), lambda i: ws_abort(i, rst=False),
             lambda i: http_abort(i, rst=True, multipart=True),
             lambda i: http_abort(i, rst=False, multipart=False))
    plan = [functools.partial(kinds[index % 4], index) for index in range(200)]

    started = time.monotonic()
    for first in range(0, len(plan), 16):
        results = await asyncio.gather(*(make() for make in plan[first:first + 16]),
                                       return_exceptions=True)
        errors = [e for e in results if isinstance(e, BaseException)]
        if errors:
            if isinstance(errors[0], CaseFailure):
                raise errors[0]
            detail = "".join(traceback.format_exception(errors[0]))
            raise CaseFailure(f"batch at #{first}: {errors[0]!r}\n{detail}")
        await ctx.wait_idle(timeout=10)
    log(f"200 aborted uploads in {time.monotonic() - started:.1f} s")

    await ctx.wait_store([], timeout=10)
    m = await ctx.wait_idle()
    log(f"after the aborts: {m.summary()}")
    check(all(m.rejected(r) == 0 for r in REASONS if r != "cancelled"),
          f"expected no refusal, got {m.summary()}")
    check(150 <= m["admit_admitted_total"] <= 200,
          f"expected 150..200 admitted (every WebSocket and Expect one at least), got {m.summary()}")

    data = payload(2 * MiB + 1, seed=18)
    r = await ctx.curl_raw(ctx.write_file("after.bin", data), "after.bin")
    check(r.status == 201, f"expected a normal upload to succeed after the aborts, got {r.describe()}")
    ctx.expect_stored(r.json(), data, "after.bin")
    await ctx.wait_store(["after.bin"])
    await ctx.wait_idle()


async def expect_new_upload_refused(ctx: Ctx) -> str:
    """After SIGTERM: a new WebSocket upload fails to connect or is closed (1001/1013),
    and a new curl upload fails to connect or gets 503 closed. Retries (bounded) while
    the signal may not have been handled yet."""
    outcome = ""
    deadline = time.monotonic() + 10
    while not outcome:
        probe = ctx.upload("late.bin", MiB)
        try:
            await probe.connect(timeout=5)
        except (OSError, CaseFailure, websockets.exceptions.WebSocketException) as e:
            outcome = f"WebSocket: could not connect/handshake ({e!r:.120})"
            break
        try:
            await probe.send_header(5)
            ready = await probe.first_answer(10)
        except websockets.exceptions.ConnectionClosed as e:  # closed before the header
            await probe.record_refusal(e)
            ready = None
        if ready is None:
            check(probe.refused[0] in (1001, 1013),
                  f"after SIGTERM: expected a new WebSocket upload closed with 1001 or 1013 "
                  f"(closed), got {probe.refused}")
            outcome = f"WebSocket: closed {probe.refused}"
        else:
            probe.abort(rst=True)
            check(time.monotonic() < deadline,
                  "after SIGTERM: new WebSocket uploads still got ready for 10 s")
            await asyncio.sleep(0.3)
        await probe.dispose()
    path = ctx.write_file("late.bin", payload(2 * MiB, seed=23))
    r = await ctx.curl_raw(path, "late.bin", "--expect100-timeout", "30", timeout=15)
    if r.status == 0:
        outcome += f"; curl: no response (curl exit {r.rc}: {r.stderr.strip()})"
    else:
        expect_refusal(r, 503, "closed")
        outcome += "; curl: 503 closed"
    return outcome


async def graceful_shutdown(ctx: Ctx) -> None:
    """SIGTERM during a WebSocket upload (--grace 30s): new uploads are refused, the
    running one finishes (done, sha256) and the server then exits 0."""
    server = ctx.start_server("--budget", "200MiB", "--grace", "30s")
    data = payload(8 * MiB, seed=24)
    up = await hold(ctx, "running.bin", len(data))
    half = len(data) // 2
    check(await up.send_all(chunks_of(data[:half], 64 * KiB)), "the first half was not accepted")
    signalled = time.monotonic()
    server.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    log(f"after SIGTERM: {await expect_new_upload_refused(ctx)}")
    check(server.alive(), f"the server exited ({describe_exit(server.proc.poll())}) while an "
                          f"upload was running within its grace")
    check(await up.send_all(chunks_of(data[half:], 64 * KiB)),
          f"the running upload was cut after SIGTERM: {up.close_code} {up.close_reason!r}")
    await up.finished(30)
    up.expect_done()
    done = time.monotonic()
    code = server.wait_exit(max(1.0, signalled + 45 - time.monotonic()))
    check(code is not None, "the server did not exit within 45 s of SIGTERM (grace 30 s)")
    log(f"exit {code} {time.monotonic() - done:.2f} s after the last upload finished")
    check(code == 0, f"expected exit code 0 after SIGTERM, got {describe_exit(code)}")
    check(server.store_entries() == ["running.bin"],
          f"expected the store to hold ['running.bin'], it holds {server.store_entries()}")
    check((server.store / "running.bin").read_bytes() == data, "running.bin differs from what "
                                                               "was sent")


async def shutdown_grace_expired(ctx: Ctx) -> None:
    """SIGTERM with --grace 1s and an upload that never finishes: the server waits
    about the grace, cuts it with close 1001 (no done), removes its partial file
    and exits 0."""
    server = ctx.start_server("--budget", "200MiB", "--grace", "1s")
    up = await hold(ctx, "stuck.bin", 8 * MiB)
    check(await up.send_all(chunks_of(payload(MiB, seed=25), 64 * KiB)), "1 MiB was not accepted")
    signalled = time.monotonic()
    server.signal(signal.SIGTERM)
    code = await asyncio.get_running_loop().run_in_executor(None, server.wait_exit, 20.0)
    took = time.monotonic() - signalled
    check(code is not None, "the server did not exit within 20 s of SIGTERM (grace 1 s)")
    log(f"exit {code} {took:.2f} s after SIGTERM")
    check(code == 0, f"expected exit code 0, got {describe_exit(code)}")
    check(took >= 0.8, f"expected the server to give the running upload its 1 s grace, it exited "
                       f"after {took:.2f} s")
    await up.finished(15)
    check(up.done is None, f"expected no done for an upload cut by shutdown, got {up.done}")
    log(f"the connection ended with {up.close_code} {up.close_reason!r}")
    check(up.close_code == 1001,
          f"expected the cut-off upload to be told with close 1001 (going away), got "
          f"{up.close_code} {up.close_reason!r}")
    # ... and when to come back: RetryConfig::closed_hint, 10 s, jittered by +-20 %.
    told = close_json(up.close_reason)
    check(told.get("reason") == "closed" and 8000 <= told.get("retry_after_ms", 0) <= 12000,
          f"expected the close reason {{\"reason\":\"closed\",\"retry_after_ms\":8000..12000}}, "
          f"got {up.close_reason!r}")
    entries = server.store_entries()
    check(entries == [], f"expected the partial file removed at exit, the store holds {entries}")
