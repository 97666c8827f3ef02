"""Cases of tenants: --partition (a tenant held to its ceiling while others are
admitted), the tenant from a header or ?tenant=, and --bypass-token."""

from __future__ import annotations

import asyncio
import hashlib

from e2e_context import Ctx, close_json, expect_refusal, finish
from e2e_support import MiB, check, log, payload, within


async def partitions(ctx: Ctx) -> None:
    """--partition batch:0%:40% of a 10 MiB pool: a held 3 MiB WebSocket upload of
    tenant batch (?tenant=batch) leaves batch 1 MiB; a 2 MiB batch upload (curl with
    X-Tenant: batch, then a WebSocket) is refused 503 / 1013 with "limit":"partition";
    2 MiB uploads with no tenant and an unknown one go to default and are admitted;
    /metrics shows the partitions' figures."""
    ctx.start_server("--budget", "10MiB", "--slots", "8", "--policy", "flat:100",
                     "--partition", "batch:0%:40%")
    data_a = payload(3 * MiB, seed=41)
    a = ctx.upload("a.bin", len(data_a))
    a.path = "/ws/upload?tenant=batch"
    check(await a.start() is not None, f"expected batch's 3 MiB upload to get ready, the "
                                       f"server closed with {a.refused}")
    m = await ctx.metrics()
    check(m.get("admit_partition_bytes_in_use", partition="batch") == 3 * MiB
          and m.get("admit_partition_bytes_ceiling", partition="batch") == 4 * MiB
          and m.get("admit_partition_bytes_ceiling", partition="default") == 10 * MiB,
          f"expected batch to hold 3 MiB of its 4 MiB ceiling, default 10 MiB, got:\n{m.text}")

    size = 2 * MiB
    path = ctx.write_file("b.bin", payload(size, seed=42))
    r = await ctx.curl_raw(path, "b.bin", "-H", "X-Tenant: batch", "--expect100-timeout", "30")
    body = expect_refusal(r, 503, "no_memory")
    check(body.get("limit") == "partition" and body.get("memory_budget") == 4 * MiB
          and body.get("available_bytes") == MiB,
          f"expected the partition's refusal (limit partition, its 4 MiB ceiling, 1 MiB "
          f"left), got {r.describe()}")
    log(f"batch over its ceiling: 503 {body}")

    w = ctx.upload("w.bin", size)
    w.path = "/ws/upload?tenant=batch"
    check(await w.start() is None, "expected batch's WebSocket upload over its ceiling to be "
                                   "refused, it got ready")
    close = close_json(w.refused[1])
    check(w.refused[0] == 1013 and close.get("reason") == "no_memory"
          and close.get("limit") == "partition",
          f"expected close 1013 no_memory with limit partition, got {w.refused}")

    # The same size without a tenant, and with one no partition is named: default.
    stored = []
    for name, extra in (("c.bin", ()), ("d.bin", ("-H", "X-Tenant: nobody"))):
        data = payload(size, seed=len(stored) + 43)
        r = await ctx.curl_raw(ctx.write_file(name, data), name, *extra, "--expect100-timeout",
                               "30")
        check(r.status == 201, f"expected '{name}' in default to be admitted (201), got "
                               f"{r.describe()}")
        ctx.expect_stored(r.json(), data, name)
        stored.append(name)

    m = await ctx.metrics()
    check(m.get("admit_partition_rejected_total", partition="batch", reason="no_memory") == 2
          and m.get("admit_partition_admitted_total", partition="batch") == 1
          and m.get("admit_partition_admitted_total", partition="default") == 2
          and m.get("admit_partition_slots_in_use", partition="batch") == 1,
          f"expected batch: 1 admitted, 2 refused no_memory, 1 slot; default: 2 admitted; "
          f"got:\n{m.text}")
    await finish(a, data_a)
    ctx.expect_stored({"name": "a.bin", "bytes": len(data_a),
                       "sha256": hashlib.sha256(data_a).hexdigest()}, data_a, "a.bin")
    await ctx.wait_store(["a.bin", *stored])
    m = await ctx.wait_idle()
    check(m.get("admit_partition_bytes_in_use", partition="batch") == 0,
          f"expected batch to hold nothing at the end, got:\n{m.text}")
    log_text = ctx.server.log_path.read_text("utf-8", errors="replace")
    check("partition=batch" in log_text and "partition=default" in log_text,
          "expected the log lines to name the partitions")


