"""Cases of uploads over WebSocket: the 2.5 GB upload admitted and refused,
a client that sends more than it declared, and malformed first messages."""

from __future__ import annotations

import asyncio
import json
import time

from e2e_context import Ctx, close_json, hold
from e2e_support import MiB, CaseFailure, GeneratedStream, check, chunks_of, log, payload, tiered

LARGE_SIZE = 2_530_644_380


async def large_ws_upload(ctx: Ctx) -> None:
    """The 2,530,644,380-byte upload over WebSocket under a 200 MiB budget:
    reserved 104,857,600 bytes, done with the right SHA-256, server peak RSS < 64 MiB."""
    server = ctx.start_server("--budget", "200MiB")
    stream = GeneratedStream(LARGE_SIZE)
    up = ctx.upload("large.bin", LARGE_SIZE)

    peak_sampled = 0

    async def sample_rss() -> None:
        nonlocal peak_sampled
        for _ in range(10_000):  # bounded: 2500 s at 0.25 s; cancelled when the upload ends
            peak_sampled = max(peak_sampled, server.proc_status("VmRSS") or 0)
            await asyncio.sleep(0.25)

    started = time.monotonic()
    ready = await up.start()
    check(ready is not None, f"expected ready, the server closed with {up.refused}")
    if not ctx.extra_args:
        check(ready.get("reserved_bytes") == tiered(LARGE_SIZE) == 104_857_600,
              f"expected reserved_bytes 104857600 (tiered: 5 % capped at 100 MiB), got {ready}")
    log(f"ready: {ready}")
    sampler = asyncio.ensure_future(sample_rss())
    try:
        for index, chunk in enumerate(stream):
            if not await up.send(chunk, timeout=60):
                await up.finished(30)
                raise CaseFailure(f"the server closed the connection after {up.sent} of {LARGE_SIZE} "
                                  f"bytes: {up.close_code} {up.close_reason!r}")
            if index % 500 == 499:
                elapsed = time.monotonic() - started
                log(f"  sent {up.sent} bytes in {elapsed:.1f} s; last ack {up.progress[-1:]}")
                server.check_alive()
        await up.finished(120)
    finally:
        sampler.cancel()
    elapsed = time.monotonic() - started
    up.expect_done()
    hwm = server.proc_status("VmHWM") or 0
    peak = max(hwm, peak_sampled)

    entries = server.store_entries()
    check(entries == ["large.bin"], f"expected the store to hold ['large.bin'], it holds {entries}")
    path = server.store / "large.bin"
    size = path.stat().st_size
    check(size == LARGE_SIZE, f"expected {path} to be {LARGE_SIZE} bytes, it is {size}")
    with open(path, "rb") as f:  # spot checks: first, a middle and the last (partial) block
        for index in (0, stream.count // 2, stream.count - 1):
            f.seek(index * stream.block)
            expected = stream.chunk(index)
            check(f.read(len(expected)) == expected, f"{path}: block {index} differs from what "
                                                     f"was sent")
    path.unlink()
    await ctx.wait_idle()

    mb_s = LARGE_SIZE / 1e6 / elapsed
    extra = f" [server args: {' '.join(ctx.extra_args)}]" if ctx.extra_args else ""
    log(f"large_ws_upload: {LARGE_SIZE} bytes in {elapsed:.1f} s ({mb_s:.1f} MB/s), "
        f"server peak RSS {peak / MiB:.1f} MiB{extra}")
    check(peak < 64 * MiB, f"expected the server's peak RSS below 64 MiB, VmHWM says "
                           f"{hwm / MiB:.1f} MiB (sampled VmRSS peak {peak_sampled / MiB:.1f} MiB)")


async def large_ws_flat10(ctx: Ctx) -> None:
    """The same upload under flat 10 %: close 1009 right after the header, its reason
    {"reason":"too_large","needed_bytes":253064438,"memory_budget":209715200}; counted
    as too_large; nothing held."""
    ctx.start_server("--budget", "200MiB", "--policy", "flat:10")
    up = ctx.upload("large.bin", LARGE_SIZE)
    started = time.monotonic()
    ready = await up.start(timeout=15)
    check(ready is None, f"expected close 1009 (too_large) after the header, got {ready}")
    code, reason = up.refused
    log(f"closed after {time.monotonic() - started:.2f} s with {code} {reason!r}")
    check(code == 1009, f"expected close code 1009 (too_large), got {code} {reason!r}")
    expected = {"reason": "too_large", "needed_bytes": 253064438, "memory_budget": 209715200}
    check(close_json(reason) == expected,
          f"expected the close reason {json.dumps(expected)} (no retry_after_ms: retrying cannot "
          f"help), got {reason!r}")
    m = await ctx.wait_idle()
    check(m.rejected("too_large") == 1,
          f"expected admit_rejected_total{{reason=\"too_large\"}} 1, got {m.summary()}")
    check(m["admit_admitted_total"] == 0, f"expected admit_admitted_total 0, got {m.summary()}")
    await ctx.wait_store([])


async def ws_oversend(ctx: Ctx) -> None:
    """Declare 1 MiB, send 3 MiB in 65,000-byte frames (so a frame crosses the declared
    size): closed 1009, no "done", no file, nothing held."""
    ctx.start_server("--budget", "200MiB")
    up = await hold(ctx, "over.bin", MiB)
    complete = await up.send_all(chunks_of(payload(3 * MiB, seed=19), 65_000))
    await up.finished(30)
    log(f"sent {up.sent} bytes (all 3 MiB: {complete}); closed {up.close_code} {up.close_reason!r}")
    check(up.done is None, f"expected no done after sending more than declared, got {up.done}")
    check(up.close_code == 1009, f"expected close 1009 once the total crossed 1048576, got "
                                 f"{up.close_code} {up.close_reason!r}")
    await ctx.wait_store([])
    await ctx.wait_idle()


async def ws_errors(ctx: Ctx) -> None:
    """A malformed first message (not JSON, no size, a negative size, a binary frame)
    is closed 1008; nothing admitted, nothing stored."""
    ctx.start_server("--budget", "200MiB")
    for what, header in (("not JSON", "hello"), ("no size", {"name": "x.bin"}),
                         ("negative size", {"name": "x.bin", "size": -1}),
                         ("a binary frame", b"\x00\x01\x02")):
        up = ctx.upload("x.bin", 0, header=header)
        ready = await up.start()
        ctx.soft(ready is None, f"{what}: expected close 1008, got {ready}")
        if ready is None:
            ctx.soft(up.refused[0] == 1008, f"{what}: expected close 1008, got {up.refused}")
            log(f"{what}: closed {up.refused}")
        await up.dispose()
    ctx.raise_soft()
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 0, f"expected nothing admitted, got {m.summary()}")
    await ctx.wait_store([])
