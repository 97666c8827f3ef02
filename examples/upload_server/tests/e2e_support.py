"""Support code for e2e.py: the server under test, the curl and WebSocket clients,
/metrics parsing and the checks the cases share.

Standard library only, plus Debian's python3-websockets 10.4 (its asyncio API) and
the curl binary. Every wait is bounded: a helper that waits takes a timeout and
raises CaseFailure, naming what it waited for, when it runs out.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import websockets
import websockets.exceptions

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

REASONS = ("too_large", "no_slot", "no_memory", "queue_full", "timeout", "cancelled", "closed")
GAUGES = ("admit_bytes_in_use", "admit_bytes_budget", "admit_slots_in_use", "admit_slots",
          "admit_waiters", "admit_admitted_total")


class CaseFailure(Exception):
    """A check failed: the message says what was expected and what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CaseFailure(message)


def log(message: str) -> None:
    print(message, flush=True)


async def within(awaitable, timeout: float, what: str):
    """Await with a bound; on timeout fail with 'timed out after T s waiting for WHAT'."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise CaseFailure(f"timed out after {timeout:g} s waiting for {what}") from None


# --- Policies (the library's stock ones, for expected figures) ---------------------

def percent_of(size: int, percent: int) -> int:
    return size * percent // 100


def tiered(size: int) -> int:
    """admit's default TieredPolicy: 20 % < 100 MiB, 10 % < 1 GiB, 5 % capped at 100 MiB."""
    if size < 100 * MiB:
        return percent_of(size, 20)
    if size < GiB:
        return percent_of(size, 10)
    return min(percent_of(size, 5), 100 * MiB)


# --- Payloads -----------------------------------------------------------------------

def payload(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (reproducible when a case fails)."""
    return random.Random(seed).randbytes(size)


def chunks_of(data: bytes, size: int) -> Iterable[bytes]:
    view = memoryview(data)
    for at in range(0, len(data), size):
        yield bytes(view[at:at + size])


class GeneratedStream:
    """A large upload generated on the fly, never stored by the client: one block
    derived from a fixed seed, with the block's index in its first 8 bytes (so no two
    blocks are equal); the last block is partial."""

    def __init__(self, total: int, block: int = MiB, seed: int = 0x5EED):
        self.total = total
        self.block = block
        self.base = random.Random(seed).randbytes(block)
        self.count = (total + block - 1) // block

    def chunk(self, index: int) -> bytes:
        data = index.to_bytes(8, "little") + self.base[8:]
        end = min(self.block, self.total - index * self.block)
        return data if end == self.block else data[:end]

    def __iter__(self):
        for index in range(self.count):
            yield self.chunk(index)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


# --- The server under test ------------------------------------------------------------

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # In the child, before exec: if the harness dies (even by SIGKILL, e.g. a ctest
    # timeout), the kernel kills the server too.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


class Server:
    """One admit_upload_server process; its stdout and stderr go to a log file."""

    def __init__(self, binary: str, work_dir: Path, args: list[str], log_name: str = "server.log"):
        self.binary = binary
        self.work_dir = work_dir
        self.store = work_dir / "store"
        self.log_path = work_dir / log_name
        self.args = ["--host", "127.0.0.1", "--port", "0", "--dir", str(self.store), *args]
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.exit_code: Optional[int] = None
        self.killed = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def command_line(self) -> str:
        return " ".join([self.binary, *self.args])

    def start(self, ready_timeout: float = 20.0) -> None:
        if self.store.exists():
            shutil.rmtree(self.store)
        self.store.mkdir(parents=True)
        log(f"starting: {self.command_line()}")
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [self.binary, *self.args], stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, close_fds=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + ready_timeout
        while True:
            match = LISTENING.search(self.log_path.read_bytes())
            if match:
                self.port = int(match.group(1))
                log(f"server pid {self.pid} listening on port {self.port}")
                return
            code = self.proc.poll()
            if code is not None:
                self.exit_code = code
                raise CaseFailure(f"the server exited with {describe_exit(code)} before printing "
                                  f"'listening on 127.0.0.1:PORT'")
            if time.monotonic() > deadline:
                raise CaseFailure(f"the server did not print 'listening on 127.0.0.1:PORT' "
                                  f"within {ready_timeout:g} s")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
            raise CaseFailure(f"the server died during the case: {describe_exit(self.exit_code)}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> Optional[int]:
        """The exit code, or None if still running after `timeout` s."""
        assert self.proc is not None
        try:
            self.exit_code = self.proc.wait(timeout)
            return self.exit_code
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit code of a process
        that exited on its own after SIGTERM, None if it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
            return self.exit_code
        self.proc.send_signal(signal.SIGTERM)
        code = self.wait_exit(timeout)
        if code is None:
            self.killed = True
            self.proc.kill()
            self.wait_exit(10)
            return None
        return code

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_bytes().decode("utf-8", errors="replace")
        except OSError as e:
            return f"(cannot read {self.log_path}: {e})"
        tail = text.splitlines()[-lines:]
        return "\n".join(tail) if tail else "(empty)"

    # /proc
    def proc_status(self, key: str) -> Optional[int]:
        """A 'kB' field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return None

    # the store directory
    def store_entries(self) -> list[str]:
        return sorted(os.listdir(self.store))


def describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "no exit (still running)"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


# --- curl --------------------------------------------------------------------------------

@dataclass
class CurlResult:
    command: list[str]
    rc: int
    info: dict            # curl's -w '%{json}'
    status: int           # 0 if no response
    headers: dict         # the final response's headers, names lowercased
    raw_headers: str      # every response block, interim 100 included
    body: bytes
    stderr: str

    def describe(self) -> str:
        body = self.body[:600].decode("utf-8", errors="replace")
        return (f"curl exit {self.rc}, HTTP {self.status}, "
                f"uploaded {self.info.get('size_upload')} bytes in {self.info.get('time_total')} s; "
                f"stderr: {self.stderr.strip() or '-'}; headers: {self.raw_headers.strip()!r}; "
                f"body: {body!r}")

    def json(self) -> dict:
        try:
            value = json.loads(self.body)
        except ValueError:
            raise CaseFailure(f"expected a JSON body, got {self.describe()}") from None
        check(isinstance(value, dict), f"expected a JSON object, got {self.describe()}")
        return value


def parse_header_blocks(text: str) -> list[tuple[int, dict]]:
    blocks = []
    for block in re.split(r"\r?\n\r?\n", text):
        lines = block.strip("\r\n").splitlines()
        if not lines or not lines[0].startswith("HTTP/"):
            continue
        parts = lines[0].split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers: dict = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        blocks.append((status, headers))
    return blocks


class Curl:
    """Runs curl as an asyncio subprocess, so that it runs alongside the WebSockets."""

    def __init__(self, work_dir: Path):
        self.dir = work_dir / "curl"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def __call__(self, *args: str, timeout: float = 60.0) -> CurlResult:
        self.count += 1
        body_path = self.dir / f"{self.count}.body"
        header_path = self.dir / f"{self.count}.headers"
        # -q: ignore ~/.curlrc; --noproxy: never a proxy for 127.0.0.1.
        command = ["curl", "-q", "-sS", "--noproxy", "*", "--max-time", f"{timeout:g}",
                   "-o", str(body_path), "-D", str(header_path), "-w", "%{json}", *args]
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout + 15)
        except asyncio.TimeoutError:
            raise CaseFailure(f"curl did not finish within {timeout + 15:g} s: "
                              f"{' '.join(command)}") from None
        finally:
            if proc.returncode is None:
                proc.kill()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except asyncio.TimeoutError:
                    pass
        try:
            info = json.loads(out.decode("utf-8", errors="replace") or "{}")
        except ValueError:
            info = {"unparsed": out.decode("utf-8", errors="replace")}
        raw_headers = header_path.read_text("latin-1") if header_path.exists() else ""
        blocks = parse_header_blocks(raw_headers)
        status, headers = blocks[-1] if blocks else (0, {})
        body = body_path.read_bytes() if body_path.exists() else b""
        return CurlResult(command, proc.returncode or 0, info, status, headers, raw_headers, body,
                          err.decode("utf-8", errors="replace"))


# --- /metrics ----------------------------------------------------------------------------

METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+\S+)?\s*$")
METRIC_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


