"""Cases of hostile and broken WebSocket clients before "ready": declared sizes over
--max-body, connections that send no upload request or one too big, data before "ready"
while queued, and an upload request sent in the same write as the upgrade.

Each refused client must get a close frame with a code and a reason (never a dropped
connection), the server must log it in one line, and afterwards /metrics must show 0 bytes,
0 slots and 0 waiters. Timeouts are short server flags (1 s); the checks are on the order
of events with generous bounds, never on speed."""

from __future__ import annotations

import asyncio
import hashlib
import time

import websockets.exceptions

from e2e_clients import RawWebSocket, WsUpload
from e2e_context import Ctx, finish, hold
from e2e_hostile_ws import wait_log
from e2e_metrics import REASONS
from e2e_support import GiB, KiB, MiB, CaseFailure, check, log, payload, within


# --- --max-body, checked before admission ----------------------------------------------------

async def refused_before_admission(ctx: Ctx, size: int, limit: int) -> None:
    """A WebSocket upload declaring `size` > `limit` is closed 1009, naming both."""
    up = ctx.upload("huge.bin", size)
    ready = await up.start()
    ctx.soft(ready is None, f"declared {size}: expected close 1009 (over --max-body {limit}), "
                            f"got {ready}")
    if ready is None:
        code, reason = up.refused
        log(f"declared {size}: closed {code} {reason!r}")
        ctx.soft(code == 1009 and str(size) in reason and str(limit) in reason,
                 f"declared {size}: expected close 1009 with a reason naming {size} and {limit}, "
                 f"got {up.refused}")
    await up.dispose()


async def hostile_ws_max_body(ctx: Ctx) -> None:
    """Declared sizes over --max-body are closed 1009 before admission, the reason naming both
    figures: 2^64-1, 2^63, 1 TiB and 64 GiB + 1 under the default (64 GiB); 10 MiB under
    --max-body 1MiB, where exactly 1 MiB is admitted and stored."""
    server = ctx.start_server("--budget", "200MiB")
    for size in (2**64 - 1, 2**63, 1 << 40, 64 * GiB + 1):
        await refused_before_admission(ctx, size, 64 * GiB)
    ctx.raise_soft()
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 0 and all(m.rejected(r) == 0 for r in REASONS),
          f"expected the pool never asked (nothing admitted or refused), got {m.summary()}")
    await wait_log(ctx, "refused: max_body", 4)
    code = server.stop()
    check(code == 0, f"expected the first server to exit 0 on SIGTERM, got {code}")

    ctx.start_server("--budget", "200MiB", "--max-body", "1MiB")
    await refused_before_admission(ctx, 10 * MiB, MiB)
    ctx.raise_soft()
    data = payload(MiB, seed=105)
    await finish(await hold(ctx, "exact.bin", len(data)), data)
    await ctx.wait_store(["exact.bin"])
    await ctx.wait_idle()


# --- The upload request: --first-message-timeout, its size --------------------------------------

async def hostile_ws_first_message(ctx: Ctx) -> None:
    """--first-message-timeout 1s: a WebSocket that sends no upload request, or only the first
    fragment of one, is closed 1008 with a reason after about 1 s; a request over 4096 bytes is
    closed 1009 with a reason (Beast's own has none); a request sent in time is served."""
    ctx.start_server("--budget", "200MiB", "--first-message-timeout", "1s")

    silent = ctx.upload("silent.bin", 0)
    await silent.connect()
    started = time.monotonic()
    try:
        message = await within(silent.ws.recv(), 15, "the server to close a silent WebSocket")
        raise CaseFailure(f"silent: expected a close, got {message!r}")
    except websockets.exceptions.ConnectionClosed as e:
        await silent.record_refusal(e)
    took = time.monotonic() - started
    log(f"silent: closed {silent.refused} after {took:.2f} s")
    check(silent.refused[0] == 1008 and "no upload request" in silent.refused[1],
          f"silent: expected close 1008 'no upload request ...', got {silent.refused}")
    check(took >= 0.8, f"silent: closed after {took:.2f} s, before the 1 s timeout")

    raw = RawWebSocket(ctx.server.port)
    try:
        status, headers = await raw.open()
        check(status == 101, f"partial: expected 101, got {status} {headers}")
        await raw.write(RawWebSocket.frame(RawWebSocket.TEXT, b'{"name": "p.bin",', fin=False))
        started = time.monotonic()
        messages, code, reason = await raw.read_until_close(15)
        took = time.monotonic() - started
    finally:
        raw.abort()
    log(f"partial: closed {code} {reason!r} after {took:.2f} s")
    check(messages == [] and code == 1008 and "no upload request" in reason,
          f"partial: expected close 1008 'no upload request ...' and no message, got {code} "
          f"{reason!r} after {messages}")
    check(took >= 0.8, f"partial: closed after {took:.2f} s, before the 1 s timeout")

    big = ctx.upload("big.bin", 10, header={"name": "big.bin", "size": 10, "pad": "x" * 5000})
    check(await big.start() is None, "expected a 5 KB upload request to be refused, it got ready")
    log(f"5 KB request: closed {big.refused}")
    check(big.refused[0] == 1009 and "4096" in big.refused[1],
          f"expected close 1009 with a reason naming the 4096-byte limit, got {big.refused}")

    data = payload(100 * KiB, seed=106)
    in_time = ctx.upload("in_time.bin", len(data))
    await in_time.connect()
    await asyncio.sleep(0.3)
    await in_time.send_header()
    check(await in_time.first_answer(15) is not None,
          f"expected a request sent 0.3 s after the upgrade served, got {in_time.refused}")
    await finish(in_time, data)

    await wait_log(ctx, "no upload request", 2)
    await wait_log(ctx, "4096", 1)
    await ctx.wait_store(["in_time.bin"])
    await ctx.wait_idle()


