"""Cases of hostile and broken WebSocket clients once admitted: uploads that send no data
after "ready" (idle, pinging, stalled, dripping), clients that never answer the server's
close, and data past the declared size inside one frame. The cases before "ready" are in
e2e_hostile_ws_request.py.

Each cut-off client must get a close frame with a code and a reason (never a dropped
connection), the server must log it in one line, and afterwards /metrics must show 0 bytes,
0 slots and 0 waiters. Timeouts are short server flags (1-2 s); the checks are on the order
of events with generous bounds, never on speed."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import struct
import time

import websockets.exceptions

from e2e_clients import RawWebSocket, WsUpload
from e2e_context import Ctx, finish, hold
from e2e_server import describe_exit
from e2e_support import KiB, MiB, CaseFailure, check, chunks_of, log, payload, within


# --- Shared steps ---------------------------------------------------------------------------

def log_count(ctx: Ctx, text: str) -> int:
    """How many lines of the server's log contain `text`."""
    lines = ctx.server.log_path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return sum(text in line for line in lines)


async def wait_log(ctx: Ctx, text: str, count: int, timeout: float = 10.0) -> None:
    """The server's log has exactly `count` lines containing `text` (it writes a cut-off's
    line once the closing handshake is over, a moment after the client saw the close)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = log_count(ctx, text)
        if seen == count:
            return
        if time.monotonic() > deadline:
            raise CaseFailure(f"expected {count} line(s) of the server's log to contain {text!r}, "
                              f"found {seen}")
        await asyncio.sleep(0.1)


async def expect_cut(up: WsUpload, since: float, code: int, words: str, what: str) -> float:
    """`up` (admitted) is closed by the server with `code` and a reason containing `words`,
    no "done"; returns the seconds from `since` to the close."""
    await up.finished(20)
    took = time.monotonic() - since
    log(f"{what}: closed {up.close_code} {up.close_reason!r} after {took:.2f} s")
    check(up.done is None, f"{what}: expected no done, got {up.done}")
    check(up.close_code == code and words in up.close_reason,
          f"{what}: expected close {code} with a reason containing {words!r}, got "
          f"{up.close_code} {up.close_reason!r}")
    return took


async def ping_until_closed(up: WsUpload, every: float, count: int) -> None:
    """Ping (without waiting for the pongs) every `every` s, at most `count` times."""
    for _ in range(count):
        if up.ws.closed:
            return
        try:
            await up.ws.ping()
        except websockets.exceptions.ConnectionClosed:
            return
        await asyncio.sleep(every)


# --- Idle uploads: --body-timeout and --min-rate ---------------------------------------------

async def hostile_ws_idle(ctx: Ctx) -> None:
    """--body-timeout 2s: after "ready", an upload that sends no data (idle, only pinging, or
    stalled after 10 KiB) is closed 1008 "no data for 2 s" once 2 s pass, and its slot comes
    back while an honest slow upload (1 KiB every 0.5 s, 6 s in all) goes on and completes."""
    ctx.start_server("--budget", "200MiB", "--slots", "4", "--body-timeout", "2s")
    idle = await hold(ctx, "idle.bin", MiB)
    pinger = await hold(ctx, "pinger.bin", MiB)
    stalled = await hold(ctx, "stalled.bin", MiB)
    slow_data = payload(12 * KiB, seed=101)
    slow = await hold(ctx, "slow.bin", len(slow_data))
    started = time.monotonic()

    async def send_slowly() -> None:
        for chunk in chunks_of(slow_data, KiB):
            check(await slow.send(chunk), f"the slow upload was closed after {slow.sent} bytes: "
                                          f"{slow.close_code} {slow.close_reason!r}")
            await asyncio.sleep(0.5)
        await slow.finished(30)

    sender = asyncio.ensure_future(send_slowly())
    pinging = asyncio.ensure_future(ping_until_closed(pinger, 0.25, 80))
    try:
        check(await stalled.send_all(chunks_of(payload(10 * KiB, seed=102), KiB)),
              "the stalled upload was closed during its first 10 KiB")
        for up, what in ((idle, "idle"), (pinger, "pinging"), (stalled, "stalled")):
            took = await expect_cut(up, started, 1008, "no data for 2 s", what)
            check(took >= 1.5, f"{what}: closed after {took:.2f} s, before the 2 s body timeout")
        # Cut off: their slots are back at once, while the slow upload still runs.
        m = await ctx.wait_metrics(lambda m: m["admit_slots_in_use"] <= 1,
                                   "at most 1 slot in use (the slow upload)", timeout=5)
        log(f"after the cut-offs: {m.summary()}")
        await within(sender, 40, "the slow upload to finish")
    finally:
        sender.cancel()
        pinging.cancel()
    slow.expect_done()
    await wait_log(ctx, "no data for 2 s", 3)
    await ctx.wait_store(["slow.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 4, f"expected 4 admitted, got {m.summary()}")


async def hostile_ws_min_rate(ctx: Ctx) -> None:
    """--body-timeout 2s --min-rate 4KiB: an upload dripping 100 bytes every 0.2 s (never 2 s
    without data, but 500 B/s) is closed 1008 naming the minimum; one sending 16 KiB every
    0.2 s through several intervals completes."""
    ctx.start_server("--budget", "200MiB", "--body-timeout", "2s", "--min-rate", "4KiB")
    drip = await hold(ctx, "drip.bin", MiB)
    steady_data = payload(30 * 16 * KiB, seed=103)
    steady = await hold(ctx, "steady.bin", len(steady_data))
    started = time.monotonic()

    async def dripping() -> None:
        for chunk in chunks_of(payload(100 * 100, seed=104), 100):  # 20 s at most
            if not await drip.send(chunk):
                return
            await asyncio.sleep(0.2)

    async def sending() -> None:
        for chunk in chunks_of(steady_data, 16 * KiB):
            check(await steady.send(chunk), f"the steady upload was closed after {steady.sent} "
                                            f"bytes: {steady.close_code} {steady.close_reason!r}")
            await asyncio.sleep(0.2)
        await steady.finished(30)

    tasks = [asyncio.ensure_future(dripping()), asyncio.ensure_future(sending())]
    try:
        took = await expect_cut(drip, started, 1008, "below the minimum of 4 KiB/s", "dripping")
        check(took >= 1.5, f"the dripping upload was closed after {took:.2f} s, before the first "
                           f"2 s interval ended")
        check(drip.sent < 100 * 100, "the dripping upload sent all its frames without a close")
        await within(tasks[1], 40, "the steady upload to finish")
    finally:
        for task in tasks:
            task.cancel()
    steady.expect_done()
    await wait_log(ctx, "below the minimum", 1)
    await ctx.wait_store(["steady.bin"])
    await ctx.wait_idle()


# --- Clients that never answer the server's close --------------------------------------------

async def raw_ready(ctx: Ctx, name: str, size: int) -> RawWebSocket:
    """A RawWebSocket upload of `size` bytes that got "ready" (the caller aborts it)."""
    raw = RawWebSocket(ctx.server.port)
    status, headers = await raw.open()
    check(status == 101, f"'{name}': expected 101, got {status} {headers}")
    await raw.write(RawWebSocket.text({"name": name, "size": size}))
    got = await raw.read_frame(15)
    check(got is not None and got[0] == RawWebSocket.TEXT and b'"ready"' in got[1],
          f"'{name}': expected ready, got {got}")
    return raw


async def read_close_unanswered(raw: RawWebSocket, what: str) -> tuple[int, str]:
    """The server's next frame is a close; read it without answering: its code and reason."""
    got = await raw.read_frame(20)
    check(got is not None and got[0] == RawWebSocket.CLOSE and len(got[1]) >= 2,
          f"{what}: expected a close frame, got {got}")
    code = struct.unpack("!H", got[1][:2])[0]
    reason = got[1][2:].decode("utf-8", errors="replace")
    log(f"{what}: closed {code} {reason!r}, not answered")
    return code, reason