class Metrics:
    """A tolerant Prometheus text parser: '#' lines and blank lines are ignored."""

    def __init__(self, text: str):
        self.text = text
        self.values: dict[tuple[str, frozenset], float] = {}
        self.unparsed: list[str] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = METRIC_LINE.match(line)
            if not match:
                self.unparsed.append(line)
                continue
            labels = frozenset(METRIC_LABEL.findall(match.group(2) or ""))
            try:
                value = float(match.group(3))
            except ValueError:
                self.unparsed.append(line)
                continue
            self.values[(match.group(1), labels)] = value

    def get(self, name: str, **labels: str) -> Optional[float]:
        return self.values.get((name, frozenset(labels.items())))

    def __getitem__(self, name: str) -> float:
        value = self.get(name)
        if value is None:
            raise CaseFailure(f"/metrics has no '{name}'; got:\n{self.text}")
        return value

    def rejected(self, reason: str) -> float:
        value = self.get("admit_rejected_total", reason=reason)
        if value is None:
            raise CaseFailure(f"/metrics has no 'admit_rejected_total{{reason=\"{reason}\"}}'; "
                              f"got:\n{self.text}")
        return value

    def in_use(self) -> tuple[float, float]:
        return self["admit_bytes_in_use"], self["admit_slots_in_use"]

    def summary(self) -> str:
        parts = [f"{name}={_num(self.get(name))}" for name in GAUGES if self.get(name) is not None]
        rejected = [f"{r}={_num(self.get('admit_rejected_total', reason=r))}" for r in REASONS
                    if self.get("admit_rejected_total", reason=r)]
        return " ".join(parts) + (" rejected{" + ",".join(rejected) + "}" if rejected else "")


def _num(value: Optional[float]) -> str:
    return str(int(value)) if value is not None and value == int(value) else str(value)


# --- WebSocket uploads ---------------------------------------------------------------------

