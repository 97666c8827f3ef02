"""admit_ws_upload_client against the upload server: what the benchmarks rely on.

An upload of random bytes in frames that do not divide it (the server must store
them whole, in order: its SHA-256 and the file are checked), its JSON line, and a
refusal, which must exit non-zero. Starts the server on 127.0.0.1 with a free
port and stops it by its pid; every step is bounded in time.

usage: ws_upload_client_test.py --server BIN --client BIN --work-dir DIR
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def start_server(server: str, work: Path) -> tuple[subprocess.Popen, int]:
    log = open(work / "server.log", "w+")
    proc = subprocess.Popen(
        [server, "--port", "0", "--dir", str(work / "up"), "--max-body", "8MiB"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log.seek(0)
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit("the server did not start listening")


def run_client(client: str, port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([client, "--port", str(port), "--timeout", "30", *args],
                          capture_output=True, text=True, timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--work-dir", required=True, type=Path)
    args = parser.parse_args()
    work = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    (work / "up").mkdir(parents=True)

    data = os.urandom(3 * 1024 * 1024 + 12345)
    (work / "data.bin").write_bytes(data)
    proc, port = start_server(args.server, work)
    failures = []
    try:
        # 100,000-byte frames: reads end at frame boundaries in the middle of
        # the server's buffer, and the last one is short.
        done = run_client(args.client, port, "--file", str(work / "data.bin"), "--name",
                          "data.bin", "--frame", "100000")
        if done.returncode != 0:
            failures.append(f"upload: exit {done.returncode}: {done.stderr.strip()}")
        else:
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result.get("bytes") != len(data):
                failures.append(f"upload: bytes {result.get('bytes')}, expected {len(data)}")
            if result.get("sha256") != hashlib.sha256(data).hexdigest():
                failures.append(f"upload: sha256 {result.get('sha256')} is not the data's")
            if not result.get("mb_per_s", 0) > 0 or not result.get("seconds", 0) > 0:
                failures.append(f"upload: no rate in {result}")
            stored = work / "up" / "data.bin"
            if not stored.is_file() or stored.read_bytes() != data:
                failures.append("upload: the stored file is not the data")

        # Over --max-body: the server closes before "ready"; the client fails.
        refused = run_client(args.client, port, "--size", str(9 * 1024 * 1024))
        if refused.returncode != 1 or "1009" not in refused.stderr:
            failures.append(f"refusal: expected exit 1 naming 1009, got {refused.returncode}: "
                            f"{refused.stderr.strip()}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)

    for failure in failures:
        print("FAIL:", failure)
    if not failures:
        print("ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
