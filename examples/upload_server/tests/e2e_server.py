"""The server under test: one admit_upload_server process, its log, its store
directory and its /proc figures."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

from e2e_support import CaseFailure, log

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
        # A command the server runs under, which execs it (so the pid stays the
        # server's): e.g. unshare, to give it a filesystem of its own.
        self.launcher: list[str] = []
        # Variables added to the environment the server inherits.
        self.env: dict[str, str] = {}
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
        env = [f"{name}={value}" for name, value in self.env.items()]
        return " ".join([*env, *self.launcher, self.binary, *self.args])

    def start(self, ready_timeout: float = 20.0) -> None:
        if self.store.exists():
            shutil.rmtree(self.store)
        self.store.mkdir(parents=True)
        log(f"starting: {self.command_line()}")
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [*self.launcher, self.binary, *self.args], stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, close_fds=True, preexec_fn=_die_with_parent,
                env={**os.environ, **self.env} if self.env else None)
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
        """A 'kB' field of /proc/PID/status (VmRSS, VmHWM, VmSize) in bytes."""
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