# --- Before "ready": the wait for room, the upgrade's leftover bytes ----------------------------

async def queue_behind(ctx: Ctx, name: str) -> WsUpload:
    """A WebSocket upload whose request is sent and which waits for room (admit_waiters 1)."""
    up = ctx.upload(name, MiB)
    await up.connect()
    await up.send_header()
    await ctx.wait_metrics(lambda m: m["admit_waiters"] == 1, "admit_waiters 1", timeout=5)
    return up


async def hostile_ws_pre_ready(ctx: Ctx) -> None:
    """--slots 1 --wait 20s, uploads queued behind a held one: one that sends data before
    "ready" is closed 1008 with a reason at once and leaves the queue; one that sends a close
    frame has it answered (1000) and leaves the queue; one that only pings keeps its place and
    is served once the holder finishes."""
    ctx.start_server("--budget", "200MiB", "--slots", "1", "--wait", "20s")
    data_a = payload(MiB, seed=111)
    a = await hold(ctx, "a.bin", len(data_a))

    eager = await queue_behind(ctx, "eager.bin")
    sent = time.monotonic()
    await within(eager.ws.send(b"\x00" * 1000), 10, "sending data before ready")
    check(await eager.first_answer(15) is None, "expected data before ready closed, it got ready")
    took = time.monotonic() - sent
    log(f"data before ready: closed {eager.refused} after {took:.2f} s")
    check(eager.refused[0] == 1008 and "ready" in eager.refused[1],
          f"expected close 1008 with a reason about 'ready', got {eager.refused}")
    check(took < 10, f"expected the close at once, not when --wait runs out; took {took:.1f} s")
    await ctx.wait_metrics(lambda m: m["admit_waiters"] == 0, "admit_waiters 0", timeout=5)

    leaver = await queue_behind(ctx, "leaver.bin")
    await within(leaver.ws.close(), 15, "the closing handshake of a queued upload")
    log(f"close while queued: the server answered {leaver.ws.close_code}")
    check(leaver.ws.close_code == 1000,
          f"expected the close answered with 1000, got {leaver.ws.close_code} (1006: dropped)")
    await ctx.wait_metrics(lambda m: m["admit_waiters"] == 0, "admit_waiters 0", timeout=5)

    pinger = await queue_behind(ctx, "pinger.bin")
    for _ in range(3):
        await within(pinger.ws.ping(), 5, "sending a ping")  # the pong is not awaited
        await asyncio.sleep(0.2)
    answer = asyncio.ensure_future(pinger.first_answer(30))
    try:
        await asyncio.sleep(0.5)
        check(not answer.done(), f"expected the pinging upload to keep waiting, it got "
                                 f"{pinger.ready or pinger.refused}")
        m = await ctx.metrics()
        check(m["admit_waiters"] == 1, f"expected the pinging upload still queued, got {m.summary()}")
        await finish(a, data_a)
        ready = await within(asyncio.shield(answer), 30, "the pinging upload to get ready")
    finally:
        answer.cancel()
    check(ready is not None, f"expected the pinging upload admitted, got {pinger.refused}")
    data_p = payload(MiB, seed=112)
    await finish(pinger, data_p)

    await wait_log(ctx, "data before", 1)
    await ctx.wait_store(["a.bin", "pinger.bin"])
    m = await ctx.wait_idle()
    check(m.rejected("cancelled") == 2 and m["admit_admitted_total"] == 2,
          f"expected 2 cancelled waits (data, close) and 2 admitted, got {m.summary()}")


async def hostile_ws_upgrade_leftover(ctx: Ctx) -> None:
    """The upgrade request and the upload request in one write: the 101 (Server:
    admit-upload-server, not Beast's) and "ready" come back and the upload completes; the
    same with the whole upload in that one write."""
    ctx.start_server("--budget", "200MiB")
    text, frame, BINARY = RawWebSocket.text, RawWebSocket.frame, RawWebSocket.BINARY

    data = payload(3000, seed=121)
    raw = RawWebSocket(ctx.server.port)
    try:
        status, headers = await raw.open(text({"name": "together.bin", "size": len(data)}))
        log(f"101 headers: {headers}")
        check(status == 101, f"expected 101, got {status} {headers}")
        check(headers.get("server") == "admit-upload-server",
              f"expected 'Server: admit-upload-server' on the 101, got {headers.get('server')!r}")
        got = await raw.read_frame(15)
        check(got is not None and b'"ready"' in got[1],
              f"expected ready to a request sent with the upgrade, got {got}")
        await raw.write(frame(BINARY, data))
        messages, code, reason = await raw.read_until_close(15)
    finally:
        raw.abort()
    check(code == 1000 and messages[-1:] == [{"status": "done", "bytes": len(data),
                                              "sha256": hashlib.sha256(data).hexdigest()}],
          f"expected done and close 1000, got {code} {reason!r} after {messages}")

    data = payload(5000, seed=122)
    raw = RawWebSocket(ctx.server.port)
    try:
        status, headers = await raw.open(text({"name": "at_once.bin", "size": len(data)})
                                         + frame(BINARY, data[:2000]) + frame(BINARY, data[2000:]))
        check(status == 101, f"expected 101, got {status} {headers}")
        messages, code, reason = await raw.read_until_close(15)
    finally:
        raw.abort()
    log(f"all in one write: {messages}, closed {code} {reason!r}")
    check(code == 1000 and len(messages) == 2 and messages[0].get("status") == "ready"
          and messages[1] == {"status": "done", "bytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()},
          f"expected ready, done and close 1000, got {code} {reason!r} after {messages}")

    await ctx.wait_store(["at_once.bin", "together.bin"])
    await ctx.wait_idle()