def rst_on_close(transport) -> None:
    """SO_LINGER 0: closing the socket sends a TCP RST instead of a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@dataclass
class WsUpload:
    """One WebSocket upload: header, first answer, then binary frames while a reader
    task takes the server's progress acks, its "done" and its close."""

    url: str
    name: str
    size: int
    header: Any = None                # what to send first (default {"name", "size"})
    ws: Any = None
    ready: Optional[dict] = None
    refused: Optional[tuple[int, str]] = None   # (close code, reason) before "ready"
    done: Optional[dict] = None
    progress: list = field(default_factory=list)   # the last few acked byte counts
    progress_count: int = 0
    unexpected: list = field(default_factory=list)
    close_code: Optional[int] = None
    close_reason: str = ""
    sent: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    reader: Optional[asyncio.Task] = None
    send_error: Optional[BaseException] = None

    async def connect(self, timeout: float = 15.0) -> None:
        self.ws = await within(
            websockets.connect(self.url + "/ws/upload", compression=None, max_size=1 << 20,
                               ping_interval=None, close_timeout=5, open_timeout=timeout),
            timeout + 5, f"the WebSocket handshake with {self.url}/ws/upload")

    async def start(self, timeout: float = 15.0) -> Optional[dict]:
        """Connect, send the header and read the first answer: returns the "ready"
        message, or None if the server closed instead (see .refused)."""
        await self.connect()
        header = self.header if self.header is not None else {"name": self.name, "size": self.size}
        text = header if isinstance(header, (str, bytes)) else json.dumps(header)
        await within(self.ws.send(text), 10, "sending the header message")
        return await self.first_answer(timeout)

    async def first_answer(self, timeout: float) -> Optional[dict]:
        try:
            message = await within(self.ws.recv(), timeout,
                                   f"the answer to the header of '{self.name}' (ready or a close)")
        except websockets.exceptions.ConnectionClosed as e:
            await self._record_close(e)
            self.refused = (self.close_code, self.close_reason)
            return None
        answer = decode_json_message(message, "the first answer")
        check(answer.get("status") == "ready",
              f"expected {{\"status\":\"ready\",...}} or a close as the first answer, got {message!r}")
        self.ready = answer
        self.reader = asyncio.ensure_future(self._read())
        return answer

    async def _record_close(self, exc: Optional[BaseException] = None) -> None:
        try:
            await asyncio.wait_for(self.ws.wait_closed(), 10)
        except asyncio.TimeoutError:
            pass
        code = self.ws.close_code
        reason = self.ws.close_reason or ""
        if code is None and isinstance(exc, websockets.exceptions.ConnectionClosed):
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
        self.close_code, self.close_reason = code, reason

    async def _read(self) -> None:
        try:
            while True:
                message = await self.ws.recv()
                if isinstance(message, bytes):
                    self.unexpected.append(message[:100])
                    continue
                try:
                    value = json.loads(message)
                except ValueError:
                    self.unexpected.append(message[:200])
                    continue
                status = value.get("status") if isinstance(value, dict) else None
                if status == "progress":
                    acked = value.get("bytes")
                    previous = self.progress[-1] if self.progress else 0
                    if not isinstance(acked, int) or not previous <= acked <= self.size:
                        self.unexpected.append(f"progress {acked!r} after {previous} "
                                               f"(declared {self.size})")
                    self.progress = [*self.progress[-3:], acked]
                    self.progress_count += 1
                elif status == "done":
                    self.done = value
                else:
                    self.unexpected.append(message[:200])
        except websockets.exceptions.ConnectionClosed as e:
            await self._record_close(e)

    async def send(self, data: bytes, timeout: float = 30.0) -> bool:
        """Send one binary frame; False if the connection is closed (then stop)."""
        try:
            await asyncio.wait_for(self.ws.send(data), timeout)
        except websockets.exceptions.ConnectionClosed as e:
            self.send_error = e
            return False
        except asyncio.TimeoutError:
            raise CaseFailure(f"sending a {len(data)}-byte frame of '{self.name}' did not complete "
                              f"within {timeout:g} s (after {self.sent} bytes)") from None
        self.digest.update(data)
        self.sent += len(data)
        return True

    async def send_all(self, chunks: Iterable[bytes], timeout: float = 30.0) -> bool:
        for chunk in chunks:
            if not await self.send(chunk, timeout):
                return False
        return True

    async def finished(self, timeout: float) -> None:
        """Wait for the server to close the connection (after "done" or an error)."""
        assert self.reader is not None
        await within(asyncio.shield(self.reader), timeout,
                     f"the server to finish '{self.name}' (\"done\" and close 1000) after "
                     f"{self.sent} bytes sent")

    def expect_done(self) -> None:
        """The server said done with our byte count and SHA-256, then closed 1000."""
        sha = self.digest.hexdigest()
        check(self.done is not None,
              f"'{self.name}': expected {{\"status\":\"done\",\"bytes\":{self.sent},...}}, got none; "
              f"closed with {self.close_code} {self.close_reason!r}; last progress "
              f"{self.progress[-1:]}, unexpected messages {self.unexpected[:3]}")
        check(self.done.get("bytes") == self.sent,
              f"'{self.name}': done says bytes={self.done.get('bytes')}, we sent {self.sent}")
        check(str(self.done.get("sha256", "")).lower() == sha,
              f"'{self.name}': done says sha256={self.done.get('sha256')}, ours is {sha}")
        check(self.close_code == 1000,
              f"'{self.name}': expected close 1000 after done, got {self.close_code} "
              f"{self.close_reason!r}")
        check(not self.unexpected, f"'{self.name}': unexpected messages {self.unexpected[:3]}")

    def abort(self, rst: bool) -> None:
        """Vanish: drop the TCP connection without a close frame (RST or FIN)."""
        if self.ws is None:
            return
        if rst:
            rst_on_close(self.ws.transport)
        self.ws.transport.abort()

    async def dispose(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.cancel()
            try:
                await asyncio.wait_for(self.reader, 5)
            except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
                pass
        if self.ws is not None and not self.ws.closed:
            self.ws.transport.abort()


def decode_json_message(message, what: str) -> dict:
    check(isinstance(message, str), f"expected a text frame as {what}, got a binary frame "
                                    f"{message[:60]!r}")
    try:
        value = json.loads(message)
    except ValueError:
        raise CaseFailure(f"expected JSON as {what}, got {message!r}") from None
    check(isinstance(value, dict), f"expected a JSON object as {what}, got {message!r}")
    return value


# --- Raw sockets (aborts and malformed requests only) ---------------------------------------

async def open_raw(port: int, timeout: float = 10.0):
    return await within(asyncio.open_connection("127.0.0.1", port), timeout,
                        f"a TCP connection to 127.0.0.1:{port}")


async def read_http_response(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict, bytes]:
    """Read one response (status, headers, body by Content-Length or to EOF), bounded."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CaseFailure(f"no complete response head within {timeout:g} s; got {data[:300]!r}")
        try:
            piece = await asyncio.wait_for(reader.read(65536), left)
        except asyncio.TimeoutError:
            continue
        except ConnectionError as e:
            raise CaseFailure(f"connection error before a response: {e}; got {data[:300]!r}") from None
        if not piece:
            raise CaseFailure(f"connection closed before a complete response; got {data[:300]!r}")
        data += piece
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if status == 100:  # an interim response: the caller reads again for the final one
        return status, headers, body
    length = headers.get("content-length")
    while True:
        if length is not None and length.isdigit() and len(body) >= int(length):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            piece = await asyncio.wait_for(reader.read(65536), left)
        except (asyncio.TimeoutError, ConnectionError):
            break
        if not piece:
            break
        body += piece
    return status, headers, body


async def raw_request(port: int, request: bytes, timeout: float = 15.0) -> tuple[int, dict, bytes]:
    reader, writer = await open_raw(port)
    try:
        writer.write(request)
        await within(writer.drain(), timeout, "sending a raw request")
        return await read_http_response(reader, timeout)
    finally:
        writer.transport.abort()
