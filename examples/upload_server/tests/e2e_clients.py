"""The clients the cases drive the server with: curl (as a subprocess), raw HTTP
over a socket (for aborts and malformed requests), WebSocket uploads through
Debian's python3-websockets 10.4 (its asyncio API), and WebSocket frames written
by hand on a socket (for what that library will not send)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import websockets
import websockets.exceptions

from e2e_support import CaseFailure, check, json_object, rst_on_close, within


def parse_head(lines: list[str]) -> tuple[int, dict]:
    """A response head, its status line first: the status (0 if none) and the
    headers, names lowercased."""
    parts = lines[0].split() if lines else []
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers: dict = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


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
        return json_object(self.body, self.describe())

    def statuses(self) -> list[int]:
        """The status of every response block, interim 100 included."""
        return [status for status, _ in parse_header_blocks(self.raw_headers)]


def parse_header_blocks(text: str) -> list[tuple[int, dict]]:
    blocks = []
    for block in re.split(r"\r?\n\r?\n", text):
        lines = block.strip("\r\n").splitlines()
        if not lines or not lines[0].startswith("HTTP/"):
            continue
        blocks.append(parse_head(lines))
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
    status, headers = parse_head(head.decode("latin-1").split("\r\n"))
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


# --- WebSocket uploads ---------------------------------------------------------------------

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
    path: str = "/ws/upload"          # with a query, say ?tenant=batch (--partition)

    async def connect(self, timeout: float = 15.0) -> None:
        self.ws = await within(
            websockets.connect(self.url + self.path, compression=None, max_size=1 << 20,
                               ping_interval=None, close_timeout=5, open_timeout=timeout),
            timeout + 5, f"the WebSocket handshake with {self.url}{self.path}")

    async def start(self, timeout: float = 15.0) -> Optional[dict]:
        """Connect, send the header and read the first answer: returns the "ready"
        message, or None if the server closed instead (see .refused)."""
        await self.connect()
        await self.send_header()
        return await self.first_answer(timeout)

    async def send_header(self, timeout: float = 10.0) -> None:
        """The first message: .header, by default {"name": NAME, "size": SIZE}."""
        header = self.header if self.header is not None else {"name": self.name, "size": self.size}
        text = header if isinstance(header, (str, bytes)) else json.dumps(header)
        await within(self.ws.send(text), timeout, "sending the header message")

    async def first_answer(self, timeout: float) -> Optional[dict]:
        try:
            message = await within(self.ws.recv(), timeout,
                                   f"the answer to the header of '{self.name}' (ready or a close)")
        except websockets.exceptions.ConnectionClosed as e:
            await self.record_refusal(e)
            return None
        answer = decode_json_message(message, "the first answer")
        check(answer.get("status") == "ready",
              f"expected {{\"status\":\"ready\",...}} or a close as the first answer, got {message!r}")
        self.ready = answer
        self.reader = asyncio.ensure_future(self._read())
        return answer

    async def record_refusal(self, exc: BaseException) -> None:
        """The server closed before "ready": its close code and reason go to .refused."""
        await self._record_close(exc)
        self.refused = (self.close_code, self.close_reason)

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


# --- WebSocket frames on a bare socket (what python3-websockets will not send) -------------

class RawWebSocket:
    """A WebSocket client written frame by frame on a plain socket: for frames split across
    TCP writes at chosen points, the upgrade request and a first message in one write, and
    the 101 reply's headers. Every read is bounded; the caller closes it (abort())."""

    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

    def __init__(self, port: int):
        self.port = port
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.buffer = b""  # read from the socket, not parsed yet

    @staticmethod
    def upgrade_request(port: int) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (f"GET /ws/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n").encode()

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True, zero_key: bool = False) -> bytes:
        """One client frame: masked, as RFC 6455 requires of clients. `zero_key`: with the
        masking key 0, which leaves the payload as it is (the server unmasks it as any
        other): for bulk data, where Python's XOR of every byte (about 20 ns a byte)
        would make the client, not the server, what a case measures."""
        head = bytes([(0x80 if fin else 0) | opcode])
        size = len(payload)
        if size < 126:
            head += bytes([0x80 | size])
        elif size < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", size)
        if zero_key:
            return head + bytes(4) + payload
        mask = os.urandom(4)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    @classmethod
    def text(cls, value: Any) -> bytes:
        return cls.frame(cls.TEXT, (value if isinstance(value, str) else json.dumps(value)).encode())

    async def open(self, with_request: bytes = b"", timeout: float = 10.0) -> tuple[int, dict]:
        """Connect and send the upgrade request, followed in the same write by
        `with_request` (frames); returns the reply's status and headers."""
        self.reader, self.writer = await open_raw(self.port)
        await self.write(self.upgrade_request(self.port) + with_request)
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buffer:
            await self._fill(deadline, "the reply to the upgrade request")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        return parse_head(head.decode("latin-1").split("\r\n"))

    async def write(self, data: bytes, timeout: float = 10.0) -> None:
        """One write(2) of `data` (as far as the kernel takes it at once), then drain."""
        assert self.writer is not None
        self.writer.write(data)
        await within(self.writer.drain(), timeout, f"sending {len(data)} bytes")

    async def _fill(self, deadline: float, what: str) -> bool:
        """Read more into .buffer; False at EOF or on a reset."""
        assert self.reader is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise CaseFailure(f"timed out waiting for {what}; have {self.buffer[:200]!r}")
        try:
            piece = await asyncio.wait_for(self.reader.read(65536), left)
        except asyncio.TimeoutError:
            raise CaseFailure(f"timed out waiting for {what}; have {self.buffer[:200]!r}") from None
        except ConnectionError:
            return False
        self.buffer += piece
        return bool(piece)

    async def read_frame(self, timeout: float = 10.0) -> Optional[tuple[int, bytes]]:
        """The next server frame (opcode, payload), or None if the connection ended first."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 2:
                size, at = self.buffer[1] & 0x7F, 2
                if size == 126 and len(self.buffer) >= 4:
                    size, at = struct.unpack("!H", self.buffer[2:4])[0], 4
                elif size == 127 and len(self.buffer) >= 10:
                    size, at = struct.unpack("!Q", self.buffer[2:10])[0], 10
                if size < 126 or at > 2:
                    if len(self.buffer) >= at + size:
                        opcode, payload = self.buffer[0] & 0x0F, self.buffer[at:at + size]
                        self.buffer = self.buffer[at + size:]
                        return opcode, payload
            if not await self._fill(deadline, "a frame from the server"):
                return None

    async def read_until_close(self, timeout: float = 15.0) -> tuple[list, Optional[int], str]:
        """Server frames until its close (answered): the text messages decoded as JSON (or
        kept as text), and the close code and reason (None, "" if the connection just ended)."""
        deadline = time.monotonic() + timeout
        messages: list = []
        for _ in range(10_000):
            got = await self.read_frame(max(0.1, deadline - time.monotonic()))
            if got is None:
                return messages, None, ""
            opcode, payload = got
            if opcode == self.TEXT:
                try:
                    messages.append(json.loads(payload))
                except ValueError:
                    messages.append(payload.decode("utf-8", errors="replace"))
            elif opcode == self.CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    await self.write(self.frame(self.CLOSE, payload[:2]))
                except (CaseFailure, ConnectionError):
                    pass
                return messages, code, payload[2:].decode("utf-8", errors="replace")
        raise CaseFailure("more than 10000 frames before the close")

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
