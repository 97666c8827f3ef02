"""Support code for the e2e cases: what every other e2e module shares. How a check
fails, bounded waits, the stock policy's figures and the payloads sent.

The rest of the support code lives by concept: e2e_server.py (the server under
test), e2e_clients.py (curl, raw HTTP and WebSocket uploads), e2e_metrics.py
(/metrics parsing) and e2e_context.py (the context a case runs in, and the checks
the cases share).

Standard library only, plus Debian's python3-websockets 10.4 (its asyncio API) and
the curl binary. Every wait is bounded: a helper that waits takes a timeout and
raises CaseFailure, naming what it waited for, when it runs out.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
from typing import Iterable

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class CaseFailure(Exception):
    """A check failed: the message says what was expected and what was seen."""


class CaseSkipped(Exception):
    """The case cannot run here (a facility it needs is missing): the message says which.
    e2e.py exits with SKIP_CODE, which CTest reports as skipped, not passed."""


SKIP_CODE = 77


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CaseFailure(message)


def json_object(body, describe: str) -> dict:
    """`body` parsed as a JSON object; else a CaseFailure naming `describe` (what was seen)."""
    try:
        value = json.loads(body)
    except ValueError:
        raise CaseFailure(f"expected a JSON body, got {describe}") from None
    check(isinstance(value, dict), f"expected a JSON object, got {describe}")
    return value


def log(message: str) -> None:
    print(message, flush=True)


async def within(awaitable, timeout: float, what: str):
    """Await with a bound; on timeout fail with 'timed out after T s waiting for WHAT'."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise CaseFailure(f"timed out after {timeout:g} s waiting for {what}") from None


def rst_on_close(transport) -> None:
    """SO_LINGER 0: closing the socket sends a TCP RST instead of a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


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
