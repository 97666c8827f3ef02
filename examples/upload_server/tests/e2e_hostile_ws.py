"""Cases of hostile and broken WebSocket clients: uploads that send no data after "ready"
(idle, pinging, stalled, dripping), declared sizes over --max-body, connections that send
no upload request, data past the declared size inside one frame, data before "ready" while
queued, and an upload request sent in the same write as the upgrade.

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
from e2e_metrics import REASONS
from e2e_server import describe_exit
from e2e_support import GiB, KiB, MiB, CaseFailure, check, chunks_of, log, payload, within


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
    await wait_log(ctx, "max_body", 4)
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