async def hostile_ws_close_unanswered(ctx: Ctx) -> None:
    """--body-timeout 1s --slots 1: an idle upload that never answers the server's close 1008
    has its slot back at once (a second upload is admitted while the first close is still
    unanswered), and its connection is dropped after the short close timeout (5 s), not
    Beast's 30 s handshake timeout."""
    ctx.start_server("--budget", "200MiB", "--slots", "1", "--body-timeout", "1s")
    raw = await raw_ready(ctx, "mute.bin", MiB)
    try:
        code, reason = await read_close_unanswered(raw, "idle, mute")
        closed = time.monotonic()
        check(code == 1008 and "no data for 1 s" in reason,
              f"expected close 1008 'no data for 1 s', got {code} {reason!r}")
        data = payload(10 * KiB, seed=131)
        await finish(await hold(ctx, "next.bin", len(data)), data)
        got = await raw.read_frame(20)
        took = time.monotonic() - closed
        log(f"the unanswered connection ended {took:.2f} s after the close, with {got}")
        check(got is None, f"expected the connection to end, got a frame {got}")
        check(took < 15, f"expected the connection dropped within the 5 s close timeout, it "
                         f"lasted {took:.1f} s")
    finally:
        raw.abort()
    await wait_log(ctx, "no data for 1 s", 1)
    await ctx.wait_store(["next.bin"])
    await ctx.wait_idle()


