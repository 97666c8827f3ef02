"""Cases of admission under contention: uploads refused when every slot is held,
admitted when room frees up within --wait, and refused when the wait runs out."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Callable, Optional

from e2e_clients import WsUpload
from e2e_context import Ctx, close_json, expect_no_body_sent, expect_refusal, finish, hold
from e2e_metrics import REASONS
from e2e_support import KiB, MiB, check, log, payload, tiered, within


async def overload(ctx: Ctx) -> None:
    """--slots 2: two held WebSocket uploads; a third is closed 1013 with
    {"reason":"no_slot","retry_after_ms":...}, curl gets 503 no_slot with Retry-After
    and the RateLimit fields (with and without Expect); then both held ones finish."""
    ctx.start_server("--budget", "200MiB", "--slots", "2")
    data_a, data_b = payload(2 * MiB + 7, seed=7), payload(3 * MiB + 11, seed=8)
    a = await hold(ctx, "held_a.bin", len(data_a))
    b = await hold(ctx, "held_b.bin", len(data_b))
    m = await ctx.metrics()
    check(m.in_use() == (tiered(len(data_a)) + tiered(len(data_b)), 2),
          f"expected {tiered(len(data_a)) + tiered(len(data_b))} bytes and 2 slots in use, "
          f"got {m.summary()}")

    c = ctx.upload("third.bin", MiB)
    check(await c.start() is None, "expected the third WebSocket upload to be refused (1013), "
                                   "it got ready")
    check(c.refused[0] == 1013, f"expected close 1013 for the third upload, got {c.refused}")
    close = close_json(c.refused[1])
    # No upload has ended yet: the estimator has no rate, and says its no-rate hint
    # (3 s), jittered by +-20 %.
    check(close.get("reason") == "no_slot" and close.get("slots") == 2
          and close.get("slots_in_use") == 2 and 2400 <= close.get("retry_after_ms", 0) <= 3600,
          f"expected {{\"reason\":\"no_slot\",\"retry_after_ms\":2400..3600,\"slots_in_use\":2,"
          f"\"slots\":2}}, got {c.refused}")
    log(f"third WebSocket upload: closed {c.refused}")

    size = 3 * MiB
    r = await ctx.curl_raw(ctx.write_file("over.bin", payload(size, seed=9)), "over.bin",
                           "--expect100-timeout", "30")
    body = expect_refusal(r, 503, "no_slot")
    check(body.get("declared_size") == size, f"expected declared_size {size}, got {body}")
    expect_no_body_sent(r, size)
    log(f"curl with Expect: 503, Retry-After {r.headers.get('retry-after')}, {body}")

    # Without Expect (a body under 1 MiB, as a browser's fetch sends it): the refusal
    # must still reach the client, not a connection reset.
    r = await ctx.curl_raw(ctx.write_file("small_over.bin", payload(100 * KiB, seed=10)),
                           "small_over.bin")
    check(r.rc == 0, f"expected curl to receive the 503 of a refused 100 KiB body sent without "
                     f"Expect, got {r.describe()}")
    expect_refusal(r, 503, "no_slot")

    m = await ctx.metrics()
    check(m.rejected("no_slot") == 3 and m["admit_slots_in_use"] == 2,
          f"expected no_slot 3 and 2 slots in use, got {m.summary()}")

    await asyncio.gather(finish(a, data_a), finish(b, data_b))
    for name, data in (("held_a.bin", data_a), ("held_b.bin", data_b)):
        ctx.expect_stored({"name": name, "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}, data, name)
    await ctx.wait_store(["held_a.bin", "held_b.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 2, f"expected admit_admitted_total 2, got {m.summary()}")


async def admitted_after(ctx: Ctx, holder: WsUpload, data: bytes, waiter: asyncio.Future,
                         what: str, early: Optional[Callable[[], str]] = None):
    """`waiter` (a started upload) queues behind `holder`: once /metrics shows one
    waiter (and, with `early`, `waiter` has no answer yet; else fail with early()),
    `holder` sends `data` and finishes, and `waiter` must get its answer within 30 s:
    returns it. `waiter` is cancelled if this fails first."""
    try:
        await ctx.wait_metrics(lambda m: m["admit_waiters"] == 1, "admit_waiters 1", timeout=3)
        if early is not None:
            check(not waiter.done(), early())
        await asyncio.sleep(0.5)
        await finish(holder, data)
        return await within(asyncio.shield(waiter), 30, what)
    finally:
        if not waiter.done():
            waiter.cancel()


async def wait_for_room(ctx: Ctx) -> None:
    """--slots 1 --wait 5s: a second upload (curl, then WebSocket) waits while the first
    is held and is admitted when it finishes, instead of refused."""
    ctx.start_server("--budget", "200MiB", "--slots", "1", "--wait", "5s")

    # Round 1: a curl upload waits behind a held WebSocket upload.
    data_a = payload(2 * MiB, seed=11)
    a = await hold(ctx, "a.bin", len(data_a))
    data_b = payload(3 * MiB + 5, seed=12)
    path_b = ctx.write_file("b.bin", data_b)
    curl_b = asyncio.ensure_future(ctx.curl_raw(path_b, "b.bin", "--expect100-timeout", "30"))
    r = await admitted_after(ctx, a, data_a, curl_b, "the waiting curl upload")
    check(r.status == 201, f"expected the waiting curl upload to be admitted (201), "
                           f"got {r.describe()}")
    ctx.expect_stored(r.json(), data_b, "b.bin")

    # Round 2: a WebSocket upload waits behind a held WebSocket upload.
    data_c = payload(MiB + 3, seed=13)
    c = await hold(ctx, "c.bin", len(data_c))
    data_d = payload(2 * MiB + 9, seed=14)
    d = ctx.upload("d.bin", len(data_d))
    await d.connect()
    await d.send_header()
    first = asyncio.ensure_future(d.first_answer(30))
    ready = await admitted_after(
        ctx, c, data_c, first, "'d.bin' to be admitted",
        early=lambda: f"expected 'd.bin' to wait, it got an answer: {d.ready or d.refused}")
    check(ready is not None, f"expected the waiting WebSocket upload to get ready, "
                             f"it was closed with {d.refused}")
    await finish(d, data_d)

    await ctx.wait_store(["a.bin", "b.bin", "c.bin", "d.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 4 and all(m.rejected(r) == 0 for r in REASONS),
          f"expected 4 admitted and nothing refused, got {m.summary()}")
    # Admitted through async_acquire_for in a coroutine: each given back once.
    check(m["admit_double_releases_total"] == 0,
          f"expected no double releases, got {m.summary()}")


async def wait_lanes(ctx: Ctx) -> None:
    """--fairness lanes: while an 8 MiB WebSocket upload waits for room behind a held
    4 MiB one, a 1 MiB curl upload that fits passes it (201 at once, where FIFO makes it
    wait); once the waiting upload has been first for --max-head-wait, a 1 MiB upload
    waits behind it instead, and both are admitted when the holder finishes."""
    ctx.start_server("--budget", "10MiB", "--slots", "4", "--policy", "flat:100",
                     "--wait", "20s", "--fairness", "lanes", "--max-head-wait", "2s")
    data_a = payload(4 * MiB, seed=31)
    a = await hold(ctx, "a.bin", len(data_a))
    data_b = payload(8 * MiB, seed=32)
    b = ctx.upload("b.bin", len(data_b))
    await b.connect()
    await b.send_header()
    b_answer = asyncio.ensure_future(b.first_answer(30))
    data_d = payload(MiB, seed=34)
    d = ctx.upload("d.bin", len(data_d))
    try:
        await ctx.wait_metrics(lambda m: m["admit_waiters"] == 1, "admit_waiters 1", timeout=3)
        queued_at = time.monotonic()

        data_c = payload(MiB, seed=33)
        r = await ctx.curl_raw(ctx.write_file("c.bin", data_c), "c.bin",
                               "--expect100-timeout", "30")
        passed_after = time.monotonic() - queued_at
        check(r.status == 201, f"expected the 1 MiB upload to pass the waiting one (201), "
                               f"got {r.describe()}")
        ctx.expect_stored(r.json(), data_c, "c.bin")
        check(not b_answer.done(), f"expected 'b.bin' to keep waiting, it got an answer: "
                                   f"{b.ready or b.refused}")
        log(f"1 MiB upload passed the waiting 8 MiB one after {passed_after:.2f} s")

        # The window closes 2 s after 'b.bin' became first: then nobody passes it.
        await asyncio.sleep(max(0.0, 2.3 - (time.monotonic() - queued_at)))
        await d.connect()
        await d.send_header()
        d_answer = asyncio.ensure_future(d.first_answer(30))
        await ctx.wait_metrics(lambda m: m["admit_waiters"] == 2, "admit_waiters 2", timeout=3)
        await asyncio.sleep(0.3)
        check(not d_answer.done(), f"expected 'd.bin' to wait behind 'b.bin' once the window "
                                   f"closed, it got an answer: {d.ready or d.refused}")

        await finish(a, data_a)
        for up, answer in ((b, b_answer), (d, d_answer)):
            ready = await within(asyncio.shield(answer), 30, f"'{up.name}' to be admitted")
            check(ready is not None, f"expected '{up.name}' to get ready, it was closed with "
                                     f"{up.refused}")
        await asyncio.gather(finish(b, data_b), finish(d, data_d))
    finally:
        if not b_answer.done():
            b_answer.cancel()
    await ctx.wait_store(["a.bin", "b.bin", "c.bin", "d.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 4 and all(m.rejected(r) == 0 for r in REASONS),
          f"expected 4 admitted and nothing refused, got {m.summary()}")


async def wait_timeout(ctx: Ctx) -> None:
    """--slots 1 --wait 300ms with a holder that does not finish: curl gets 503 timeout
    (with Retry-After) and a WebSocket upload is closed 1013, each after >= ~300 ms."""
    ctx.start_server("--budget", "200MiB", "--slots", "1", "--wait", "300ms")
    data_a = payload(MiB, seed=15)
    a = await hold(ctx, "a.bin", len(data_a))

    size = 2 * MiB
    r = await ctx.curl_raw(ctx.write_file("late.bin", payload(size, seed=16)), "late.bin",
                           "--expect100-timeout", "30")
    expect_refusal(r, 503, "timeout")
    expect_no_body_sent(r, size)
    check(r.info.get("time_total", 0) >= 0.25,
          f"expected the timeout refusal after waiting ~300 ms, it came after "
          f"{r.info.get('time_total')} s")
    log(f"curl: 503 timeout after {r.info.get('time_total')} s")

    w = ctx.upload("late_ws.bin", size)
    started = time.monotonic()
    check(await w.start() is None, "expected the waiting WebSocket upload to be refused, it got ready")
    waited = time.monotonic() - started
    check(w.refused[0] == 1013, f"expected close 1013 (timeout), got {w.refused}")
    check(waited >= 0.25, f"expected the WebSocket refusal after waiting ~300 ms, got it after "
                          f"{waited:.3f} s")
    log(f"WebSocket: closed {w.refused} after {waited:.2f} s")

    m = await ctx.metrics()
    check(m.rejected("timeout") == 2 and m["admit_waiters"] == 0 and m["admit_slots_in_use"] == 1,
          f"expected timeout 2, no waiters, 1 slot in use, got {m.summary()}")
    await finish(a, data_a)
    await ctx.wait_store(["a.bin"])
    await ctx.wait_idle()


async def wait_abandoned(ctx: Ctx) -> None:
    """--slots 1 --wait 20s: a WebSocket upload queued behind a held one vanishes; it
    leaves the queue at once (cancelled), not when the 20 s wait runs out."""
    ctx.start_server("--budget", "200MiB", "--slots", "1", "--wait", "20s")
    data_a = payload(MiB, seed=26)
    a = await hold(ctx, "a.bin", len(data_a))

    w = ctx.upload("gone.bin", MiB)
    await w.connect()
    await w.send_header()
    await ctx.wait_metrics(lambda m: m["admit_waiters"] == 1, "admit_waiters 1", timeout=5)
    left = time.monotonic()
    w.abort(rst=False)
    m = await ctx.wait_metrics(lambda m: m["admit_waiters"] == 0, "admit_waiters 0", timeout=10)
    took = time.monotonic() - left
    check(took < 10, f"expected the vanished waiter out of the queue well before --wait (20 s), "
                     f"took {took:.1f} s")
    check(m.rejected("cancelled") == 1 and m["admit_admitted_total"] == 1,
          f"expected cancelled 1 and only the holder admitted, got {m.summary()}")
    log(f"the vanished waiter left the queue {took:.2f} s after its client did")

    await finish(a, data_a)
    await ctx.wait_store(["a.bin"])
    await ctx.wait_idle()


async def retry_after_pace(ctx: Ctx) -> None:
    """--slots 1, one upload ending every `pace` s while a curl probe is refused no_slot
    each round: the first probe (no upload ended yet) gets the no-rate hint, 3 s +-20 %;
    the later ones come from the estimator's smoothed rate, within [1 s, 2 x pace]
    +-20 % (the first release seeds the rate high, so they start at the 1 s floor);
    each Retry-After is its body's retry_after_ms rounded up (expect_refusal). The
    figures are logged: the README quotes them."""
    pace, rounds = 1.5, 6
    ctx.start_server("--budget", "200MiB", "--slots", "1")
    probe = ctx.write_file("probe.bin", payload(64 * KiB, seed=27))
    seen: list[tuple[int, int]] = []  # (retry_after_ms, Retry-After) per round
    for index in range(rounds):
        data = payload(MiB, seed=270 + index)
        up = await hold(ctx, f"paced-{index}.bin", len(data))
        r = await ctx.curl_raw(probe, "probe.bin")
        body = expect_refusal(r, 503, "no_slot")
        seen.append((body["retry_after_ms"], int(r.headers["retry-after"])))
        await asyncio.sleep(pace)
        await finish(up, data)
    m = await ctx.metrics()
    rate = m["upload_server_release_rate"]
    log(f"retry_after_pace: one upload ended every {pace} s; retry_after_ms / Retry-After per "
        f"round: {seen}; release rate on /metrics {rate}/s")
    check(2400 <= seen[0][0] <= 3600, f"expected the first advice 2400..3600 ms (the no-rate "
                                      f"hint), got {seen}")
    for ms, _ in seen[1:]:
        check(800 <= ms <= 1200 * 2 * pace, f"expected each later advice within 800.."
                                            f"{1200 * 2 * pace:g} ms, got {seen}")
    check(0 < rate, f"expected a release rate on /metrics, got {m.summary()}")
    await ctx.wait_idle()