async def bypass(ctx: Ctx) -> None:
    """--bypass-token: with the only slot held, a curl upload without the token or with
    a wrong one is refused 503 no_slot; with X-Admit-Bypass: TOKEN it skips admission
    (201), counted in admit_bypassed_total."""
    token = "e2e-bypass-0123456789"
    ctx.start_server("--budget", "10MiB", "--slots", "1", "--policy", "flat:100",
                     "--bypass-token", token)
    data_a = payload(MiB, seed=51)
    a = ctx.upload("a.bin", len(data_a))
    check(await a.start() is not None, f"expected the holder to get ready, got {a.refused}")
    size = MiB
    for name, extra in (("none.bin", ()), ("wrong.bin", ("-H", "X-Admit-Bypass: not-the-token"))):
        r = await ctx.curl_raw(ctx.write_file(name, payload(size, seed=52)), name, *extra,
                               "--expect100-timeout", "30")
        expect_refusal(r, 503, "no_slot")
    data = payload(size, seed=53)
    r = await ctx.curl_raw(ctx.write_file("probe.bin", data), "probe.bin", "-H",
                           f"X-Admit-Bypass: {token}", "--expect100-timeout", "30")
    check(r.status == 201, f"expected the bypassing upload to be stored (201), got "
                           f"{r.describe()}")
    ctx.expect_stored(r.json(), data, "probe.bin")
    m = await ctx.metrics()
    check(m["admit_bypassed_total"] == 1 and m.rejected("no_slot") == 2
          and m["admit_admitted_total"] == 1,
          f"expected 1 bypassed, 2 refused no_slot, 1 admitted, got {m.summary()}")
    await finish(a, data_a)
    await ctx.wait_store(["a.bin", "probe.bin"])
    await ctx.wait_idle()


async def partition_wait(ctx: Ctx) -> None:
    """--wait 10s with --partition batch:0%:40%: a batch WebSocket upload over what
    batch has left waits (admit_partition_waiters 1) and leaves the queue at once
    when its client goes; another is admitted when the holder finishes."""
    ctx.start_server("--budget", "10MiB", "--slots", "8", "--policy", "flat:100",
                     "--wait", "10s", "--partition", "batch:0%:40%")
    data_a = payload(3 * MiB, seed=61)
    a = ctx.upload("a.bin", len(data_a))
    a.path = "/ws/upload?tenant=batch"
    check(await a.start() is not None, f"expected the holder to get ready, got {a.refused}")

    def waiting(n: int):
        return lambda m: m.get("admit_partition_waiters", partition="batch") == n

    # A waiter whose client leaves: its place in the queue goes with it (cancelled).
    gone = ctx.upload("gone.bin", 2 * MiB)
    gone.path = "/ws/upload?tenant=batch"
    await gone.connect()
    await gone.send_header()
    await ctx.wait_metrics(waiting(1), "admit_partition_waiters{partition=\"batch\"} 1", 3)
    await gone.ws.close()
    await ctx.wait_metrics(waiting(0), "admit_partition_waiters{partition=\"batch\"} 0", 3)

    data_b = payload(2 * MiB, seed=62)
    b = ctx.upload("b.bin", len(data_b))
    b.path = "/ws/upload?tenant=batch"
    await b.connect()
    await b.send_header()
    answer = asyncio.ensure_future(b.first_answer(30))
    try:
        await ctx.wait_metrics(waiting(1), "admit_partition_waiters{partition=\"batch\"} 1", 3)
        check(not answer.done(), f"expected 'b.bin' to wait, it got {b.ready or b.refused}")
        await finish(a, data_a)
        ready = await within(asyncio.shield(answer), 30, "'b.bin' to be admitted")
        check(ready is not None, f"expected 'b.bin' to get ready, it was closed {b.refused}")
    finally:
        if not answer.done():
            answer.cancel()
    await finish(b, data_b)
    await ctx.wait_store(["a.bin", "b.bin"])
    m = await ctx.wait_idle()
    check(m.get("admit_partition_admitted_total", partition="batch") == 2
          and m["admit_double_releases_total"] == 0,
          f"expected batch to have admitted 2, no double release, got:\n{m.text}")
