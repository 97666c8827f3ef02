"""A real memory ceiling. With --buffer memory an upload holds in memory what it
reserved (a part of its reservation's size, charged to it), so the server's memory
follows its admissions. memory_ceiling puts the server under an address-space limit of
its own (RLIMIT_AS, set with prlimit(2) on its process alone: no cgroup is made or
changed) and sends 16 concurrent 200 MiB uploads, 8 over HTTP (raw and multipart) and 8
over WebSocket: with admission, every upload completes with the right SHA-256 (those
refused for want of room retry and get in) and the server stays alive; without it, the
same load makes the server's allocations fail, which shows that admission is what
kept it alive."""

from __future__ import annotations

import asyncio
import hashlib
import json
import resource
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Optional

from e2e_clients import RawWebSocket
from e2e_context import Ctx
from e2e_server import Server, describe_exit
from e2e_support import MiB, CaseFailure, CaseSkipped, GeneratedStream, check, log, payload, tiered

UPLOAD = 200 * MiB  # the full size: 3.2 GB in all takes about 10 s here (2 cores)
HTTP_RAW, HTTP_FORM, WS = 4, 4, 8
PART = tiered(UPLOAD)  # 20 MiB: what each upload reserves (10 %), and holds in memory
BUDGET = 8 * PART  # 160 MiB: 8 uploads at once, the other 8 are refused no_memory at first
# What the server's address space may grow by besides the parts, under the ceiling:
# each upload's hashing buffers (1 MiB, hash_threads.hpp; at most 16 uploads), and
# slack for Beast's and the parser's few KiB per connection and the heap's own
# (measured: 7 MiB over the budget at the peak of this load).
PER_UPLOAD = 1 * MiB
SLACK = 16 * MiB
MARGIN = 16 * PER_UPLOAD + SLACK
# glibc gives each thread that allocates an arena of its own, 64 MiB of address space
# (and up to 128 MiB for a moment while it aligns it): the hashing thread's first
# OpenSSL call makes one. One arena, the main one, for every thread: the server's
# allocations are its I/O thread's (the hashing threads allocate almost nothing), the
# baseline does not depend on the number of cores, and no arena's reserved heap hides
# room that the ceiling does not show (glibc falls back to another arena's heap when
# a mapping is refused).
SERVER_ENV = {"MALLOC_ARENA_MAX": "1"}
ATTEMPTS = 40  # per upload, Retry-After apart (at most 2 s): a refused upload waits for room
RETRY_FOR = 60.0  # seconds: no retry starts later than this after the load began


def sanitizer_of(binary: str) -> Optional[str]:
    """The sanitizer the server was built with, if one that reserves shadow memory:
    ASan, TSan, MSan and HWASan map terabytes of address space at start, which no
    RLIMIT_AS of a few hundred MiB can leave room for. (UBSan alone maps none.)"""
    data = Path(binary).read_bytes()
    for marker, name in ((b"__asan_init", "AddressSanitizer"), (b"__tsan_init", "ThreadSanitizer"),
                         (b"__msan_init", "MemorySanitizer"),
                         (b"__hwasan_init", "HWAddressSanitizer")):
        if marker in data:
            return name
    return None


# --- What is sent ----------------------------------------------------------------------