async def hostile_ws_shutdown_told(ctx: Ctx) -> None:
    """SIGTERM with --grace 1s and an upload whose client never answers the close: it is
    sent 1001 and the log's last line does not count it as "cut off without a word"."""
    server = ctx.start_server("--budget", "200MiB", "--grace", "1s")
    raw = await raw_ready(ctx, "stuck.bin", MiB)
    try:
        await raw.write(RawWebSocket.frame(RawWebSocket.BINARY, payload(KiB, seed=132)))
        m = await ctx.wait_metrics(lambda m: m["admit_slots_in_use"] == 1, "1 slot in use",
                                   timeout=5)
        log(f"before SIGTERM: {m.summary()}")
        server.signal(signal.SIGTERM)
        code, reason = await read_close_unanswered(raw, "cut by the shutdown")
        check(code == 1001, f"expected close 1001, got {code} {reason!r}")
        exit_code = await asyncio.get_running_loop().run_in_executor(None, server.wait_exit, 20.0)
    finally:
        raw.abort()
    check(exit_code == 0, f"expected exit code 0, got {describe_exit(exit_code)}")
    check(log_count(ctx, "stopped; 0 uploads cut off without a word") == 1,
          "expected 'stopped; 0 uploads cut off without a word' (the client was sent 1001)")
    entries = server.store_entries()
    check(entries == [], f"expected the partial file removed at exit, the store holds {entries}")


# --- The declared size is exact, however the frames arrive -------------------------------------

async def raw_upload(ctx: Ctx, name: str, size: int, writes: list[bytes]):
    """Upgrade, request {name, size}, "ready", then each of `writes` in a write of its own,
    0.2 s apart: returns the messages after "ready" and the close code and reason."""
    raw = RawWebSocket(ctx.server.port)
    try:
        status, headers = await raw.open()
        check(status == 101, f"'{name}': expected 101, got {status} {headers}")
        await raw.write(RawWebSocket.text({"name": name, "size": size}))
        got = await raw.read_frame(15)
        check(got is not None and got[0] == RawWebSocket.TEXT and b'"ready"' in got[1],
              f"'{name}': expected ready, got {got}")
        for data in writes:
            try:
                await raw.write(data)
            except (CaseFailure, ConnectionError):
                break  # closed already: what it answered is read below
            await asyncio.sleep(0.2)
        return await raw.read_until_close(15)
    finally:
        raw.abort()


async def hostile_ws_split_oversend(ctx: Ctx) -> None:
    """Declared 100: one 1000-byte frame split across two writes (after 100 payload bytes,
    after 50, inside its header), or 100 bytes in a frame followed by more in a continuation
    frame, is closed 1009 and stores nothing. Exactly 100 bytes split across writes, or ending
    with an empty final frame, is stored."""
    ctx.start_server("--budget", "200MiB")
    frame = RawWebSocket.frame
    BINARY, CONTINUATION = RawWebSocket.BINARY, RawWebSocket.CONTINUATION
    data = payload(1000, seed=107)
    big = frame(BINARY, data)  # an 8-byte header: 1000 needs the 16-bit length
    over = {
        "after 100 payload bytes": [big[:8 + 100], big[8 + 100:]],
        "after 50 payload bytes": [big[:8 + 50], big[8 + 50:]],
        "inside the frame header": [big[:3], big[3:]],
        "900 more in a continuation": [frame(BINARY, data[:100], fin=False),
                                       frame(CONTINUATION, data[100:])],
        "1 more in a continuation": [frame(BINARY, data[:100], fin=False),
                                     frame(CONTINUATION, data[100:101])],
    }
    for index, (what, writes) in enumerate(over.items()):
        messages, code, reason = await raw_upload(ctx, f"over{index}.bin", 100, writes)
        log(f"{what}: closed {code} {reason!r}, messages {messages}")
        ctx.soft(code == 1009 and "100" in reason and not messages,
                 f"{what}: expected close 1009 naming the declared 100 bytes and no done, got "
                 f"{code} {reason!r} after {messages}")
    exact = frame(BINARY, data[:100])  # a 6-byte header
    done = {
        "exact.bin": [exact[:6 + 40], exact[6 + 40:]],
        "empty_final.bin": [frame(BINARY, data[:100], fin=False), frame(CONTINUATION, b"")],
    }
    sha = hashlib.sha256(data[:100]).hexdigest()
    for name, writes in done.items():
        messages, code, reason = await raw_upload(ctx, name, 100, writes)
        log(f"{name}: closed {code} {reason!r}, messages {messages}")
        ctx.soft(code == 1000 and messages[-1:] == [{"status": "done", "bytes": 100, "sha256": sha}],
                 f"{name}: expected done (100 bytes, sha256 {sha}) and close 1000, got {code} "
                 f"{reason!r} after {messages}")
    ctx.raise_soft()
    await wait_log(ctx, "more than declared", len(over))
    await ctx.wait_store(sorted(done))
    for name in done:
        check((ctx.server.store / name).read_bytes() == data[:100], f"{name} differs")
    await ctx.wait_idle()
