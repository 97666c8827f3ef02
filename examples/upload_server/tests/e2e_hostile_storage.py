"""Cases of clients that go after the storage directory: a server killed
mid-upload must leave no partial file, one name uploaded 1,005 times must be stored
1,005 times, and an upload that cannot fit on the disk must be refused before its
body (507 over HTTP, close 1011 over WebSocket).

The disk-full cases give the server a 20 MiB tmpfs in a mount namespace of its own
(unshare(1) as the server's launcher: root, as in CI; skipped with exit 77 and a
message otherwise), so that no mount outlives the server, however the case ends."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

from e2e_clients import open_raw, read_http_response
from e2e_context import Ctx, expect_no_body_sent, finish, hold
from e2e_server import Server
from e2e_support import KiB, MiB, CaseSkipped, check, log, payload, within

# --- A store that outlives the server: --dir given again (the last one counts), since
# Server.start() empties its own store directory ------------------------------------


def kept_store(ctx: Ctx, name: str = "kept-store") -> Path:
    store = ctx.work_dir / name
    if store.exists():
        shutil.rmtree(store)
    store.mkdir(parents=True)
    return store


def entries(store: Path) -> list[str]:
    return sorted(os.listdir(store))


def held_files(server: Server, store: Path) -> dict[str, int]:
    """The files under `store` the server has open, by /proc/PID/fd: link target ->
    size written so far. Unnamed (O_TMPFILE) files show as '<store>/#<inode> (deleted)'."""
    held: dict[str, int] = {}
    fd_dir = Path(f"/proc/{server.pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
            if target.startswith(str(store) + "/"):
                held[target] = os.stat(fd_dir / fd).st_size
        except OSError:
            pass  # closed meanwhile
    return held


@contextlib.contextmanager
def environment(name: str, value: str | None) -> Iterator[None]:
    """os.environ[name] = value for the servers started inside (None: unchanged)."""
    saved = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def storage_line(server: Server) -> str:
    """The server's startup line about its storage ("" if it has none)."""
    match = re.search(rb"^storage in .*$", server.log_path.read_bytes(), re.MULTILINE)
    return match.group(0).decode("utf-8", errors="replace") if match else ""


