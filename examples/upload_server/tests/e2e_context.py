"""The context a case runs in (its servers, clients and scratch files) and the
checks and steps that cases of several kinds share."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from e2e_clients import Curl, CurlResult, WsUpload
from e2e_metrics import Metrics
from e2e_server import Server
from e2e_support import KiB, CaseFailure, check, chunks_of, json_object, log


class Ctx:
    def __init__(self, binary: str, work_dir: Path, extra_args: list[str]):
        self.binary = binary
        self.work_dir = work_dir
        self.extra_args = extra_args
        self.servers: list[Server] = []
        self.uploads: list[WsUpload] = []
        self.curl = Curl(work_dir)
        self.soft_failures: list[str] = []
        # Blocking calls run at the end of the case, last added first (a browser's close).
        self.cleanups: list[Callable[[], None]] = []

    @property
    def server(self) -> Server:
        check(bool(self.servers), "no server started")
        return self.servers[-1]

    def start_server(self, *args: str, launcher: Sequence[str] = (),
                     env: Optional[dict[str, str]] = None) -> Server:
        """`launcher`: a command that execs the server (see Server.launcher); `env`:
        variables added to the server's environment."""
        name = "server.log" if not self.servers else f"server{len(self.servers) + 1}.log"
        server = Server(self.binary, self.work_dir, [*args, *self.extra_args], name)
        server.launcher = list(launcher)
        server.env = dict(env or {})
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
        while self.cleanups:
            cleanup = self.cleanups.pop()
            try:
                await asyncio.wait_for(asyncio.to_thread(cleanup), 30)
            except Exception as e:  # the next cleanup still runs
                log(f"cleanup failed: {e!r}")

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


# --- HTTP refusals ----------------------------------------------------------------------

# draft-ietf-httpapi-ratelimit-headers, as rate_limit.hpp writes it: the pool's two quotas.
RATE_LIMIT_POLICY = re.compile(
    r'"slots";q=(\d+);qu="concurrent-requests", "memory";q=(\d+);qu="content-bytes"')
RATE_LIMIT = re.compile(r'"slots";r=(\d+), "memory";r=(\d+)')


def expect_rate_limit(r: CurlResult) -> tuple[int, int, int, int]:
    """RateLimit-Policy and RateLimit on an answer to an upload, in the draft's syntax:
    (slots, budget, free slots, free bytes), each remaining within its quota."""
    policy = RATE_LIMIT_POLICY.fullmatch(r.headers.get("ratelimit-policy", ""))
    remaining = RATE_LIMIT.fullmatch(r.headers.get("ratelimit", ""))
    check(policy is not None and remaining is not None,
          f"expected 'RateLimit-Policy: \"slots\";q=N;qu=\"concurrent-requests\", \"memory\";q=B;"
          f"qu=\"content-bytes\"' and 'RateLimit: \"slots\";r=N, \"memory\";r=B', got "
          f"{r.describe()}")
    slots, budget = int(policy.group(1)), int(policy.group(2))
    free_slots, free_bytes = int(remaining.group(1)), int(remaining.group(2))
    check(free_slots <= slots and free_bytes <= budget,
          f"expected RateLimit's r within RateLimit-Policy's q, got {r.describe()}")
    return slots, budget, free_slots, free_bytes


def expect_refusal(r: CurlResult, status: int, reason: str) -> dict:
    """A refusal: the status, the JSON shape with the reason, Connection: close, the
    RateLimit fields, and on a 503 Retry-After, the ceiling in seconds of the body's
    retry_after_ms (a 413 has neither: retrying cannot help)."""
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
    expect_rate_limit(r)
    if status == 503:
        retry = r.headers.get("retry-after", "")
        check(retry.isdigit(), f"expected 'Retry-After: <seconds>' on a 503, got {r.describe()}")
        ms = body.get("retry_after_ms")
        check(isinstance(ms, int) and ms > 0 and int(retry) == max(1, math.ceil(ms / 1000)),
              f"expected retry_after_ms in the body, Retry-After its ceiling in seconds, got "
              f"{r.describe()}")
    else:
        check("retry-after" not in r.headers and "retry_after_ms" not in body,
              f"expected no Retry-After and no retry_after_ms on a {status}, got {r.describe()}")
    return body


def close_json(reason: str) -> dict:
    """A refusal's close reason: a JSON object (refusal.hpp)."""
    return json_object(reason, f"the close reason {reason!r}")


def expect_no_body_sent(r: CurlResult, size: int) -> None:
    uploaded = r.info.get("size_upload", -1)
    check(0 <= uploaded < size // 4,
          f"expected curl not to upload the {size}-byte body of a refused request (Expect: "
          f"100-continue answered by the refusal), it uploaded {uploaded} bytes: {r.describe()}")


# --- WebSocket uploads held open ----------------------------------------------------------

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
