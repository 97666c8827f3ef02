#!/usr/bin/python3
"""End-to-end tests of admit_upload_server, driven by curl and Python's websockets.

    /usr/bin/python3 e2e.py --server PATH --work-dir DIR --case NAME [--server-args "..."]
    /usr/bin/python3 e2e.py --list

One case per invocation: it starts its own server (stdout and stderr in
DIR/server.log, files in DIR/store), runs, and stops the server (SIGTERM, then
SIGKILL) even when it fails. Exit 0 on pass; otherwise 1 with what was expected,
what was seen, and the last 30 lines of the server's log. Every wait is bounded;
a case gives up after its own time limit (90 s; seed_ws_upload 540 s).

Needs Debian's /usr/bin/python3 with python3-websockets (10.4, asyncio API) and curl.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Awaitable, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import websockets.exceptions  # noqa: E402

from e2e_support import (  # noqa: E402
    GAUGES, KiB, MiB, REASONS, CaseFailure, Curl, CurlResult, GeneratedStream, Metrics, Server,
    WsUpload, check, chunks_of, describe_exit, log, open_raw, parse_header_blocks, payload,
    read_http_response,
    raw_request, rst_on_close, tiered, within)

SEED_SIZE = 2_530_644_380
BUDGET_200MIB = 200 * MiB


# --- The context a case runs in ----------------------------------------------------------

class Ctx:
    def __init__(self, binary: str, work_dir: Path, extra_args: list[str]):
        self.binary = binary
        self.work_dir = work_dir
        self.extra_args = extra_args
        self.servers: list[Server] = []
        self.uploads: list[WsUpload] = []
        self.curl = Curl(work_dir)
        self.soft_failures: list[str] = []

    @property
    def server(self) -> Server:
        check(bool(self.servers), "no server started")
        return self.servers[-1]

    def start_server(self, *args: str) -> Server:
        name = "server.log" if not self.servers else f"server{len(self.servers) + 1}.log"
        server = Server(self.binary, self.work_dir, [*args, *self.extra_args], name)
        self.servers.append(server)
        server.start()
        return server

    def upload(self, name: str, size: int, header=None) -> WsUpload:
        up = WsUpload(self.server.ws_url, name, size, header)
        self.uploads.append(up)
        return up

    def soft(self, condition: bool, message: str) -> None:
        """A check that does not stop the case: every soft failure is reported at the end."""
        if not condition:
            log(f"  CHECK FAILED: {message}")
            self.soft_failures.append(message)

    def raise_soft(self) -> None:
        if self.soft_failures:
            raise CaseFailure(f"{len(self.soft_failures)} check(s) failed:\n  - "
                              + "\n  - ".join(self.soft_failures))

    async def dispose_clients(self) -> None:
        for up in self.uploads:
            await up.dispose()

    # HTTP helpers
    def url(self, path: str) -> str:
        return self.server.url + path

    async def metrics(self) -> Metrics:
        r = await self.curl(self.url("/metrics"), timeout=10)
        check(r.status == 200, f"GET /metrics: expected 200, got {r.describe()}")
        return Metrics(r.body.decode("utf-8", errors="replace"))

    async def wait_metrics(self, predicate: Callable[[Metrics], bool], what: str,
                           timeout: float = 10.0) -> Metrics:
        deadline = time.monotonic() + timeout
        while True:
            self.server.check_alive()
            m = await self.metrics()
            if predicate(m):
                return m
            if time.monotonic() > deadline:
                raise CaseFailure(f"/metrics did not show {what} within {timeout:g} s; "
                                  f"last: {m.summary()}")
            await asyncio.sleep(0.1)

    async def wait_idle(self, timeout: float = 10.0) -> Metrics:
        return await self.wait_metrics(
            lambda m: m.in_use() == (0, 0) and m["admit_waiters"] == 0,
            "admit_bytes_in_use 0, admit_slots_in_use 0 and admit_waiters 0", timeout)

    async def wait_store(self, expected: list[str], timeout: float = 10.0) -> None:
        """The store directory holds exactly `expected` (no .part file either)."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.server.store_entries()
            if entries == sorted(expected):
                return
            if time.monotonic() > deadline:
                raise CaseFailure(f"expected the store directory to hold exactly {sorted(expected)}"
                                  f" within {timeout:g} s, it holds {entries[:20]}")
            await asyncio.sleep(0.1)

    def expect_stored(self, answer: dict, data: bytes, name: str) -> None:
        """A 201 JSON answer matches `data`, and the stored file is byte-identical."""
        sha = hashlib.sha256(data).hexdigest()
        check(answer.get("name") == name,
              f"expected the stored name '{name}', the answer says {answer}")
        check(answer.get("bytes") == len(data),
              f"expected bytes={len(data)}, the answer says {answer}")
        check(str(answer.get("sha256", "")).lower() == sha,
              f"expected sha256={sha}, the answer says {answer}")
        path = self.server.store / name
        check(path.is_file(), f"no file {path} after a 201; the store holds "
                              f"{self.server.store_entries()}")
        stored = path.read_bytes()
        check(stored == data, f"{path} differs from what was uploaded ({len(stored)} bytes stored, "
                              f"{len(data)} sent, sha256 {hashlib.sha256(stored).hexdigest()})")

    def write_file(self, name: str, data: bytes) -> Path:
        path = self.work_dir / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    async def curl_raw(self, path: Path, name: str, *extra: str, timeout: float = 60) -> CurlResult:
        return await self.curl("--data-binary", f"@{path}", "-H",
                               "Content-Type: application/octet-stream", *extra,
                               self.url(f"/api/v1/upload?name={name}"), timeout=timeout)

    async def curl_form(self, path: Path, *extra: str, timeout: float = 60) -> CurlResult:
        return await self.curl("-X", "POST", *extra, self.url("/api/v1/upload"),
                               "-F", f"file=@{path}", timeout=timeout)