def upload_head(name: str, length: int, *extra: str) -> bytes:
    """A raw upload's request head; no ?name= when `name` is empty."""
    target = f"/api/v1/upload?name={name}" if name else "/api/v1/upload"
    lines = [f"POST {target} HTTP/1.1", "Host: 127.0.0.1",
             "Content-Type: application/octet-stream", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- SIGKILL mid-upload ----------------------------------------------------------------

async def crash_mid_upload(ctx: Ctx, hidden: bool) -> None:
    """Three raw HTTP uploads of 6 MiB, sent slowly, are 2 MiB in when the server is
    SIGKILLed; a server restarted on the same --dir leaves only the completed file."""
    store = kept_store(ctx)
    mode = "hidden" if hidden else None
    with environment("UPLOAD_SERVER_PARTIAL_FILES", mode):
        server = ctx.start_server("--budget", "200MiB", "--dir", str(store))
    log(storage_line(server))
    done = payload(100 * KiB, seed=101)
    r = await ctx.curl_raw(ctx.write_file("done.bin", done), "done.bin")
    check(r.status == 201, f"expected the first upload stored, got {r.describe()}")

    declared, sent_each, piece = 6 * MiB, 2 * MiB, 128 * KiB
    block = payload(piece, seed=102)
    streams = []
    try:
        for index in range(3):
            reader, writer = await open_raw(server.port)
            writer.write(upload_head(f"crash{index}.bin", declared))
            streams.append((reader, writer))
        for _ in range(sent_each // piece):  # slowly: 16 writes 50 ms apart, on each
            for _, writer in streams:
                writer.write(block)
                await within(writer.drain(), 10, "sending an upload's body")
            await asyncio.sleep(0.05)

        # Mid-upload for sure: the server holds three files in the store with most
        # of the bytes sent so far (it writes whole 64 KiB reads; the last one may
        # be pending), and the directory shows no more than the fallback's.
        written = sent_each - 64 * KiB
        deadline = time.monotonic() + 10
        while True:
            held = held_files(server, store)
            if len(held) == 3 and all(size >= written for size in held.values()):
                break
            check(time.monotonic() < deadline,
                  f"expected the server to hold 3 files of {written}+ bytes in {store} within "
                  f"10 s; /proc says {held}")
            await asyncio.sleep(0.05)
        during = entries(store)
        log(f"mid-upload: the server holds {held}; the directory shows {during}")
        partial = [name for name in during if name != "done.bin"]
        if hidden:
            check(len(partial) == 3 and all(n.startswith(".crash") and n.endswith(".part")
                                            for n in partial),
                  f"expected 3 hidden .crash*.part files during the uploads, got {during}")
        else:
            check(not partial, f"expected partial uploads to be unnamed files (O_TMPFILE), not "
                               f"entries of the directory; it shows {during}")

        server.proc.kill()
        check(server.wait_exit(10) is not None, "the server did not die of SIGKILL within 10 s")
        ctx.servers.remove(server)  # its exit by SIGKILL is this case's doing
    finally:
        for _, writer in streams:
            writer.transport.abort()
    after_kill = entries(store)
    log(f"after SIGKILL: {after_kill}")
    check(len(after_kill) == (4 if hidden else 1),
          f"expected {'done.bin and 3 .part files' if hidden else 'only done.bin'} after the "
          f"SIGKILL, got {after_kill}")

    with environment("UPLOAD_SERVER_PARTIAL_FILES", mode):
        restarted = ctx.start_server("--budget", "200MiB", "--dir", str(store))
    line = storage_line(restarted)
    log(f"restarted: {line}")
    check(entries(store) == ["done.bin"],
          f"expected only done.bin after the restart, the directory holds {entries(store)}")
    removed = 3 if hidden else 0
    check(f"; {removed} stale partial files removed" in line,
          f"expected the restarted server to log 'storage in {store}: ...; {removed} stale "
          f"partial files removed', it logged {line!r}")
    check((store / "done.bin").read_bytes() == done, "done.bin differs from what was uploaded")

    after = payload(300 * KiB, seed=103)
    r = await ctx.curl_raw(ctx.write_file("after.bin", after), "after.bin")
    check(r.status == 201, f"expected an upload to work after the restart, got {r.describe()}")
    check(entries(store) == ["after.bin", "done.bin"],
          f"expected after.bin and done.bin, the directory holds {entries(store)}")
    await ctx.wait_idle()


async def crash_no_partial(ctx: Ctx) -> None:
    """SIGKILL mid-upload with unnamed partial files (O_TMPFILE): nothing in the
    directory during the uploads or after, and nothing for the restart to sweep."""
    await crash_mid_upload(ctx, hidden=False)


async def crash_partial_swept(ctx: Ctx) -> None:
    """SIGKILL mid-upload with the .part fallback forced (UPLOAD_SERVER_PARTIAL_FILES=
    hidden): the restart on the same --dir removes the 3 stale files and says so."""
    await crash_mid_upload(ctx, hidden=True)


# --- One name, 1,005 times ------------------------------------------------------------

async def same_name_1005(ctx: Ctx) -> None:
    """1,005 uploads of same.txt (and 15 with no name: upload.bin) over keep-alive
    connections, 3 at a time: every one 201 under a name of its own, none overwritten."""
    server = ctx.start_server("--budget", "200MiB")
    count, default_count, connections = 1005, 15, 3
    answers: list[tuple[bytes, dict]] = []
    started = time.monotonic()

    async def uploader(first: int, step: int) -> None:
        reader, writer = await open_raw(server.port)
        try:
            for index in range(first, count + default_count, step):
                body = f"upload #{index}\n".encode()
                target = "same.txt" if index < count else ""
                writer.write(upload_head(target, len(body)) + body)
                await within(writer.drain(), 10, f"sending upload #{index}")
                status, headers, answer = await read_http_response(reader, 15)
                check(status == 201, f"upload #{index} of {target or '(no name)'}: expected 201, "
                                     f"got {status} {headers} {answer[:300]!r}")
                check("close" not in headers.get("connection", "").lower(),
                      f"upload #{index}: the server closed the keep-alive connection: {headers}")
                answers.append((body, json.loads(answer)))
        finally:
            writer.transport.abort()

    await within(asyncio.gather(*(uploader(i, connections) for i in range(connections))), 80,
                 f"{count + default_count} uploads")
    log(f"{len(answers)} uploads in {time.monotonic() - started:.1f} s")

    names = [answer["name"] for _, answer in answers]
    check(len(set(names)) == len(names),
          f"expected {len(names)} distinct names, got {len(set(names))}")
    same = sorted(n for n in names if n.startswith("same"))
    default = sorted(n for n in names if n.startswith("upload"))
    check(len(same) == count and len(default) == default_count,
          f"expected {count} same*.txt and {default_count} upload*.bin, got {len(same)} and "
          f"{len(default)}")
    expected_numbered = ["same.txt"] + [f"same-{n}.txt" for n in range(1, 10)]
    check(all(n in same for n in expected_numbered),
          f"expected {expected_numbered} among the names, got {same[:12]}")
    suffixed = re.compile(r"^same-[0-9a-f]{16}\.txt$")
    odd = [n for n in same if n not in expected_numbered and not suffixed.match(n)]
    check(not odd, f"expected same-<16 hex digits>.txt past same-9.txt, got {odd[:5]}")
    for body, answer in answers:
        check(answer.get("sha256") == hashlib.sha256(body).hexdigest(),
              f"the answer for {body!r} has the wrong sha256: {answer}")
        stored = (server.store / answer["name"]).read_bytes()
        check(stored == body, f"{answer['name']} holds {stored!r}, expected {body!r}")
    check(server.store_entries() == sorted(names),
          f"expected the store to hold exactly the {len(names)} names answered, it holds "
          f"{len(server.store_entries())} entries, e.g. {server.store_entries()[:5]}")
    await ctx.wait_idle()


# --- Disk full ----------------------------------------------------------------------

# The shell line the launcher runs in the server's mount namespace: the tmpfs goes
# over its store directory, then the server replaces the shell (same pid).
MOUNT_THEN_EXEC = 'mount -t tmpfs -o "size=$1,nosuid,nodev" tmpfs "$2" && shift 2 && exec "$@"'


def namespace_launcher(size: str, mount_point: Path) -> list[str]:
    """unshare(1) giving a command a mount namespace of its own with a tmpfs of
    `size` at `mount_point`: nobody else sees the mount, and it goes with the
    command, however that ends (SIGKILL, or this script killed first)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise CaseSkipped("needs unshare(1) (util-linux) to give the server a small disk")
    return [unshare, "--mount", "--propagation", "private", "sh", "-c", MOUNT_THEN_EXEC, "sh",
            size, str(mount_point)]


def start_on_small_disk(ctx: Ctx, size: str, *args: str) -> Server:
    """A server whose --dir is a tmpfs of `size` of its own. Skipped (exit 77) where
    no mount namespace can be made: not root, or a container that forbids it."""
    probe_dir = ctx.work_dir / "mount-probe"
    probe_dir.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run([*namespace_launcher("1m", probe_dir), "true"], capture_output=True,
                           text=True, timeout=20)
    if probe.returncode != 0:
        raise CaseSkipped(f"cannot mount a tmpfs in a mount namespace of its own (needs root, "
                          f"CAP_SYS_ADMIN): {(probe.stderr or probe.stdout).strip()}")
    name = "server.log" if not ctx.servers else f"server{len(ctx.servers) + 1}.log"
    server = Server(ctx.binary, ctx.work_dir, [*args, *ctx.extra_args], name)
    server.launcher = namespace_launcher(size, server.store)
    ctx.servers.append(server)
    server.start()
    return server


def disk_of(server: Server) -> Path:
    """The server's --dir as the server sees it: its mount is in its own namespace,
    which /proc/PID/root shows (root may look; the server must be running)."""
    return Path(f"/proc/{server.pid}/root") / server.store.relative_to("/")


def expect_insufficient_storage(r, size: int, what: str) -> None:
    check(r.status == 507, f"{what}: expected 507 Insufficient Storage, got {r.describe()}")
    body = r.json()
    check(isinstance(body.get("reason"), str) and body["reason"]
          and isinstance(body.get("message"), str) and body["message"],
          f"{what}: expected a JSON reason and message with the 507, got {r.describe()}")
    expect_no_body_sent(r, size)
    check(r.info.get("time_total", 99) < 10, f"{what}: expected the 507 at once, {r.describe()}")
    log(f"{what}: 507 after {r.info.get('time_total')} s, {r.info.get('size_upload')} bytes "
        f"uploaded: {r.body[:200]!r}")


async def disk_full_http(ctx: Ctx) -> None:
    """A 20 MiB filesystem: 30 MB raw and multipart uploads get 507 before their body
    (curl sends Expect: 100-continue), nothing is left on the disk, and a 10 MB upload
    then fits."""
    small = disk_of(start_on_small_disk(ctx, "20m", "--budget", "200MiB"))
    size = 30_000_000
    big = ctx.write_file("big.bin", payload(size, seed=111))
    r = await ctx.curl_raw(big, "big.bin", "--expect100-timeout", "30")
    expect_insufficient_storage(r, size, "raw 30 MB")
    r = await ctx.curl_form(big, "--expect100-timeout", "30")
    expect_insufficient_storage(r, size, "multipart 30 MB")
    check(entries(small) == [], f"expected nothing on the disk, it holds {entries(small)}")
    await ctx.wait_idle()

    fits = payload(10_000_000, seed=112)
    r = await ctx.curl_raw(ctx.write_file("fits.bin", fits), "fits.bin",
                           "--expect100-timeout", "30")
    check(r.status == 201, f"expected 10 MB to fit on 20 MiB, got {r.describe()}")
    check((small / "fits.bin").read_bytes() == fits, "fits.bin differs from what was sent")
    check(entries(small) == ["fits.bin"], f"expected only fits.bin, got {entries(small)}")
    await ctx.wait_idle()


async def disk_full_ws(ctx: Ctx) -> None:
    """A 20 MiB filesystem: a WebSocket upload declaring 30 MB is closed 1011 before
    "ready"; two of 8 MiB held ready (their space held, nothing sent yet) make a third
    of 8 MiB not fit (1011); the two then finish."""
    small = disk_of(start_on_small_disk(ctx, "20m", "--budget", "200MiB"))

    async def refused(name: str, size: int) -> None:
        up = ctx.upload(name, size)
        ready = await up.start()
        check(ready is None, f"'{name}' ({size} bytes on a 20 MiB disk): expected close "
                             f"1011 before ready, got ready {ready}")
        check(up.refused[0] == 1011 and up.refused[1],
              f"'{name}': expected close 1011 with a reason, got {up.refused}")
        log(f"'{name}' ({size} bytes): closed {up.refused}")

    await refused("big.bin", 30_000_000)
    first = payload(8 * MiB, seed=113)
    second = payload(8 * MiB, seed=114)
    up1 = await hold(ctx, "first.bin", len(first))
    up2 = await hold(ctx, "second.bin", len(second))
    await refused("third.bin", 8 * MiB)
    await finish(up1, first)
    await finish(up2, second)
    check(entries(small) == ["first.bin", "second.bin"],
          f"expected first.bin and second.bin, got {entries(small)}")
    check((small / "first.bin").read_bytes() == first, "first.bin differs")
    await ctx.wait_idle()
