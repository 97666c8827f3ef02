"""Cases of uploads over HTTP with curl: multipart and raw bodies stored, uploads
too large for the budget refused before their body, and malformed requests."""

from __future__ import annotations

from pathlib import Path

from e2e_clients import CurlResult, raw_request
from e2e_context import Ctx, expect_no_body_sent, expect_rate_limit, expect_refusal
from e2e_metrics import GAUGES, REASONS, Metrics
from e2e_support import KiB, MiB, check, log, payload, tiered

BUDGET_200MIB = 200 * MiB


async def curl_multipart(ctx: Ctx) -> None:
    """curl -F file=@test_file.zip (5 MiB + 123 bytes, so Expect: 100-continue):
    100 then 201, JSON bytes and sha256 match, stored file byte-identical."""
    ctx.start_server("--budget", "200MiB")
    data = payload(5 * MiB + 123, seed=3)
    path = ctx.write_file("test_file.zip", data)
    r = await ctx.curl_form(path, "--expect100-timeout", "30")
    check(r.status == 201, f"expected 201, got {r.describe()}")
    check(100 in r.statuses(),
          f"expected a '100 Continue' before the 201 (curl sent Expect: 100-continue), "
          f"got {r.describe()}")
    ctx.expect_stored(r.json(), data, "test_file.zip")
    await ctx.wait_store(["test_file.zip"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 1, f"expected admit_admitted_total 1, got {m.summary()}")


async def curl_raw(ctx: Ctx) -> None:
    """curl --data-binary with ?name=: a 5 MiB + 123 byte body (with Expect) and a
    1000-byte one (without): 201 each, stored byte-identical."""
    ctx.start_server("--budget", "200MiB")
    big = payload(5 * MiB + 123, seed=4)
    r = await ctx.curl_raw(ctx.write_file("raw_big", big), "f.bin", "--expect100-timeout", "30")
    check(r.status == 201, f"expected 201, got {r.describe()}")
    check(100 in r.statuses(), f"expected a '100 Continue' before the 201, got {r.describe()}")
    ctx.expect_stored(r.json(), big, "f.bin")
    # An admitted upload's answer carries the RateLimit fields too: the whole pool
    # (16 slots, 200 MiB), all of it free again once this upload is over.
    fields = expect_rate_limit(r)
    check(fields == (16, BUDGET_200MIB, 16, BUDGET_200MIB),
          f"expected RateLimit-Policy q=16 / q={BUDGET_200MIB} and RateLimit r=16 / "
          f"r={BUDGET_200MIB} on the 201, got {r.describe()}")
    small = payload(1000, seed=5)
    r = await ctx.curl_raw(ctx.write_file("raw_small", small), "small.bin")
    check(r.status == 201, f"expected 201, got {r.describe()}")
    ctx.expect_stored(r.json(), small, "small.bin")
    await ctx.wait_store(["f.bin", "small.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 2, f"expected admit_admitted_total 2, got {m.summary()}")


async def curl_too_large(ctx: Ctx) -> None:
    """Under --budget 1MiB, an 8 MiB upload (needs 1677721 bytes): 413 with the JSON
    fields, refused before curl sent its body, quickly; raw and multipart."""
    ctx.start_server("--budget", "1MiB")
    size = 8 * MiB
    path = ctx.write_file("big.bin", payload(size, seed=6))

    def refused_quickly(r: CurlResult, what: str) -> None:
        expect_no_body_sent(r, size)
        check(r.info.get("time_total", 99) < 10, f"expected the 413 quickly, took {r.describe()}")
        log(f"{what}: 413 after {r.info.get('time_total')} s, "
            f"{r.info.get('size_upload')} bytes uploaded")

    r = await ctx.curl_raw(path, "big.bin", "--expect100-timeout", "30")
    body = expect_refusal(r, 413, "too_large")
    expected = {"declared_size": size, "needed_bytes": tiered(size), "memory_budget": MiB,
                "available_bytes": MiB}
    for key, value in expected.items():
        check(body.get(key) == value, f"expected {key}={value}, got {body}")
    refused_quickly(r, "raw")

    r = await ctx.curl_form(path, "--expect100-timeout", "30")
    body = expect_refusal(r, 413, "too_large")
    declared = body.get("declared_size")
    check(isinstance(declared, int) and size < declared < size + 4096,
          f"expected declared_size = the multipart Content-Length (a little over {size}), got {body}")
    check(body.get("needed_bytes") == tiered(declared) and body.get("memory_budget") == MiB,
          f"expected needed_bytes={tiered(declared)} (20 % of {declared}) and memory_budget={MiB}, "
          f"got {body}")
    refused_quickly(r, "multipart")

    m = await ctx.wait_idle()
    check(m.rejected("too_large") == 2 and m["admit_admitted_total"] == 0,
          f"expected too_large 2 and admitted 0, got {m.summary()}")
    await ctx.wait_store([])


async def http_errors(ctx: Ctx) -> None:
    """411 chunked / no length, 400 bad multipart / bad Content-Length, 413 over
    --max-body (before admission), 404, 405, /healthz, and the /metrics format;
    nothing stored."""
    ctx.start_server("--budget", "200MiB", "--slots", "8", "--max-body", "1MiB")
    small = ctx.write_file("small.bin", payload(1000, seed=20))

    async def post(path: Path, content_type: str) -> CurlResult:
        return await ctx.curl("--data-binary", f"@{path}", "-H", f"Content-Type: {content_type}",
                              ctx.url("/api/v1/upload"))

    r = await ctx.curl_raw(small, "chunked.bin", "-H", "Transfer-Encoding: chunked")
    ctx.soft(r.status == 411, f"chunked upload: expected 411, got {r.describe()}")

    r = await ctx.curl("-X", "POST", "-H", "Content-Type: application/octet-stream",
                       ctx.url("/api/v1/upload?name=nolength.bin"))
    ctx.soft(r.status == 411, f"POST with neither Content-Length nor Transfer-Encoding: expected "
                              f"411, got {r.describe()}")

    boundary = "e2eBoundaryQ3k9"
    form = f"multipart/form-data; boundary={boundary}"
    unclosed = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"unclosed.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + payload(100 * KiB, seed=21) + b"\r\n"
    r = await post(ctx.write_file("unclosed.form", unclosed), form)
    ctx.soft(r.status == 400, f"multipart without its closing boundary: expected 400, "
                              f"got {r.describe()}")

    garbage = payload(50 * KiB, seed=22)
    r = await post(ctx.write_file("garbage.form", garbage), form)
    ctx.soft(r.status == 400, f"multipart body without any boundary: expected 400, "
                              f"got {r.describe()}")

    r = await post(small, "multipart/form-data")
    ctx.soft(r.status == 400, f"multipart Content-Type without a boundary: expected 400, "
                              f"got {r.describe()}")

    status, headers, body = await raw_request(
        ctx.server.port, b"POST /api/v1/upload?name=bad.bin HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: abc\r\n\r\n")
    ctx.soft(status == 400, f"Content-Length: abc: expected 400, got {status} {headers} "
                            f"{body[:200]!r}")

    r = await ctx.curl_raw(ctx.write_file("over_max.bin", payload(MiB + 1, seed=23)), "over.bin",
                           "--expect100-timeout", "30")
    ctx.soft(r.status == 413 and r.json().get("reason") == "max_body"
             and r.json().get("max_body") == MiB and r.json().get("declared_size") == MiB + 1,
             f"an upload over --max-body 1MiB: expected 413 {{reason: max_body, max_body: {MiB}, "
             f"declared_size: {MiB + 1}}}, got {r.describe()}")

    r = await ctx.curl(ctx.url("/healthz"))
    ctx.soft(r.status == 200 and r.body.strip() == b"ok",
             f"GET /healthz: expected 200 'ok', got {r.describe()}")

    r = await ctx.curl(ctx.url("/"))
    ctx.soft(r.status == 200 and r.headers.get("content-type") == "text/html; charset=utf-8"
             and b'<input type="file" id="file">' in r.body,
             f"GET /: expected 200 text/html, the upload page, got {r.describe()}")
    r = await ctx.curl(ctx.url("/nope"))
    ctx.soft(r.status == 404, f"GET /nope: expected 404, got {r.describe()}")
    r = await ctx.curl(ctx.url("/api/v1/upload"))
    ctx.soft(r.status == 405, f"GET /api/v1/upload: expected 405, got {r.describe()}")

    r = await ctx.curl(ctx.url("/metrics"))
    ctx.soft(r.status == 200, f"GET /metrics: expected 200, got {r.describe()}")
    content_type = r.headers.get("content-type", "")
    ctx.soft("text/plain" in content_type and "version=0.0.4" in content_type,
             f"/metrics: expected Content-Type text/plain; version=0.0.4, got {content_type!r}")
    m = Metrics(r.body.decode("utf-8", errors="replace"))
    for name in GAUGES:
        ctx.soft(m.get(name) is not None, f"/metrics: no '{name}'")
    for reason in REASONS:
        ctx.soft(m.get("admit_rejected_total", reason=reason) is not None,
                 f"/metrics: no 'admit_rejected_total{{reason=\"{reason}\"}}'")
    ctx.soft(not m.unparsed, f"/metrics: unparsable lines {m.unparsed[:5]}")
    # A budget given as a size: no memory limit or usage is known, so none is exported.
    ctx.soft(m.get("admit_memory_pressure") == 0
             and m.get("admit_memory_limit_bytes") is None
             and m.get("admit_memory_usage_bytes") is None,
             f"/metrics with --budget 200MiB: expected admit_memory_pressure 0 and no "
             f"admit_memory_limit_bytes or admit_memory_usage_bytes, got:\n{m.text}")
    ctx.soft(m.get("admit_bytes_budget") == BUDGET_200MIB and m.get("admit_slots") == 8,
             f"/metrics: expected admit_bytes_budget {BUDGET_200MIB} and admit_slots 8, "
             f"got {m.summary()}")
    # Only the two well-formed requests with a bad multipart body reach admission
    # (the body is parsed after it); --max-body refuses before asking the pool.
    ctx.soft(m.get("admit_admitted_total") == 2
             and m.get("admit_rejected_total", reason="too_large") == 0,
             f"/metrics: expected admitted 2 (the bad multipart bodies) and no too_large, "
             f"got {m.summary()}")
    # The server's admission coroutine keeps its co_await out of a conditional
    # expression (GCC 12 would give the reservation back twice): none counted.
    ctx.soft(m.get("admit_double_releases_total") == 0,
             f"/metrics: expected no double releases, got {m.summary()}")
    ctx.raise_soft()
    await ctx.wait_store([])
    await ctx.wait_idle()