def expect_refusal(r: CurlResult, status: int, reason: str) -> dict:
    """A refusal: the status, the JSON shape with the reason, Connection: close,
    and Retry-After on a 503."""
    check(r.status == status, f"expected HTTP {status} ({reason}), got {r.describe()}")
    body = r.json()
    check(body.get("reason") == reason, f"expected reason '{reason}', got {r.describe()}")
    for key in ("declared_size", "needed_bytes", "available_bytes", "memory_budget"):
        check(isinstance(body.get(key), int) and body[key] >= 0,
              f"expected an integer '{key}' in the refusal, got {r.describe()}")
    check(isinstance(body.get("message"), str) and body["message"],
          f"expected a non-empty 'message' in the refusal, got {r.describe()}")
    check("close" in r.headers.get("connection", "").lower(),
          f"expected 'Connection: close' on a refusal, got {r.describe()}")
    if status == 503:
        retry = r.headers.get("retry-after", "")
        check(retry.isdigit(), f"expected 'Retry-After: <seconds>' on a 503, got {r.describe()}")
    return body


def expect_no_body_sent(r: CurlResult, size: int) -> None:
    uploaded = r.info.get("size_upload", -1)
    check(0 <= uploaded < size // 4,
          f"expected curl not to upload the {size}-byte body of a refused request (Expect: "
          f"100-continue answered by the refusal), it uploaded {uploaded} bytes: {r.describe()}")


# --- Cases ------------------------------------------------------------------------------

Case = Callable[[Ctx], Awaitable[None]]
CASES: dict[str, tuple[Case, float]] = {}


def case(name: str, limit: float = 90.0):
    def register(fn: Case) -> Case:
        CASES[name] = (fn, limit)
        return fn
    return register


