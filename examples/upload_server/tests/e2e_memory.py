"""Cases of the memory the server runs in: --budget auto derives the budget from a
memory limit, --follow-memory follows the limit and turns pressure on and off
between the --pressure watermarks, and a server that cannot read a limit, or is
left nothing by it, does not start. The limit and the usage come from a fake tree
(--memory-root) that the case writes and changes while uploads run."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Optional

from e2e_context import Ctx, expect_refusal, hold
from e2e_metrics import Metrics
from e2e_support import GiB, MiB, check, chunks_of, log, payload, percent_of, within


class FakeMemory:
    """A directory laid out like / for --memory-root: cgroup v2 with the process in
    the mount root ("0::/"), whose memory.max and memory.current are the limit and
    the usage. A change replaces a file whole (a temporary file, then os.replace),
    so that a poll never reads half a number."""

    def __init__(self, root: Path, limit: int, usage: int):
        self.root = root
        self.cgroup = root / "sys" / "fs" / "cgroup"
        (root / "proc" / "self").mkdir(parents=True, exist_ok=True)
        self.cgroup.mkdir(parents=True, exist_ok=True)
        self._replace(root / "proc" / "self" / "cgroup", "0::/\n")
        self.limit = limit
        self.usage = usage
        self.set(limit=limit, usage=usage)

    def set(self, limit: Optional[int] = None, usage: Optional[int] = None) -> None:
        if limit is not None:
            self.limit = limit
            self._replace(self.cgroup / "memory.max", f"{limit}\n")
        if usage is not None:
            self.usage = usage
            self._replace(self.cgroup / "memory.current", f"{usage}\n")
        log(f"fake memory: limit {self.limit}, usage {self.usage}")

    @staticmethod
    def _replace(path: Path, text: str) -> None:
        temporary = path.with_name(path.name + ".new")
        temporary.write_text(text)
        os.replace(temporary, path)


async def expect_health(ctx: Ctx, status: int, body: bytes) -> None:
    r = await ctx.curl(ctx.url("/healthz"), timeout=10)
    check(r.status == status and r.body == body,
          f"GET /healthz: expected {status} {body!r}, got {r.describe()}")
    if status == 503:
        retry = r.headers.get("retry-after", "")
        check(retry.isdigit(), f"GET /healthz: expected Retry-After on the 503, got {r.describe()}")


def memory_summary(m: Metrics) -> str:
    names = ("admit_bytes_budget", "admit_memory_limit_bytes", "admit_memory_usage_bytes",
             "admit_memory_pressure")
    return " ".join(f"{name}={m.get(name)}" for name in names)


async def memory_follow(ctx: Ctx) -> None:
    """--budget auto:50% --follow-memory 100ms on a fake cgroup, changed while a
    WebSocket upload runs: the budget follows the limit up and down; usage over 90 %
    puts the pool under pressure (/healthz 503, curl 503 "pressure", WebSocket close
    1013), usage between the watermarks keeps it there, usage under 80 % lifts it
    (/healthz 200, uploads succeed); the running upload goes on throughout."""
    fake = FakeMemory(ctx.work_dir / "memory_root", limit=GiB, usage=100 * MiB)
    ctx.start_server("--budget", "auto:50%", "--follow-memory", "100ms",
                     "--memory-root", str(fake.root), "--slots", "4")

    def shows(budget: int, usage: int, pressure: int):
        return lambda m: (m.get("admit_bytes_budget") == budget
                          and m.get("admit_memory_limit_bytes") == fake.limit
                          and m.get("admit_memory_usage_bytes") == usage
                          and m.get("admit_memory_pressure") == pressure)

    async def wait_for(budget: int, usage: int, pressure: int) -> Metrics:
        return await ctx.wait_metrics(
            shows(budget, usage, pressure),
            f"admit_bytes_budget {budget}, admit_memory_limit_bytes {fake.limit}, "
            f"admit_memory_usage_bytes {usage}, admit_memory_pressure {pressure}", timeout=5)

    m = await wait_for(GiB // 2, 100 * MiB, 0)
    log(f"at start: {memory_summary(m)}")
    await expect_health(ctx, 200, b"ok\n")

    # The upload that runs throughout, sent a part at each step.
    data = payload(6 * MiB + 5, seed=1201)
    parts = list(chunks_of(data, MiB))
    running = await hold(ctx, "running.bin", len(data))
    frames_sent = 0

    async def send_part() -> None:
        nonlocal frames_sent
        check(frames_sent < len(parts), "the case sent more parts than it has")
        check(await running.send_all(chunks_of(parts[frames_sent], 64 * 1024)),
              f"the running upload was closed after {running.sent} bytes: "
              f"{running.close_code} {running.close_reason!r}")
        frames_sent += 1

    await send_part()

    # The limit grows, then shrinks: the budget follows it both ways.
    fake.set(limit=2 * GiB)
    m = await wait_for(GiB, 100 * MiB, 0)
    log(f"limit grown: {memory_summary(m)}")
    await send_part()
    fake.set(limit=1536 * MiB)
    m = await wait_for(768 * MiB, 100 * MiB, 0)
    log(f"limit shrunk: {memory_summary(m)}")
    await send_part()

    # Usage over the high watermark (90 %): nobody new is admitted.
    high = percent_of(fake.limit, 95)
    fake.set(usage=high)
    m = await wait_for(768 * MiB, high, 1)
    log(f"usage at 95 %: {memory_summary(m)}")
    await expect_health(ctx, 503, b"pressure\n")
    r = await ctx.curl_raw(ctx.write_file("refused.bin", payload(MiB, seed=1202)), "refused.bin",
                           "--expect100-timeout", "30")
    body = expect_refusal(r, 503, "pressure")
    log(f"curl under pressure: 503, Retry-After {r.headers.get('retry-after')}, {body}")
    w = ctx.upload("refused_ws.bin", MiB)
    check(await w.start() is None, "expected a WebSocket upload under pressure to be refused, "
                                   "it got ready")
    check(w.refused[0] == 1013 and "pressure" in w.refused[1],
          f"expected close 1013 'pressure: ...' under pressure, got {w.refused}")
    log(f"WebSocket under pressure: closed {w.refused}")
    await send_part()

    # Between the watermarks: the pressure stays on (hysteresis), poll after poll.
    between = percent_of(fake.limit, 85)
    fake.set(usage=between)
    await wait_for(768 * MiB, between, 1)
    await asyncio.sleep(0.5)  # five polls
    m = await ctx.metrics()
    check(shows(768 * MiB, between, 1)(m),
          f"expected the pressure to stay on at 85 % (off only at 80 %), got {memory_summary(m)}")
    await expect_health(ctx, 503, b"pressure\n")
    await send_part()

    # Under the low watermark (80 %): uploads are admitted again.
    low = percent_of(fake.limit, 50)
    fake.set(usage=low)
    m = await wait_for(768 * MiB, low, 0)
    log(f"usage at 50 %: {memory_summary(m)}")
    await expect_health(ctx, 200, b"ok\n")
    after = payload(2 * MiB + 1, seed=1203)
    r = await ctx.curl_raw(ctx.write_file("after.bin", after), "after.bin")
    check(r.status == 201, f"expected an upload after the pressure to succeed, got {r.describe()}")
    ctx.expect_stored(r.json(), after, "after.bin")
    after_ws = payload(MiB + 7, seed=1204)
    ws = await hold(ctx, "after_ws.bin", len(after_ws))
    check(await ws.send_all(chunks_of(after_ws, 64 * 1024)),
          f"'after_ws.bin' was closed after {ws.sent} bytes: {ws.close_code} {ws.close_reason!r}")
    await ws.finished(30)
    ws.expect_done()

    # The running upload finishes: every byte, as sent.
    while frames_sent < len(parts):
        await send_part()
    await running.finished(30)
    running.expect_done()
    ctx.expect_stored({"name": "running.bin", "bytes": len(data),
                       "sha256": running.digest.hexdigest()}, data, "running.bin")

    await ctx.wait_store(["after.bin", "after_ws.bin", "running.bin"])
    m = await ctx.wait_idle()
    check(m.rejected("pressure") == 2 and m["admit_admitted_total"] == 3,
          f"expected 2 refused with pressure and 3 admitted, got {m.summary()}")
    text = ctx.server.log_path.read_text(errors="replace")
    for line in (f"budget {GiB // 2} bytes = 50% of the limit",
                 f"memory: budget moved from {GiB // 2} to {GiB} bytes",
                 f"memory: budget moved from {GiB} to {768 * MiB} bytes",
                 f"memory: pressure on at usage {high} of {fake.limit} bytes",
                 f"memory: pressure off at usage {low} of {fake.limit} bytes"):
        check(line in text, f"expected '{line}' in the server's log")


async def exit_of(ctx: Ctx, *args: str, timeout: float = 20.0) -> tuple[int, str]:
    """Runs the server with `args` to its exit (bounded): its exit code and output."""
    store = ctx.work_dir / "store"
    proc = await asyncio.create_subprocess_exec(
        ctx.binary, "--host", "127.0.0.1", "--port", "0", "--dir", str(store), *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await within(proc.communicate(), timeout,
                              f"the server started with {' '.join(args)} to exit")
    finally:
        if proc.returncode is None:
            proc.kill()
            await within(proc.wait(), 5, "the killed server to exit")
    return proc.returncode, out.decode("utf-8", errors="replace")


async def memory_auto_refused(ctx: Ctx) -> None:
    """--budget auto does not start (exit 1, a message naming --budget and the root)
    on a root where nothing is readable, nor when the reserve leaves nothing of the
    limit; --follow-memory with a budget given as a size is a usage error (exit 2)."""
    empty = ctx.work_dir / "empty_root"
    empty.mkdir(parents=True, exist_ok=True)
    code, out = await exit_of(ctx, "--budget", "auto", "--memory-root", str(empty))
    log(f"empty root: exit {code}: {out.strip()}")
    check(code == 1 and "--budget auto: no memory limit readable under " + str(empty) in out,
          f"expected exit 1 with '--budget auto: no memory limit readable under {empty}', "
          f"got exit {code}: {out!r}")
    check("listening on" not in out, f"expected the server not to listen, got {out!r}")

    fake = FakeMemory(ctx.work_dir / "small_root", limit=GiB, usage=10 * MiB)
    code, out = await exit_of(ctx, "--budget", "auto:50%-1GiB", "--memory-root", str(fake.root))
    log(f"reserve = limit: exit {code}: {out.strip()}")
    check(code == 1 and "--budget auto: nothing left for uploads" in out
          and str(fake.root) in out and f"{GiB} bytes" in out,
          f"expected exit 1 with '--budget auto: nothing left for uploads', the limit and the "
          f"root, got exit {code}: {out!r}")
    check("listening on" not in out, f"expected the server not to listen, got {out!r}")

    code, out = await exit_of(ctx, "--budget", "200MiB", "--follow-memory", "1s")
    check(code == 2 and "--follow-memory: needs --budget auto" in out and "usage:" in out,
          f"expected exit 2 with '--follow-memory: needs --budget auto' and the usage, "
          f"got exit {code}: {out!r}")