def write_and_digest(path: Path, stream: GeneratedStream) -> str:
    """Writes `stream` to `path` (for curl); its SHA-256. Run in a thread: hashlib and
    file writes let the event loop go on."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for chunk in stream:
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def digest_of(stream: GeneratedStream) -> str:
    digest = hashlib.sha256()
    for chunk in stream:
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Upload:
    name: str
    kind: str  # "raw", "form" or "ws"
    sha256: str  # the client's
    path: Optional[Path] = None  # raw, form
    stream: Optional[GeneratedStream] = None  # ws
    attempts: int = 0
    refusals: list[str] = field(default_factory=list)  # each refused attempt's answer
    stored_sha256: Optional[str] = None
    failure: str = ""  # the answer that was neither stored nor a refusal to retry

    def describe(self) -> str:
        outcome = f"stored sha256 {self.stored_sha256}" if self.stored_sha256 else self.failure
        return (f"{self.name} ({self.kind}): {self.attempts} attempt(s), refused "
                f"{self.refusals[:3]}{'...' if len(self.refusals) > 3 else ''}; {outcome}")


@dataclass
class Answer:
    result: str  # "stored", "refused" (a transient refusal: 503 / close 1013) or "failed"
    detail: str = ""
    sha256: str = ""
    retry_after: float = 1.0


# --- The clients -----------------------------------------------------------------------

async def http_attempt(ctx: Ctx, server: Server, up: Upload) -> Answer:
    url = f"{server.url}/api/v1/upload"
    # -T streams the file (--data-binary would read all of it into curl's memory).
    if up.kind == "raw":
        r = await ctx.curl("-X", "POST", "-T", str(up.path), "-H",
                           "Content-Type: application/octet-stream", "--expect100-timeout", "30",
                           f"{url}?name={up.name}", timeout=90)
    else:
        r = await ctx.curl("-X", "POST", "--expect100-timeout", "30", url, "-F",
                           f"file=@{up.path};filename={up.name}", timeout=90)
    if r.status == 201:
        return Answer("stored", sha256=str(r.json().get("sha256", "")))
    if r.status == 503:
        try:
            reason = json.loads(r.body).get("reason", "?")
        except ValueError:
            reason = r.body[:100].decode("utf-8", errors="replace")
        retry = r.headers.get("retry-after", "1")
        return Answer("refused", f"503 {reason}",
                      retry_after=float(retry) if retry.isdigit() else 1.0)
    return Answer("failed", r.describe()[:400])


async def answer_close(ws: RawWebSocket, payload_: bytes) -> None:
    try:
        await ws.write(RawWebSocket.frame(RawWebSocket.CLOSE, payload_[:2]))
    except (CaseFailure, ConnectionError):
        pass


def close_of(payload_: bytes) -> tuple[Optional[int], str]:
    code = struct.unpack("!H", payload_[:2])[0] if len(payload_) >= 2 else None
    return code, payload_[2:].decode("utf-8", errors="replace")


async def ws_attempt(server: Server, up: Upload) -> Answer:
    assert up.stream is not None
    ws = RawWebSocket(server.port)
    try:
        try:
            status, _ = await ws.open(RawWebSocket.text({"name": up.name, "size": up.stream.total}),
                                      timeout=15)
        except (CaseFailure, ConnectionError) as e:
            return Answer("failed", f"no WebSocket: {e}")
        if status != 101:
            return Answer("failed", f"the upgrade was answered {status}")
        first = await ws.read_frame(15)
        if first is None:
            return Answer("failed", "the connection ended before ready")
        opcode, body = first
        if opcode == RawWebSocket.CLOSE:
            await answer_close(ws, body)
            code, reason = close_of(body)
            if code != 1013:
                return Answer("failed", f"close {code} {reason!r}")
            # {"reason": ..., "retry_after_ms": ...} (refusal.hpp)
            try:
                refusal = json.loads(reason)
            except ValueError:
                return Answer("failed", f"close 1013 with a reason that is not JSON: {reason!r}")
            return Answer("refused", f"close 1013 {refusal.get('reason')}",
                          retry_after=refusal.get("retry_after_ms", 1000) / 1000)
        ready = json.loads(body)
        if ready.get("status") != "ready":
            return Answer("failed", f"expected ready, got {body[:200]!r}")
        sent = 0
        try:
            for index in range(up.stream.count):
                chunk = up.stream.chunk(index)
                await ws.write(RawWebSocket.frame(RawWebSocket.BINARY, chunk, zero_key=True), 60)
                sent += len(chunk)
        except (CaseFailure, ConnectionError) as e:
            log(f"  {up.name}: sending failed after {sent} bytes: {e}")
        messages, code, reason = await ws.read_until_close(60)
        done = [m for m in messages if isinstance(m, dict) and m.get("status") == "done"]
        if done and code == 1000 and sent == up.stream.total:
            return Answer("stored", sha256=str(done[0].get("sha256", "")))
        return Answer("failed", f"close {code} {reason!r} after {sent} bytes sent")
    except (CaseFailure, ConnectionError) as e:
        return Answer("failed", f"the connection failed: {e}")
    finally:
        ws.abort()


def attempt_of(ctx: Ctx, server: Server, up: Upload) -> Callable[[], Awaitable[Answer]]:
    if up.kind == "ws":
        return lambda: ws_attempt(server, up)
    return lambda: http_attempt(ctx, server, up)


async def run_upload(attempt: Callable[[], Awaitable[Answer]], up: Upload, retry: bool,
                     retry_until: float) -> None:
    """Attempts `up` until it is stored, fails otherwise, or (with `retry`) runs out
    of attempts or time; a refusal is retried after its Retry-After, or 2 s if that is
    sooner: the case measures the ceiling, not the advice (which says up to 60 s for
    want of memory until the server has seen uploads end)."""
    for number in range(1, ATTEMPTS + 1):
        up.attempts = number
        answer = await attempt()
        if answer.result == "stored":
            up.stored_sha256 = answer.sha256
            return
        if answer.result != "refused":
            up.failure = answer.detail
            return
        up.refusals.append(answer.detail)
        wait = min(answer.retry_after, 2.0)
        if not retry or time.monotonic() + wait > retry_until:
            up.failure = f"refused ({answer.detail}), not retried"
            return
        await asyncio.sleep(wait)
    up.failure = f"still refused after {ATTEMPTS} attempts"


# --- One server under its ceiling --------------------------------------------------------

@dataclass
class Run:
    admission: bool
    server: Server
    baseline_size: int = 0  # VmSize after the warm-up: what the ceiling is added to
    baseline_rss: int = 0
    ceiling: int = 0
    peak_rss: int = 0  # VmHWM over the load (reset after the warm-up)
    peak_size: int = 0  # VmPeak
    seconds: float = 0.0
    uploads: list[Upload] = field(default_factory=list)
    exit: Optional[int] = None  # set if the server died

    def stored(self) -> list[Upload]:
        return [up for up in self.uploads if up.stored_sha256]

    def summary(self) -> str:
        refused = sum(1 for up in self.uploads if up.refusals)
        retried = sum(up.attempts - 1 for up in self.uploads)
        state = "alive" if self.exit is None else f"died: {describe_exit(self.exit)}"
        return (f"admission {'on' if self.admission else 'off'}: budget {BUDGET // MiB} MiB, "
                f"ceiling {self.ceiling / MiB:.1f} MiB (baseline VmSize "
                f"{self.baseline_size / MiB:.1f} MiB + budget + {MARGIN // MiB} MiB), baseline RSS "
                f"{self.baseline_rss / MiB:.1f} MiB, peak RSS {self.peak_rss / MiB:.1f} MiB, peak "
                f"VmSize {self.peak_size / MiB:.1f} MiB; {len(self.stored())}/{len(self.uploads)} "
                f"stored, {refused} refused at least once, {retried} retries; "
                f"{self.seconds:.1f} s; server {state}")


async def warm_up(ctx: Ctx, server: Server) -> None:
    """One small upload of each kind, past the 256 KiB that are hashed inline: what the
    first uploads allocate for good (OpenSSL's state on the hashing thread, the heap's
    first blocks) is then part of the baseline, not of the load."""
    data = payload(MiB + 1, seed=1301)
    path = ctx.write_file("warm.bin", data)
    stream = GeneratedStream(MiB + 1, block=64 * 1024, seed=1302)
    ups = [Upload("warm-raw.bin", "raw", "", path=path),
           Upload("warm-form.bin", "form", "", path=path),
           Upload("warm-ws.bin", "ws", "", stream=stream)]
    for up in ups:
        await run_upload(attempt_of(ctx, server, up), up, retry=False, retry_until=0)
        check(up.stored_sha256 is not None, f"the warm-up upload failed: {up.describe()}")
    for name in server.store_entries():
        (server.store / name).unlink()


def reset_peak_rss(server: Server) -> None:
    # "5" resets VmHWM to the current RSS (proc(5), /proc/PID/clear_refs).
    try:
        Path(f"/proc/{server.pid}/clear_refs").write_text("5\n")
    except OSError as e:
        log(f"cannot reset VmHWM ({e}): the peak RSS includes the warm-up")


def load_admitted(server: Server) -> int:
    """How many uploads of the load (not the warm-up) the log says were admitted."""
    text = server.log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "outcome=admitted" in line
               and int(line.split("declared=")[1].split()[0]) >= UPLOAD)


async def wait_no_uploads(ctx: Ctx, timeout: float = 15.0) -> None:
    """GET /debug/uploads lists none: every upload the case cut short has ended."""
    deadline = time.monotonic() + timeout
    while True:
        r = await ctx.curl(ctx.url("/debug/uploads"), timeout=10)
        if r.status == 200 and r.json().get("uploads") == []:
            return
        check(time.monotonic() < deadline, f"uploads still running {timeout:g} s after their "
                                           f"clients left: {r.describe()}")
        await asyncio.sleep(0.1)


async def run_under_ceiling(ctx: Ctx, admission: bool, template: list[Upload],
                            enough: Optional[Callable[[Server], bool]] = None) -> Run:
    """The load against a new server under its ceiling. With `enough`, the clients still
    running are stopped once it is true (or the server is dead): what happened is
    known by then, and the rest would only take time."""
    server = ctx.start_server(
        "--buffer", "memory", "--budget", f"{BUDGET}B", "--slots", "16",
        "--admission", "on" if admission else "off",
        # Durability is not what this measures: an fsync of 200 MiB stalls the one
        # I/O thread for as long as the disk takes.
        "--fsync", "off", "--grace", "2s", env=SERVER_ENV)
    run = Run(admission, server)
    await warm_up(ctx, server)
    run.baseline_size = server.proc_status("VmSize") or 0
    run.baseline_rss = server.proc_status("VmRSS") or 0
    check(run.baseline_size > 0, "cannot read the server's VmSize")
    run.ceiling = run.baseline_size + BUDGET + MARGIN
    resource.prlimit(server.pid, resource.RLIMIT_AS, (run.ceiling, run.ceiling))
    reset_peak_rss(server)
    log(f"admission {'on' if admission else 'off'}: baseline VmSize {run.baseline_size / MiB:.1f} "
        f"MiB, RSS {run.baseline_rss / MiB:.1f} MiB; RLIMIT_AS {run.ceiling} bytes")

    run.uploads = [Upload(up.name, up.kind, up.sha256, up.path, up.stream) for up in template]
    started = time.monotonic()
    retry_until = started + RETRY_FOR
    tasks = []
    for up in run.uploads:
        tasks.append(asyncio.ensure_future(
            run_upload(attempt_of(ctx, server, up), up, retry=admission, retry_until=retry_until)))
    try:
        while not all(task.done() for task in tasks):
            if enough is not None and (not server.alive() or enough(server)):
                break
            await asyncio.wait(tasks, timeout=0.1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    run.seconds = time.monotonic() - started
    for up in run.uploads:
        if not up.stored_sha256 and not up.failure:
            up.failure = "stopped by the case: the outcome was known"
    if server.alive():
        run.peak_rss = server.proc_status("VmHWM") or 0
        run.peak_size = server.proc_status("VmPeak") or 0
        await wait_no_uploads(ctx)
    else:
        run.exit = server.wait_exit(5)
    for up in run.uploads:
        log(f"  {up.describe()}")
    log(run.summary())
    return run


def out_of_memory_lines(server: Server) -> list[str]:
    text = server.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if "out of memory" in line or "bad_alloc" in line
            or "not enough memory" in line.lower() or "Cannot allocate memory" in line]


async def memory_ceiling(ctx: Ctx) -> None:
    """16 concurrent 200 MiB uploads (4 raw, 4 multipart, 8 WebSocket) to a server with
    --buffer memory under RLIMIT_AS = its baseline VmSize + the budget (160 MiB: 8
    uploads' 20 MiB) + 64 MiB. Admission on: all stored with the client's SHA-256, the
    refused ones (503 / close 1013) after retries, peak RSS under the ceiling and within
    the budget and margin of the baseline. Admission off: the same load ends in failed
    allocations (answered out_of_memory, or storage failing with ENOMEM) or kills the
    server: admission is what kept it alive."""
    sanitizer = sanitizer_of(ctx.binary)
    if sanitizer is not None:
        raise CaseSkipped(f"the server is built with {sanitizer}, whose shadow memory no "
                          f"RLIMIT_AS of a few hundred MiB leaves room for")
    began = time.monotonic()
    files = ctx.work_dir / "files"
    files.mkdir(parents=True, exist_ok=True)
    raw_path, form_path = files / "raw.bin", files / "form.bin"
    raw_stream = GeneratedStream(UPLOAD, seed=0xCE1)
    form_stream = GeneratedStream(UPLOAD, seed=0xCE2)
    ws_streams = [GeneratedStream(UPLOAD, seed=0xCE10 + i) for i in range(WS)]
    try:
        digests = await asyncio.gather(
            asyncio.to_thread(write_and_digest, raw_path, raw_stream),
            asyncio.to_thread(write_and_digest, form_path, form_stream),
            *(asyncio.to_thread(digest_of, stream) for stream in ws_streams))
        template = ([Upload(f"raw-{i}.bin", "raw", digests[0], path=raw_path)
                     for i in range(HTTP_RAW)]
                    + [Upload(f"form-{i}.bin", "form", digests[1], path=form_path)
                       for i in range(HTTP_FORM)]
                    + [Upload(f"ws-{i}.bin", "ws", digests[2 + i], stream=stream)
                       for i, stream in enumerate(ws_streams)])
        # Mixed in time: HTTP and WebSocket uploads ask for room in turn.
        template = [up for pair in zip(template[:8], template[8:]) for up in pair]
        log(f"payloads ready after {time.monotonic() - began:.1f} s")

        on = await run_under_ceiling(ctx, True, template)
        check_admission_on(ctx, on)
        for name in on.server.store_entries():
            (on.server.store / name).unlink()  # 3.2 GB: not kept for the second run
        code = on.server.stop(timeout=20)
        check(code == 0, f"the server with admission exited with {describe_exit(code)} on SIGTERM")

        # Without admission every upload holds its part from its head on, so the
        # allocations that fail have failed once all 16 are in.
        off = await run_under_ceiling(
            ctx, False, template,
            enough=lambda server: load_admitted(server) == len(template)
            and bool(out_of_memory_lines(server)))
        check_admission_off(ctx, off)
        log(f"memory_ceiling: {on.summary()}")
        log(f"memory_ceiling: {off.summary()}")
        log(f"memory_ceiling: {time.monotonic() - began:.1f} s in all")
    finally:
        for path in (raw_path, form_path):
            path.unlink(missing_ok=True)
        for server in ctx.servers:
            if server.store.exists() and not server.alive():
                for name in server.store_entries():
                    (server.store / name).unlink(missing_ok=True)


def check_admission_on(ctx: Ctx, run: Run) -> None:
    check(run.exit is None, f"the server died under its ceiling with admission on: "
                            f"{describe_exit(run.exit)}; {run.summary()}")
    for up in run.uploads:
        ctx.soft(up.stored_sha256 == up.sha256, f"expected {up.name} stored with sha256 "
                                                f"{up.sha256}: {up.describe()}")
        for refusal in up.refusals:  # the pool's transient refusals, nothing else
            ctx.soft(refusal in ("503 no_memory", "503 no_slot", "close 1013 no_memory",
                                 "close 1013 no_slot"),
                f"{up.name}: expected a refusal 503 no_memory or close 1013, got {refusal!r}")
    ctx.raise_soft()
    refused = [up for up in run.uploads if up.refusals]
    check(refused, f"expected some uploads refused for want of room at first (16 x 20 MiB "
                   f"into a {BUDGET // MiB} MiB budget): {run.summary()}")
    check(not out_of_memory_lines(run.server),
          f"expected no failed allocation with admission on, the log has "
          f"{out_of_memory_lines(run.server)[:3]}")
    check(0 < run.peak_rss < run.ceiling,
          f"expected the peak RSS under the ceiling: {run.summary()}")
    grown = run.peak_rss - run.baseline_rss
    check(grown <= BUDGET + MARGIN,
          f"expected the RSS to grow by at most the budget and the margin "
          f"({(BUDGET + MARGIN) / MiB:.0f} MiB), it grew by {grown / MiB:.1f} MiB: {run.summary()}")
    # The parts are really held: at the peak, about the budget's worth is resident.
    check(grown >= BUDGET * 3 // 4,
          f"expected --buffer memory to hold about the {BUDGET // MiB} MiB admitted at the peak, "
          f"the RSS grew by only {grown / MiB:.1f} MiB: {run.summary()}")


def check_admission_off(ctx: Ctx, run: Run) -> None:
    failed = [up for up in run.uploads if not up.stored_sha256]
    oom = out_of_memory_lines(run.server)
    for up in run.uploads:
        if up.stored_sha256:
            ctx.soft(up.stored_sha256 == up.sha256, f"{up.name}: a wrong sha256: {up.describe()}")
        for refusal in up.refusals:
            ctx.soft("no_memory" not in refusal and "no_slot" not in refusal,
                     f"{up.name}: admission is off, yet it was refused {refusal!r}")
    ctx.raise_soft()
    if run.exit is not None:
        log(f"the server died without admission: {describe_exit(run.exit)}; the end of its log:\n"
            f"{run.server.log_tail(8)}")
        ctx.servers.remove(run.server)  # its death is the expected outcome, not a failure
        return
    answered = [up for up in run.uploads
                if any("out_of_memory" in refusal for refusal in up.refusals)]
    check(answered and oom,
          f"expected the load to make allocations fail without admission (uploads answered "
          f"out_of_memory, or the server dead), got {len(answered)} uploads answered "
          f"out_of_memory and the log lines {oom[:3]}: {run.summary()}")
    log(f"without admission the server answered failed allocations: {len(answered)} of "
        f"{len(run.uploads)} uploads answered out_of_memory ({len(oom)} log lines, such as "
        f"{oom[0]!r}); {len(failed)} not stored")