@case("seed_ws_upload", limit=540.0)
async def seed_ws_upload(ctx: Ctx) -> None:
    """The seed's 2,530,644,380-byte upload over WebSocket under a 200 MiB budget:
    reserved 104,857,600 bytes, done with the right SHA-256, server peak RSS < 64 MiB."""
    server = ctx.start_server("--budget", "200MiB")
    stream = GeneratedStream(SEED_SIZE)
    up = ctx.upload("seed.bin", SEED_SIZE)

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
        check(ready.get("reserved_bytes") == tiered(SEED_SIZE) == 104_857_600,
              f"expected reserved_bytes 104857600 (tiered: 5 % capped at 100 MiB), got {ready}")
    log(f"ready: {ready}")
    sampler = asyncio.ensure_future(sample_rss())
    try:
        for index, chunk in enumerate(stream):
            if not await up.send(chunk, timeout=60):
                await up.finished(30)
                raise CaseFailure(f"the server closed the connection after {up.sent} of {SEED_SIZE} "
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
    check(entries == ["seed.bin"], f"expected the store to hold ['seed.bin'], it holds {entries}")
    path = server.store / "seed.bin"
    size = path.stat().st_size
    check(size == SEED_SIZE, f"expected {path} to be {SEED_SIZE} bytes, it is {size}")
    with open(path, "rb") as f:  # spot checks: first, a middle and the last (partial) block
        for index in (0, stream.count // 2, stream.count - 1):
            f.seek(index * stream.block)
            expected = stream.chunk(index)
            check(f.read(len(expected)) == expected, f"{path}: block {index} differs from what "
                                                     f"was sent")
    path.unlink()
    await ctx.wait_idle()

    mb_s = SEED_SIZE / 1e6 / elapsed
    extra = f" [server args: {' '.join(ctx.extra_args)}]" if ctx.extra_args else ""
    log(f"seed_ws_upload: {SEED_SIZE} bytes in {elapsed:.1f} s ({mb_s:.1f} MB/s), "
        f"server peak RSS {peak / MiB:.1f} MiB{extra}")
    check(peak < 64 * MiB, f"expected the server's peak RSS below 64 MiB, VmHWM says "
                           f"{hwm / MiB:.1f} MiB (sampled VmRSS peak {peak_sampled / MiB:.1f} MiB)")


@case("seed_ws_flat10")
async def seed_ws_flat10(ctx: Ctx) -> None:
    """The same upload under flat 10 %: close 1009 right after the header, naming
    253064438 and 209715200; counted as too_large; nothing held."""
    ctx.start_server("--budget", "200MiB", "--policy", "flat:10")
    up = ctx.upload("seed.bin", SEED_SIZE)
    started = time.monotonic()
    ready = await up.start(timeout=15)
    check(ready is None, f"expected close 1009 (too_large) after the header, got {ready}")
    code, reason = up.refused
    log(f"closed after {time.monotonic() - started:.2f} s with {code} {reason!r}")
    check(code == 1009, f"expected close code 1009 (too_large), got {code} {reason!r}")
    check("253064438" in reason and "209715200" in reason,
          f"expected the close reason to name 253064438 (needed) and 209715200 (budget), "
          f"got {reason!r}")
    m = await ctx.wait_idle()
    check(m.rejected("too_large") == 1,
          f"expected admit_rejected_total{{reason=\"too_large\"}} 1, got {m.summary()}")
    check(m["admit_admitted_total"] == 0, f"expected admit_admitted_total 0, got {m.summary()}")
    await ctx.wait_store([])


@case("curl_multipart")
async def curl_multipart(ctx: Ctx) -> None:
    """curl -F file=@test_file.zip (5 MiB + 123 bytes, so Expect: 100-continue):
    100 then 201, JSON bytes and sha256 match, stored file byte-identical."""
    ctx.start_server("--budget", "200MiB")
    data = payload(5 * MiB + 123, seed=3)
    path = ctx.write_file("test_file.zip", data)
    r = await ctx.curl_form(path, "--expect100-timeout", "30")
    check(r.status == 201, f"expected 201, got {r.describe()}")
    check(any(status == 100 for status in _statuses(r.raw_headers)),
          f"expected a '100 Continue' before the 201 (curl sent Expect: 100-continue), "
          f"got {r.describe()}")
    ctx.expect_stored(r.json(), data, "test_file.zip")
    await ctx.wait_store(["test_file.zip"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 1, f"expected admit_admitted_total 1, got {m.summary()}")


def _statuses(raw_headers: str) -> list[int]:
    return [status for status, _ in parse_header_blocks(raw_headers)]


@case("curl_raw")
async def curl_raw(ctx: Ctx) -> None:
    """curl --data-binary with ?name=: a 5 MiB + 123 byte body (with Expect) and a
    1000-byte one (without): 201 each, stored byte-identical."""
    ctx.start_server("--budget", "200MiB")
    big = payload(5 * MiB + 123, seed=4)
    r = await ctx.curl_raw(ctx.write_file("raw_big", big), "f.bin", "--expect100-timeout", "30")
    check(r.status == 201, f"expected 201, got {r.describe()}")
    check(100 in _statuses(r.raw_headers),
          f"expected a '100 Continue' before the 201, got {r.describe()}")
    ctx.expect_stored(r.json(), big, "f.bin")
    small = payload(1000, seed=5)
    r = await ctx.curl_raw(ctx.write_file("raw_small", small), "small.bin")
    check(r.status == 201, f"expected 201, got {r.describe()}")
    ctx.expect_stored(r.json(), small, "small.bin")
    await ctx.wait_store(["f.bin", "small.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 2, f"expected admit_admitted_total 2, got {m.summary()}")


@case("curl_too_large")
async def curl_too_large(ctx: Ctx) -> None:
    """Under --budget 1MiB, an 8 MiB upload (needs 1677721 bytes): 413 with the JSON
    fields, refused before curl sent its body, quickly; raw and multipart."""
    ctx.start_server("--budget", "1MiB")
    size = 8 * MiB
    path = ctx.write_file("big.bin", payload(size, seed=6))

    r = await ctx.curl_raw(path, "big.bin", "--expect100-timeout", "30")
    body = expect_refusal(r, 413, "too_large")
    expected = {"declared_size": size, "needed_bytes": tiered(size), "memory_budget": MiB,
                "available_bytes": MiB}
    for key, value in expected.items():
        check(body.get(key) == value, f"expected {key}={value}, got {body}")
    expect_no_body_sent(r, size)
    check(r.info.get("time_total", 99) < 10, f"expected the 413 quickly, took {r.describe()}")
    log(f"raw: 413 after {r.info.get('time_total')} s, {r.info.get('size_upload')} bytes uploaded")

    r = await ctx.curl_form(path, "--expect100-timeout", "30")
    body = expect_refusal(r, 413, "too_large")
    declared = body.get("declared_size")
    check(isinstance(declared, int) and size < declared < size + 4096,
          f"expected declared_size = the multipart Content-Length (a little over {size}), got {body}")
    check(body.get("needed_bytes") == tiered(declared) and body.get("memory_budget") == MiB,
          f"expected needed_bytes={tiered(declared)} (20 % of {declared}) and memory_budget={MiB}, "
          f"got {body}")
    expect_no_body_sent(r, size)
    check(r.info.get("time_total", 99) < 10, f"expected the 413 quickly, took {r.describe()}")
    log(f"multipart: 413 after {r.info.get('time_total')} s, "
        f"{r.info.get('size_upload')} bytes uploaded")

    m = await ctx.wait_idle()
    check(m.rejected("too_large") == 2 and m["admit_admitted_total"] == 0,
          f"expected too_large 2 and admitted 0, got {m.summary()}")
    await ctx.wait_store([])


async def hold(ctx: Ctx, name: str, size: int) -> WsUpload:
    """A WebSocket upload admitted ("ready") that sends nothing yet."""
    up = ctx.upload(name, size)
    ready = await up.start()
    check(ready is not None, f"expected '{name}' ({size} bytes) to get ready, the server closed "
                             f"with {up.refused}")
    return up


async def finish(up: WsUpload, data: bytes, frame: int = 64 * KiB, timeout: float = 60) -> None:
    check(await up.send_all(chunks_of(data, frame)),
          f"'{up.name}': the server closed after {up.sent} of {len(data)} bytes: "
          f"{up.close_code} {up.close_reason!r}")
    await up.finished(timeout)
    up.expect_done()


@case("overload")
async def overload(ctx: Ctx) -> None:
    """--slots 2: two held WebSocket uploads; a third is closed 1013, curl gets 503
    no_slot with Retry-After (with and without Expect); then both held ones finish."""
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
    ctx.expect_stored({"name": "held_a.bin", "bytes": len(data_a),
                       "sha256": hashlib.sha256(data_a).hexdigest()}, data_a, "held_a.bin")
    ctx.expect_stored({"name": "held_b.bin", "bytes": len(data_b),
                       "sha256": hashlib.sha256(data_b).hexdigest()}, data_b, "held_b.bin")
    await ctx.wait_store(["held_a.bin", "held_b.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 2, f"expected admit_admitted_total 2, got {m.summary()}")


@case("wait_for_room")
async def wait_for_room(ctx: Ctx) -> None:
    """--slots 1 --wait 5s: a second upload (curl, then WebSocket) waits while the first
    is held and is admitted when it finishes, instead of refused."""
    ctx.start_server("--budget", "200MiB", "--slots", "1", "--wait", "5s")
    one_waiter = (lambda m: m["admit_waiters"] == 1), "admit_waiters 1"

    # Round 1: a curl upload waits behind a held WebSocket upload.
    data_a = payload(2 * MiB, seed=11)
    a = await hold(ctx, "a.bin", len(data_a))
    data_b = payload(3 * MiB + 5, seed=12)
    path_b = ctx.write_file("b.bin", data_b)
    curl_b = asyncio.ensure_future(ctx.curl_raw(path_b, "b.bin", "--expect100-timeout", "30"))
    try:
        await ctx.wait_metrics(*one_waiter, timeout=3)
        await asyncio.sleep(0.5)
        await finish(a, data_a)
        r = await within(asyncio.shield(curl_b), 30, "the waiting curl upload")
    finally:
        if not curl_b.done():
            curl_b.cancel()
    check(r.status == 201, f"expected the waiting curl upload to be admitted (201), "
                           f"got {r.describe()}")
    ctx.expect_stored(r.json(), data_b, "b.bin")

    # Round 2: a WebSocket upload waits behind a held WebSocket upload.
    data_c = payload(MiB + 3, seed=13)
    c = await hold(ctx, "c.bin", len(data_c))
    data_d = payload(2 * MiB + 9, seed=14)
    d = ctx.upload("d.bin", len(data_d))
    await d.connect()
    await within(d.ws.send(f'{{"name": "d.bin", "size": {len(data_d)}}}'), 10, "sending a header")
    first = asyncio.ensure_future(d.first_answer(30))
    try:
        await ctx.wait_metrics(*one_waiter, timeout=3)
        check(not first.done(), f"expected 'd.bin' to wait, it got an answer: {d.ready or d.refused}")
        await asyncio.sleep(0.5)
        await finish(c, data_c)
        ready = await within(asyncio.shield(first), 30, "'d.bin' to be admitted")
    finally:
        if not first.done():
            first.cancel()
    check(ready is not None, f"expected the waiting WebSocket upload to get ready, "
                             f"it was closed with {d.refused}")
    await finish(d, data_d)

    await ctx.wait_store(["a.bin", "b.bin", "c.bin", "d.bin"])
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 4 and all(m.rejected(r) == 0 for r in REASONS),
          f"expected 4 admitted and nothing refused, got {m.summary()}")


@case("wait_timeout")
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


@case("abort_200")
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

    plan = []
    for index in range(200):
        kind = index % 4
        if kind == 0:
            plan.append(lambda i=index: ws_abort(i, rst=True))
        elif kind == 1:
            plan.append(lambda i=index: ws_abort(i, rst=False))
        elif kind == 2:
            plan.append(lambda i=index: http_abort(i, rst=True, multipart=True))
        else:
            plan.append(lambda i=index: http_abort(i, rst=False, multipart=False))

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


@case("ws_oversend")
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


@case("ws_errors")
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


@case("http_errors")
async def http_errors(ctx: Ctx) -> None:
    """411 chunked / no length, 400 bad multipart / bad Content-Length, 404, 405,
    /healthz, and the /metrics format; nothing stored."""
    ctx.start_server("--budget", "200MiB", "--slots", "8")
    small = ctx.write_file("small.bin", payload(1000, seed=20))

    r = await ctx.curl_raw(small, "chunked.bin", "-H", "Transfer-Encoding: chunked")
    ctx.soft(r.status == 411, f"chunked upload: expected 411, got {r.describe()}")

    r = await ctx.curl("-X", "POST", "-H", "Content-Type: application/octet-stream",
                       ctx.url("/api/v1/upload?name=nolength.bin"))
    ctx.soft(r.status == 411, f"POST with neither Content-Length nor Transfer-Encoding: expected "
                              f"411, got {r.describe()}")

    boundary = "e2eBoundaryQ3k9"
    unclosed = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"unclosed.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + payload(100 * KiB, seed=21) + b"\r\n"
    r = await ctx.curl("--data-binary", f"@{ctx.write_file('unclosed.form', unclosed)}", "-H",
                       f"Content-Type: multipart/form-data; boundary={boundary}",
                       ctx.url("/api/v1/upload"))
    ctx.soft(r.status == 400, f"multipart without its closing boundary: expected 400, "
                              f"got {r.describe()}")

    garbage = payload(50 * KiB, seed=22)
    r = await ctx.curl("--data-binary", f"@{ctx.write_file('garbage.form', garbage)}", "-H",
                       f"Content-Type: multipart/form-data; boundary={boundary}",
                       ctx.url("/api/v1/upload"))
    ctx.soft(r.status == 400, f"multipart body without any boundary: expected 400, "
                              f"got {r.describe()}")

    r = await ctx.curl("--data-binary", f"@{small}", "-H", "Content-Type: multipart/form-data",
                       ctx.url("/api/v1/upload"))
    ctx.soft(r.status == 400, f"multipart Content-Type without a boundary: expected 400, "
                              f"got {r.describe()}")

    status, headers, body = await raw_request(
        ctx.server.port, b"POST /api/v1/upload?name=bad.bin HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: abc\r\n\r\n")
    ctx.soft(status == 400, f"Content-Length: abc: expected 400, got {status} {headers} "
                            f"{body[:200]!r}")

    r = await ctx.curl(ctx.url("/healthz"))
    ctx.soft(r.status == 200 and r.body.strip() == b"ok",
             f"GET /healthz: expected 200 'ok', got {r.describe()}")
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
    ctx.soft(m.get("admit_bytes_budget") == BUDGET_200MIB and m.get("admit_slots") == 8,
             f"/metrics: expected admit_bytes_budget {BUDGET_200MIB} and admit_slots 8, "
             f"got {m.summary()}")
    ctx.raise_soft()
    await ctx.wait_store([])
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
            await within(probe.ws.send('{"name": "late.bin", "size": 1048576}'), 5, "a header")
            ready = await probe.first_answer(10)
        except websockets.exceptions.ConnectionClosed as e:  # closed before the header
            await probe._record_close(e)
            probe.refused, ready = (probe.close_code, probe.close_reason), None
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


@case("graceful_shutdown")
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


@case("shutdown_grace_expired")
async def shutdown_grace_expired(ctx: Ctx) -> None:
    """SIGTERM with --grace 1s and an upload that never finishes: the server waits
    about the grace, cuts it (no done), removes its partial file and exits 0."""
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
    entries = server.store_entries()
    check(entries == [], f"expected the partial file removed at exit, the store holds {entries}")


# --- Main ---------------------------------------------------------------------------------

class HardTimeout(BaseException):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="path to admit_upload_server")
    parser.add_argument("--work-dir", help="scratch directory (server.log, store/, files)")
    parser.add_argument("--case", choices=sorted(CASES), metavar="NAME", help="the case to run")
    parser.add_argument("--server-args", default="",
                        help="extra server flags, appended (e.g. \"--admission off\")")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if not (args.server and args.work_dir and args.case):
        parser.error("--server, --work-dir and --case are required (or --list)")
    binary = os.path.abspath(args.server)
    if not os.access(binary, os.X_OK):
        print(f"FAIL {args.case}: {binary} is not an executable", flush=True)
        return 2
    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)

    fn, limit = CASES[args.case]
    ctx = Ctx(binary, work_dir, shlex.split(args.server_args))

    def on_alarm(signum, frame):
        raise HardTimeout()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(limit) + 15)  # a backstop, should asyncio's own bound not fire

    async def run() -> None:
        try:
            await asyncio.wait_for(fn(ctx), limit)
        except asyncio.TimeoutError:
            raise CaseFailure(f"the case did not finish within its limit of {limit:g} s") from None
        finally:
            await ctx.dispose_clients()

    started = time.monotonic()
    failure: Optional[str] = None
    try:
        asyncio.run(run())
        # Every case ends with the server idle: SIGTERM must make it exit 0, promptly.
        for server in ctx.servers:
            if server.alive():
                code = server.stop(timeout=30)
                if code is None:
                    failure = "the server did not exit within 30 s of SIGTERM at the end of the case"
                elif code != 0:
                    failure = f"the server exited with {describe_exit(code)} on SIGTERM (expected 0)"
            elif server.proc is not None and server.proc.poll() not in (0, None):
                failure = f"the server exited with {describe_exit(server.proc.poll())}"
    except CaseFailure as e:
        failure = str(e)
    except HardTimeout:
        failure = f"the case was stopped by its backstop alarm after {int(limit) + 15} s"
    except Exception:
        failure = "unexpected error:\n" + traceback.format_exc()
    finally:
        signal.alarm(0)
        for server in ctx.servers:
            if server.alive():
                server.stop(timeout=10)
    took = time.monotonic() - started
    if failure is None:
        print(f"PASS {args.case} ({took:.1f} s)", flush=True)
        return 0
    print(f"FAIL {args.case} ({took:.1f} s): {failure}", flush=True)
    for server in ctx.servers:
        print(f"--- {server.command_line()}", flush=True)
        print(f"--- exit: {describe_exit(server.exit_code)}"
              + (" (killed with SIGKILL after SIGTERM)" if server.killed else ""), flush=True)
        print(f"--- last 30 lines of {server.log_path}:", flush=True)
        print(server.log_tail(30), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
